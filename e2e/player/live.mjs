// Plays live HLS streams side by side in Debian's headless Chromium through
// hls.js, and reports for each, as JSON, how far behind the live edge it
// played, how often it stalled, the errors hls.js recovered from, and, on a
// page with viewer peers, PacmanPeers.stats(). The distance is measured on
// the wall clock: now minus the EXT-X-PROGRAM-DATE-TIME of the frame playing.
//
//   node live.mjs SECONDS PAGE_URL...
//
// Each PAGE_URL is the Go test's player page with ?hls=PLAYLIST_URL.
import { launch } from './browser.mjs';

const [seconds, ...pages] = process.argv.slice(2);
const browser = await launch();
const results = [];
try {
  // results[i] is pages[i]'s, whichever page is ready first.
  results.push(...pages.map((url) => ({ url, errors: [], latency: [], stalls: 0, played: 0 })));
  const opened = await Promise.all(pages.map(async (url, i) => {
    const page = await browser.newPage();
    const r = results[i];
    page.on('pageerror', (e) => r.errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.ready === true || window.failed, null, { timeout: 30000 });
    const failed = await page.evaluate(() => window.failed || null);
    if (failed) r.errors.push(failed);
    // Stalls count from here: the player has started.
    await page.evaluate(() => {
      window.stalls = 0;
      document.querySelector('video').addEventListener('waiting', () => { window.stalls++; });
    });
    return { page, r, start: await page.evaluate(() => document.querySelector('video').currentTime) };
  }));
  for (let i = 0; i < Number(seconds); i++) {
    await new Promise((res) => setTimeout(res, 1000));
    for (const { page, r } of opened) {
      const s = await page.evaluate(() => {
        const at = window.hls && window.hls.playingDate;
        return { latency: at ? (Date.now() - at.getTime()) / 1000 : null, failed: window.failed || null };
      });
      if (s.latency !== null) r.latency.push(s.latency);
      if (s.failed && !r.errors.includes(s.failed)) r.errors.push(s.failed);
    }
  }
  for (const { page, r, start } of opened) {
    const end = await page.evaluate(async () => ({
      t: document.querySelector('video').currentTime,
      stalls: window.stalls,
      warnings: window.warnings || [],
      peers: window.PacmanPeers ? await PacmanPeers.stats() : null,
    }));
    r.played = end.t - start;
    r.stalls = end.stalls;
    r.warnings = end.warnings;
    if (end.peers) r.peers = end.peers;
  }
} catch (e) {
  results.push({ errors: [String(e)] });
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
