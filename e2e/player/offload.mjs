// The bench's viewers (bench/viewers/run.sh): N viewers of URL in separate
// Chromium contexts, starting GAP seconds apart, each playing PLAY
// seconds. Prints each viewer's PacmanPeers.stats() as a JSON array
// (nulls for a page without peer.js).
//
//   node offload.mjs URL N GAP PLAY
import { launch } from './browser.mjs';

const [url, n, gap, play] = process.argv.slice(2);
const browser = await launch();
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
async function viewer(i) {
  await sleep(i * Number(gap));
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(url);
  await sleep(Number(play));
  const stats = await page.evaluate(() => (window.PacmanPeers ? PacmanPeers.stats() : null));
  await ctx.close();
  return stats;
}
try {
  console.log(JSON.stringify(await Promise.all([...Array(Number(n)).keys()].map(viewer))));
} finally {
  await browser.close();
}
