// Opens the demo's landing page (caddy pacman demo --viewers) in two
// Chromium contexts, as two viewers' tabs: a plays the HLS video, then b
// does. Reports as JSON each tab's PacmanPeers.stats() and what b's
// panel shows, and saves b's screenshot to SHOT.
//
//   node demoviewers.mjs URL SHOT
import { launch } from './browser.mjs';

const [url, shot] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [] };
// tab opens the page as a viewer's tab and plays its HLS video; with
// peers, once the tab is connected to another (given 25 s for the dial
// and its retries), as a viewer who reads the page first would.
async function tab(name, peers) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => out.errors.push(`${name}: ${e}`));
  await page.goto(url);
  for (const deadline = Date.now() + 25000; peers && Date.now() < deadline;) {
    if ((await page.evaluate(() => PacmanPeers.stats())).peers > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.evaluate(() => document.querySelector('video[data-hls]').play());
  await page.waitForFunction(() => document.querySelector('video[data-hls]').currentTime > 3, null, { timeout: 30000 });
  return page;
}
try {
  const a = await tab('a', false);
  const b = await tab('b', true);
  // b takes a fragment from a; a b that never does is measured after 10 s.
  for (const deadline = Date.now() + 10000; Date.now() < deadline;) {
    if ((await b.evaluate(() => PacmanPeers.stats())).fromPeers > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await b.waitForFunction(() => document.querySelector('#from-viewers b').textContent !== '–', null, { timeout: 10000 });
  out.a = await a.evaluate(() => PacmanPeers.stats());
  out.b = await b.evaluate(() => PacmanPeers.stats());
  out.panel = await b.textContent('#viewer-peers');
  await b.screenshot({ path: shot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
