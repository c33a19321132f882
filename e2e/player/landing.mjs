// Opens the demo's landing page in Debian's headless Chromium, plays
// every <video> on it, stops two of the seeders while they play and
// starts the second edge, and reports as JSON how far each video played
// before and after the stops, the bytes the panel shows from each peer,
// the offload and the bytes seeded back; saves a screenshot to SHOT.
//
//   node landing.mjs URL SHOT
import { launch } from './browser.mjs';

const [url, shot] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [], videos: [], peers: {}, said: [] };
const times = (page) => page.evaluate(() => [...document.querySelectorAll('video')].map((v) => v.currentTime));
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  await page.evaluate(() => Promise.all([...document.querySelectorAll('video')].map((v) => v.play())));
  await page.waitForFunction(() => [...document.querySelectorAll('video')].every((v) => v.currentTime > 2), null, { timeout: 30000 });
  out.beforeStops = await times(page);
  for (let i = 0; i < 2; i++) {
    await page.click('#stop');
    await page.waitForFunction((n) => document.querySelectorAll('#peers .bar.stopped').length >= n, i + 1, { timeout: 10000 });
    out.said.push(await page.textContent('#said'));
  }
  await page.waitForTimeout(4000); // the videos play on from the last seeder and the origin
  out.afterStops = await times(page);
  out.videos = await page.evaluate(() => [...document.querySelectorAll('video')].map((v) => ({ src: v.currentSrc || v.dataset.hls, currentTime: v.currentTime, error: v.error && v.error.code })));
  await page.click('#second');
  await page.waitForFunction(() => document.querySelector('#seeded b').textContent !== '0 B' && document.querySelector('#seeded b').textContent !== '–', null, { timeout: 20000 });
  await page.waitForFunction(() => Number(document.querySelector('#peers .bar[data-peer="second edge"]')?.dataset.bytes || 0) > 0, null, { timeout: 20000 });
  out.peers = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#peers .bar')].map((b) => [b.dataset.peer, Number(b.dataset.bytes)])));
  out.offload = await page.textContent('#offload b');
  out.seeded = await page.textContent('#seeded b');
  await page.evaluate(() => document.querySelectorAll('video').forEach((v) => v.pause()));
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
