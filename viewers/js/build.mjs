// Bundles src/peer.js and every package it uses into ../peer.js, and
// gathers the licence of each bundled package into ../peer.LICENSES.txt.
// Run at development time (npm ci && npm run build); the outputs are
// committed, so building pacman needs only Go.
import { build } from 'esbuild'
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'

// `node build.mjs --tamper OUT` builds, into OUT, the tests' lying viewer:
// the same script, serving every block with a byte changed.
const tamperAt = process.argv.indexOf('--tamper')
const tamperOut = tamperAt > 0 ? process.argv[tamperAt + 1] : null
if (tamperAt > 0 && !tamperOut) throw new Error('--tamper needs an output file')

// Fixes to bundled packages, each for a bug named here, applied as the
// bundle is built; the build fails if one no longer applies.
const patches = [{
  // @helia/bitswap (3.2.3; 4.0.19 too) never sends a cancel: sendMessages
  // skips every entry marked cancel, where it means to skip a cancel only
  // for a want never sent. The viewers asked keep the want and send the
  // block once they get it, to a viewer that took it from the edge long
  // before: upload spent for nothing.
  file: /@helia[\\/]bitswap[\\/]dist[\\/]src[\\/]want-list\.js$/,
  from: 'if (sentPreviously || entry.cancel) {',
  to: 'if (sentPreviously === (entry.cancel !== true)) {'
}]
const patching = {
  name: 'patches',
  setup (b) {
    for (const { file, from, to } of patches) {
      b.onLoad({ filter: file }, args => {
        const src = readFileSync(args.path, 'utf8')
        if (!src.includes(from)) throw new Error(`${args.path}: the patch for "${from}" no longer applies`)
        return { contents: src.replace(from, to), loader: 'js' }
      })
    }
  }
}

const result = await build({
  entryPoints: ['src/peer.js'],
  plugins: [patching],
  define: { TAMPER: tamperOut ? 'true' : 'false' },
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: 'chrome110',
  outfile: tamperOut ?? '../peer.js',
  metafile: true,
  legalComments: 'none',
  banner: { js: '/* pacman peer.js: viewer peers. Bundled packages and their licences: /pacman/peer.LICENSES.txt */' }
})

if (tamperOut) process.exit(0)

// Each bundled file's package: the nearest package.json above it.
const packages = new Map()
for (const input of Object.keys(result.metafile.inputs)) {
  if (!input.includes('node_modules/')) continue
  let dir = dirname(input)
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  if (!pkg.name || !pkg.version) {
    dir = dirname(dir)
    while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  }
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  packages.set(`${meta.name}@${meta.version}`, { dir, license: meta.license })
}
let out = 'pacman peer.js bundles these packages from npm. Each one\'s licence follows.\n'
for (const [name, { dir, license }] of [...packages].sort()) {
  const files = readdirSync(dir).filter(f => /^(licen[cs]e|copying)/i.test(f)).sort()
  out += `\n==== ${name} (${license}) ====\n`
  if (files.length === 0) {
    if (!license) throw new Error(`${name} declares no licence; cannot vendor it`)
    out += `The package ships no licence file; its package.json declares ${license}, whose texts end this file.\n`
  }
  for (const f of files) out += `\n--- ${f} ---\n` + readFileSync(join(dir, f), 'utf8')
}
// The standard texts of the licences packages declare without shipping a
// file: Apache-2.0 for those dual-licensed "Apache-2.0 OR MIT" (the
// choice the dual licence gives), MIT and ISC for the others.
for (const name of ['Apache-2.0', 'MIT', 'ISC']) {
  out += `\n==== the text of ${name} ====\n` + readFileSync(join('licenses', `${name}.txt`), 'utf8')
}
writeFileSync('../peer.LICENSES.txt', out)
console.log(`bundled ${packages.size} packages`)
