// Opens the landing page of `caddy pacman demo --live` in Debian's
// headless Chromium, lets its live ladder play, switches it to another
// rendition from the page's buttons, and reports as JSON how far
// it played, what the page says of it before and after the switch, and
// any page or player error; saves a screenshot to SHOT.
//
//   node landinglive.mjs URL SHOT
import { launch } from './browser.mjs';

const [url, shot] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('live').currentTime > 6, null, { timeout: 60000 });
  out.levels = await page.evaluate(() => [...document.querySelectorAll('#live-levels button')].map((b) => b.textContent));
  out.before = await page.textContent('#live-state');
  // A rendition other than the one playing: the smallest, or the
  // largest if the smallest plays.
  out.switchedTo = /playing 90p/.test(out.before) ? '360p' : '90p';
  await page.click(`#live-levels button:text-is("${out.switchedTo}")`);
  await page.waitForFunction((r) => document.getElementById('live-state').textContent.endsWith('playing ' + r), out.switchedTo, { timeout: 20000 });
  const t = await page.evaluate(() => document.getElementById('live').currentTime);
  await page.waitForTimeout(3000);
  out.after = await page.textContent('#live-state');
  out.playedAfter = (await page.evaluate(() => document.getElementById('live').currentTime)) - t;
  out.error = await page.evaluate(() => document.getElementById('live').error?.code ?? null);
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
