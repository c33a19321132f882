// Opens the demo's landing page in Debian's headless Chromium, waits for
// every <video> on it to play, and reports as JSON how far each played
// and what the page's panel says was fetched from peers; saves a
// screenshot to SHOT.
//
//   node landing.mjs URL SHOT
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'],
});
const out = { errors: [], videos: [], fetchedFromPeers: 0 };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  await page.evaluate(() => Promise.all([...document.querySelectorAll('video')].map((v) => v.play())));
  await page.waitForFunction(() => [...document.querySelectorAll('video')].every((v) => v.currentTime > 2), null, { timeout: 30000 });
  await page.waitForFunction(() => Number(document.querySelector('#fetched tr[data-source="peers"]')?.dataset.bytes || 0) > 0, null, { timeout: 10000 });
  out.videos = await page.evaluate(() => [...document.querySelectorAll('video')].map((v) => ({ src: v.currentSrc || v.dataset.hls, currentTime: v.currentTime, error: v.error && v.error.code })));
  out.fetchedFromPeers = await page.evaluate(() => Number(document.querySelector('#fetched tr[data-source="peers"]').dataset.bytes));
  await page.evaluate(() => document.querySelectorAll('video').forEach((v) => v.pause()));
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
