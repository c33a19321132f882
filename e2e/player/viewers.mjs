// Two viewers of one HLS stream in separate Chromium contexts, a at
// PAGE_A and b at PAGE_B, pages that load a peer.js. Viewer a starts; b starts LAG
// seconds later, connects to a (given up to 25 s for the dial and its
// retries), plays 6 s and takes what a holds from it over WebRTC. Then a leaves
// and b plays on from the edge. Reports as JSON each viewer's
// PacmanPeers.stats() before and after a leaves, b's play positions, the
// SHA-256 of SEGMENT loaded through b's loader, and any errors.
//
//   node viewers.mjs PAGE_A PAGE_B SEGMENT_URL LAG
import { launch } from './browser.mjs';

const [pageA, pageB, segment, lag] = process.argv.slice(2);
const browser = await launch();
const out = { errors: [], logs: [] };
const time = (p) => p.evaluate(() => document.querySelector('video').currentTime);
const stats = (p) => p.evaluate(() => PacmanPeers.stats());
async function viewer(name, url) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => out.errors.push(`${name}: ${e}`));
  page.on('console', (m) => { if (m.text().includes('pacman')) out.logs.push(`${name} ${m.type()}: ${m.text()}`); });
  await page.goto(url);
  return { ctx, page };
}
try {
  const a = await viewer('a', pageA);
  await a.page.waitForFunction((t) => document.querySelector('video').currentTime > t, Number(lag), { timeout: 30000 });
  const b = await viewer('b', pageB);
  // b's first dial of a, or one of its retries, connects it; b then
  // plays 6 s more. A b that never connects is measured after 25 s.
  for (const deadline = Date.now() + 25000; Date.now() < deadline;) {
    const s = await stats(b.page);
    if (s.peers > 0 || s.dropped > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  out.bConnected = await stats(b.page);
  await b.page.waitForFunction((t) => document.querySelector('video').currentTime > t + 6, await time(b.page), { timeout: 30000 });
  out.a = await stats(a.page);
  out.b = await stats(b.page);
  out.hlsErrors = { a: await a.page.evaluate(() => window.hlsErrors), b: await b.page.evaluate(() => window.hlsErrors) };
  // b's bytes, through the loader hls.js uses.
  out.digest = await b.page.evaluate((u) => new Promise((resolve, reject) => {
    const loader = new hls.config.fLoader(hls.config);
    loader.load({ url: u, responseType: 'arraybuffer' }, { timeout: 10000 }, {
      onSuccess: async (r) => resolve([...new Uint8Array(await crypto.subtle.digest('SHA-256', r.data))].map((x) => x.toString(16).padStart(2, '0')).join('')),
      onError: (e) => reject(new Error(e.text)),
      onTimeout: () => reject(new Error('timeout')),
    });
  }), segment);
  // a leaves: b plays on from the edge.
  await a.ctx.close();
  out.bBefore = await time(b.page);
  await b.page.waitForFunction((t) => document.querySelector('video').currentTime > t + 6, out.bBefore, { timeout: 30000 });
  out.bAfter = await time(b.page);
  out.bLast = await stats(b.page);
  out.bErrors = await b.page.evaluate(() => window.hlsErrors);
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
