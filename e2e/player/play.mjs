// Plays media from pacman in Debian's headless Chromium, driven by
// playwright-core, and reports what the <video> element did as JSON.
//
//   node play.mjs PAGE_URL SCREENSHOT.png SEEK_SECONDS...
//
// PAGE_URL is a page (served by the Go test) whose query names the source:
// ?src=URL plays it directly, ?hls=URL plays it through hls.js.
import { launch } from './browser.mjs';

const [pageURL, screenshot, ...seeks] = process.argv.slice(2);
const browser = await launch();
const result = { seeks: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await page.goto(pageURL);
  await page.waitForFunction(() => window.ready === true || window.failed, null, { timeout: 30000 });
  result.duration = await page.evaluate(() => document.querySelector('video').duration);
  for (const s of seeks.map(Number)) {
    const r = await page.evaluate(async (target) => {
      const v = document.querySelector('video');
      await new Promise((resolve) => {
        v.addEventListener('seeked', resolve, { once: true });
        v.currentTime = target;
      });
      const deadline = Date.now() + 15000;
      while (v.currentTime < target + 0.5 && Date.now() < deadline && !v.error) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return { target, reached: v.currentTime, error: v.error ? v.error.message || String(v.error.code) : null };
    }, s);
    result.seeks.push(r);
  }
  result.mediaError = await page.evaluate(() => window.failed || null);
  await page.screenshot({ path: screenshot });
} catch (e) {
  result.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
