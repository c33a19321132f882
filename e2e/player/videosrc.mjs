// Two viewers of one MP4 played by a plain <video src>, each page
// registering the edge's service worker (PacmanPeers.serve()). a opens
// PAGE_A; b opens PAGE_B when a has played LAG seconds. Reports each
// viewer's PacmanPeers.stats(), whether b's page was controlled, and any
// errors as JSON.
//
//   node videosrc.mjs PAGE_A PAGE_B LAG
import { launch } from './browser.mjs';

const [pageA, pageB, lag] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [], logs: [] };
async function viewer(name, url) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => out.errors.push(`${name}: ${e}`));
  page.on('console', (m) => { if (m.text().includes('pacman')) out.logs.push(`${name} ${m.type()}: ${m.text()}`); });
  await page.goto(url);
  return page;
}
const played = (p, t) => p.waitForFunction((t) => document.querySelector('video').currentTime > t, t, { timeout: 45000 });
try {
  const a = await viewer('a', pageA);
  await played(a, Number(lag));
  const b = await viewer('b', pageB);
  await played(b, 4);
  await b.waitForTimeout(2000);
  out.a = await a.evaluate(() => PacmanPeers.stats());
  out.b = await b.evaluate(() => PacmanPeers.stats());
  out.controlled = await b.evaluate(() => navigator.serviceWorker.controller != null);
  out.videoError = await b.evaluate(() => document.querySelector('video').error?.code ?? null);
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
