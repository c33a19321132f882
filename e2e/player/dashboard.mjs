// Opens the operator dashboard in Debian's headless Chromium, waits until
// its figures show bytes fetched from peers (the test fetches a file once
// the page prints "ready") and the chart has drawn the readings after, and
// reports what it shows as JSON; saves a screenshot to SHOT.
//
//   node dashboard.mjs URL SHOT
import { launch } from './browser.mjs';

const [url, shot] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [] };
let page;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  // Tell the test the page has read its figures twice, so the chart has
  // a baseline before the transfer; the test fetches then.
  await page.waitForFunction(() => window.figures && document.querySelector('canvas') && document.querySelector('canvas').dataset.max, null, { timeout: 30000 });
  console.log('ready');
  await page.waitForFunction(() => window.figures && window.figures.length > 0 && (window.figures[0].figures.fetched.peers || 0) > 0, null, { timeout: 20000 });
  await page.waitForTimeout(2500); // a few readings for the chart
  out.peakRate = await page.evaluate(() => Number(document.querySelector('canvas').dataset.max || 0));
  out.fetchedFromPeers = await page.evaluate(() => window.figures[0].figures.fetched.peers);
  out.shown = await page.evaluate(() => document.querySelector('[data-stat="from peers"] b').textContent);
  out.peerLines = await page.evaluate(() => [...document.querySelectorAll('details li')].map((li) => li.textContent));
  out.legend = await page.evaluate(() => document.querySelector('.legend').textContent);
  out.painted = await page.evaluate(() => {
    const c = document.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
  if (page) out.page = await page.evaluate(() => document.body.innerText).catch(() => null);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
