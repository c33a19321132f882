// pacman viewer peers: a page that loads /pacman/peer.js and calls
// PacmanPeers.attach(hls) has hls.js take its segments and parts from the
// other viewers of the same content where they have them, and from the
// edge over HTTP where they do not, and serves what it holds to them.
//
//   - The edge is the tracker and the signalling relay (WebTransport to
//     the edge, circuit relay v2 for WebRTC's offer and answer); media
//     goes between viewers over WebRTC only, by bitswap on a protocol of
//     its own (/pacman/viewers/bitswap/1.2.0) that the edge does not speak.
//   - Every block is checked against its CID: bitswap names a received
//     block by its own hash, and each block of a CAR from the edge is
//     hashed before it is kept.
//   - Peers are asked only for a fragment hls.js is loading now, ahead of
//     the playhead, and only for p2pTimeout, or until every viewer asked
//     says it does not have a block; then the edge is asked.
//   - Upload is capped (uploadLimit bytes a second) and off on metered or
//     save-data connections.
import { createLibp2p } from 'libp2p'
import { webTransport } from '@libp2p/webtransport'
import { webRTC } from '@libp2p/webrtc'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { createBitswap } from '@helia/bitswap'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { CarBlockIterator } from '@ipld/car/iterator'
import { exporter } from 'ipfs-unixfs-exporter'

// TAMPER is set only by `node build.mjs --tamper`, for the tests' lying
// viewer, which serves every block with one byte changed; the vendored
// build sets it false and the minifier drops what it guards.
/* global TAMPER */

const TRACKER = '/pacman/viewers/1.0.0'
const BITSWAP = '/pacman/viewers/bitswap/1.2.0'
const CAR = 'application/vnd.ipld.car;version=1;order=dfs;dups=n'
// wantedFor is how long a CID asked of peers stays wanted: a block that
// arrives after the want was met elsewhere or cancelled is not a lie.
const wantedFor = 30000
// rangeChunk bounds the bytes one answer to the service worker carries:
// a player's open-ended range gets this much, and asks again.
const rangeChunk = 1 << 20

const defaults = {
  // How long peers have for a fragment before the edge is asked.
  p2pTimeout: 1500,
  // Bytes a second this viewer uploads at most; 0 uploads nothing.
  uploadLimit: 2 << 20,
  // Bytes of blocks kept to play and to share, oldest dropped first.
  storeBytes: 64 << 20,
  // How often the tracker is asked for the swarm's viewers.
  trackEvery: 5000,
  // The swarm: viewers of the same swarm are introduced. Default: the
  // directory of the first fragment's URL.
  swarm: ''
}

// viewersOnly returns node as bitswap must see it to speak only
// BITSWAP: @helia/bitswap handles and registers the protocols it is given
// but sends every message on /ipfs/bitswap/1.2.0 (network.js, 3.2.3 and
// 4.0.19 alike), which the edge's own bitswap answers. Its dials on that
// protocol go to BITSWAP instead.
function viewersOnly (node) {
  return new Proxy(node, {
    get (target, key) {
      if (key === 'dialProtocol') {
        return (peer, protocols, options) => target.dialProtocol(peer,
          protocols === '/ipfs/bitswap/1.2.0' ? BITSWAP : protocols, options)
      }
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

// notFound is what a store answers for a block it does not hold, as
// bitswap and the exporter expect.
function notFound (cid) {
  const err = new Error(`block ${cid} not held`)
  err.name = 'NotFoundError'
  return err
}

// Blocks is a bounded store of verified blocks, oldest dropped first.
class Blocks {
  constructor (limit) {
    this.limit = limit
    this.map = new Map() // cid string → bytes, oldest first
    this.bytes = 0
  }

  has (cid) { return this.map.has(cid.toString()) }
  bytesOf (cid) { return this.map.get(cid.toString()) }
  put (cid, bytes) {
    const key = cid.toString()
    if (this.map.has(key)) return
    this.map.set(key, bytes)
    this.bytes += bytes.byteLength
    for (const [k, b] of this.map) {
      if (this.bytes <= this.limit) break
      this.map.delete(k)
      this.bytes -= b.byteLength
    }
  }
}

// verified returns bytes if they hash to cid, and throws otherwise.
async function verified (cid, bytes) {
  if (cid.multihash.code !== sha256.code) {
    throw new Error(`block ${cid}: only sha2-256 blocks are taken`)
  }
  const digest = await sha256.digest(bytes)
  if (!sameBytes(digest.digest, cid.multihash.digest)) {
    throw new Error(`block ${cid}: its bytes do not match its CID`)
  }
  return bytes
}

// sameBytes reports whether a and b hold the same bytes.
function sameBytes (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

// metered reports whether the browser says the connection costs by the
// byte or asks to save data.
function metered () {
  const c = navigator.connection
  return c != null && (c.saveData === true || c.type === 'cellular' || c.metered === true)
}

class Peers {
  constructor (base, opts) {
    this.base = base
    this.opts = { ...defaults, ...opts }
    this.blocks = new Blocks(this.opts.storeBytes)
    this.counts = { fromPeers: 0, fromEdge: 0, uploaded: 0, dropped: 0 }
    // wanted remembers the CIDs asked of peers lately: a block of any
    // other CID is one a peer was not asked for, or one whose bytes do
    // not match the CID it was sent for (bitswap names a block by its
    // hash), and its sender is dropped and never dialled again.
    this.wanted = new Map() // cid string → when last asked
    this.banned = new Set() // peer id strings
    this.dialing = new Set() // ids of viewers being dialled
    this.speaking = new Set() // ids of viewers identified as speaking BITSWAP
    this.tokens = this.opts.uploadLimit
    this.refilled = performance.now()
    this.node = null
    this.swarm = this.opts.swarm
    this.ready = this.start().catch(err => {
      console.warn('pacman peers: off, playing from the edge alone:', err)
      this.node = null
    })
  }

  // mayUpload takes n bytes of upload allowance, if there is that much.
  mayUpload (n) {
    if (this.opts.uploadLimit <= 0 || metered()) return false
    const now = performance.now()
    this.tokens = Math.min(this.opts.uploadLimit, this.tokens + (now - this.refilled) / 1000 * this.opts.uploadLimit)
    this.refilled = now
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }

  async start () {
    const info = await (await fetch(new URL('/pacman/viewers.json', this.base))).json()
    if (!Array.isArray(info.addrs) || info.addrs.length === 0) {
      throw new Error('the edge offers viewers no WebTransport address')
    }
    const node = await createLibp2p({
      addresses: { listen: ['/p2p-circuit', '/webrtc'] },
      transports: [
        webTransport(),
        webRTC({ rtcConfiguration: { iceServers: [] } }),
        circuitRelayTransport()
      ],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Viewers and edges on a LAN or loopback are fine to dial.
      connectionGater: {
        denyDialMultiaddr: () => false,
        denyDialPeer: p => this.banned.has(p.toString()),
        denyInboundEncryptedConnection: p => this.banned.has(p.toString())
      },
      services: { identify: identify() }
    })
    const blocks = this.blocks
    // What bitswap serves other viewers: the blocks held, within the
    // upload allowance.
    const serving = {
      has: cid => blocks.has(cid) && !metered() && this.opts.uploadLimit > 0,
      get: cid => {
        const bytes = blocks.bytesOf(cid)
        if (bytes == null || !this.mayUpload(bytes.byteLength)) throw notFound(cid)
        this.counts.uploaded += bytes.byteLength
        if (TAMPER) {
          const bad = bytes.slice()
          bad[0] ^= 0xff
          return (function * () { yield bad })()
        }
        return (function * () { yield bytes })()
      },
      put: async () => {},
      delete: async () => {}
    }
    this.bitswap = createBitswap({
      libp2p: viewersOnly(node),
      blockstore: serving,
      routing: { async * findProviders () {} },
      logger: node.logger,
      getHasher: async code => {
        if (code !== sha256.code) throw new Error(`hash ${code} not taken`)
        return sha256
      }
    }, { protocols: [BITSWAP] })
    await this.bitswap.start()
    // Identified over WebRTC, as bitswap counts it: identify over the
    // relayed connection that signalled it comes first, and bitswap's
    // topology skips that one.
    node.addEventListener('peer:identify', e => {
      const { connection, protocols, peerId } = e.detail
      if (connection.limits == null && protocols.includes(BITSWAP)) this.speaking.add(peerId.toString())
    })
    node.addEventListener('peer:disconnect', e => this.speaking.delete(e.detail.toString()))
    this.bitswap.wantList.addEventListener('block', e => this.check(e.detail.sender, e.detail.cid))
    for (const a of info.addrs) {
      try {
        await node.dial(multiaddr(a))
        this.edge = a
        break
      } catch (err) {
        console.warn('pacman peers: edge address', a, err)
      }
    }
    if (this.edge == null) throw new Error('no edge address answered')
    this.node = node
    this.timer = setInterval(() => { this.track().catch(() => {}) }, this.opts.trackEvery)
  }

  // check drops sender if cid was not asked for lately.
  check (sender, cid) {
    const now = performance.now()
    for (const [k, at] of this.wanted) {
      if (now - at < wantedFor) break
      this.wanted.delete(k)
    }
    if (this.wanted.has(cid.toString())) return
    const id = sender.toString()
    if (this.banned.has(id)) return
    this.banned.add(id)
    this.counts.dropped++
    console.warn('pacman peers: dropped viewer', id, 'for a block nobody asked for (or with bytes that do not match its CID)')
    this.node.hangUp(sender).catch(() => {})
  }

  // track asks the edge for the swarm's viewers and dials those not
  // connected, over WebRTC through the edge's relay. It returns once one
  // of them is connected, or all dials ended: a viewer that left without
  // a word (the edge names it until its connection times out) holds no
  // one up.
  async track () {
    if (this.node == null || this.swarm === '') return
    if (!this.relayed()) return // not reachable yet: join once the relay took us
    const stream = await this.node.dialProtocol(multiaddr(this.edge), TRACKER, { signal: AbortSignal.timeout(5000) })
    const lp = lpStream(stream)
    await lp.write(new TextEncoder().encode(this.swarm))
    const answer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
    await stream.close()
    if (answer.error) throw new Error(answer.error)
    // Connected means over WebRTC: a relayed connection left by a failed
    // upgrade carries no media, and the viewer is dialled again.
    const connected = new Set(this.viewers().map(c => c.remotePeer.toString()))
    const dials = []
    const now = performance.now()
    const first = this.told == null
    this.told ??= new Map() // viewer id → when the tracker first named it
    for (const id of answer.peers ?? []) {
      if (connected.has(id) || this.banned.has(id)) continue
      // A viewer that joins dials the swarm; the others wait a round for
      // it to, so that two viewers do not dial each other at once (two
      // WebRTC negotiations crossing over the relay can both fail).
      if (!this.told.has(id)) this.told.set(id, now)
      if (!first && now - this.told.get(id) < this.opts.trackEvery) continue
      dials.push(this.dialViewer(id))
    }
    await new Promise(resolve => {
      let left = dials.length
      if (left === 0) resolve()
      for (const d of dials) d.then(ok => { if (ok || --left === 0) resolve() })
    })
  }

  // dialViewer connects to viewer id over WebRTC through the edge's relay,
  // unless a dial to it is under way. A negotiation that stalls is given
  // up after 5 s and tried again, up to three times, each over a fresh
  // circuit: the relayed connection a stalled attempt signalled over is
  // closed first. What a failed attempt last reached is logged. It
  // reports whether this dial connected.
  async dialViewer (id) {
    if (this.dialing.has(id)) return false
    this.dialing.add(id)
    const addr = multiaddr(`${this.edge}/p2p-circuit/webrtc/p2p/${id}`)
    try {
      for (let attempt = 1; attempt <= 3; attempt++) {
        let reached = 'nothing'
        try {
          await this.node.dial(addr, { signal: AbortSignal.timeout(5000), onProgress: e => { reached = e.type } })
          await this.identified(id, 2000)
          return true
        } catch (err) {
          console.debug('pacman peers: dialling viewer', id, 'attempt', attempt, 'reached', reached, err)
          const circuits = this.node.getConnections().filter(c => c.limits != null && c.remotePeer.toString() === id)
          await Promise.all(circuits.map(c => c.close().catch(() => {})))
        }
      }
    } finally {
      this.dialing.delete(id)
    }
    return false
  }

  // identified resolves once viewer id is known to speak BITSWAP (its
  // identify came), when bitswap sends it wants, or after ms.
  identified (id, ms) {
    if (this.speaking.has(id)) return Promise.resolve()
    return new Promise(resolve => {
      const done = () => { this.node.removeEventListener('peer:identify', check); clearTimeout(timer); resolve() }
      const check = () => { if (this.speaking.has(id)) done() }
      const timer = setTimeout(done, ms)
      this.node.addEventListener('peer:identify', check)
    })
  }

  // askable returns the connections of the viewers bitswap asks: over
  // WebRTC and identified there.
  askable () {
    return this.viewers().filter(c => this.speaking.has(c.remotePeer.toString()))
  }

  // viewers returns the connected viewers (not the edge) over WebRTC.
  viewers () {
    if (this.node == null) return []
    return this.node.getConnections().filter(c => c.remoteAddr.toString().includes('/webrtc') && !c.limits)
  }

  // join puts this viewer in the swarm of url, once, and returns when one
  // of the viewers it was told of is connected, or none could be.
  join (url, swarm) {
    if (this.joined == null) {
      if (this.swarm === '') {
        const u = new URL(url, location.href)
        this.swarm = swarm ?? u.host + u.pathname.replace(/[^/]*$/, '')
      }
      this.joined = this.whenRelayed().then(() => this.track()).catch(() => {})
    }
    return this.joined
  }

  // joinFile joins the swarm of one file's viewers (its own URL), as
  // plain <video src> playing does.
  joinFile (url) {
    const u = new URL(url, location.href)
    return this.join(url, u.host + u.pathname)
  }

  // relayed reports whether the edge's relay holds a slot for this
  // viewer: whether other viewers can reach it.
  relayed () {
    return this.node != null && this.node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))
  }

  // whenRelayed resolves once the edge's relay holds a slot for this
  // viewer, so that others can reach it, or after 5 s.
  whenRelayed () {
    if (this.node == null || this.relayed()) return Promise.resolve()
    return new Promise(resolve => {
      const done = () => { this.node.removeEventListener('self:peer:update', check); clearTimeout(timer); resolve() }
      const check = () => { if (this.relayed()) done() }
      const timer = setTimeout(done, 5000)
      this.node.addEventListener('self:peer:update', check)
    })
  }

  // load returns the bytes of url: from the viewers if they have them
  // within budget ms, else from the edge. Joining the swarm (on the first
  // load, unless the playlist's load joined it) counts against the
  // budget; with none, the edge is asked at once and the swarm joined
  // for the fragments after.
  async load (url, signal, budget = this.opts.p2pTimeout) {
    await this.ready
    const start = performance.now()
    const joined = this.join(url)
    if (budget > 0) {
      await Promise.race([joined, new Promise(resolve => setTimeout(resolve, budget))])
      const left = budget - (performance.now() - start)
      if (left > 0 && this.askable().length > 0) {
        try {
          return await this.fromPeers(url, signal, left)
        } catch (err) {
          if (signal.aborted) throw err
        }
      }
    }
    return await this.fromEdge(url, signal)
  }

  async fromPeers (url, signal, timeout) {
    const head = await fetch(url, { method: 'HEAD', signal })
    const root = rootOf(head)
    if (root == null) throw new Error('the edge named no root')
    return await this.assembleFromPeers(root, signal, undefined, timeout)
  }

  // assembleFromPeers reads root's file (or span of it) from the blocks
  // held and the viewers', who have p2pTimeout for all of it.
  async assembleFromPeers (root, signal, span, timeout = this.opts.p2pTimeout) {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeout)])
    const store = {
      get: async function * (cid) {
        let bytes = this.blocks.bytesOf(cid)
        if (bytes == null) {
          this.wanted.delete(cid.toString())
          this.wanted.set(cid.toString(), performance.now())
          // Checked here too, not only by bitswap's naming of blocks.
          bytes = await verified(cid, await this.want(cid, deadline))
          this.blocks.put(cid, bytes)
          this.counts.fromPeers += bytes.byteLength
        }
        yield bytes
      }.bind(this)
    }
    return await assemble(root, store, deadline, span)
  }

  // want asks the viewers connected for block cid until signal, and gives
  // up at once when every one of them that bitswap knows says it does not
  // have it (bitswap's DONT_HAVE): a fragment no viewer holds, or none may
  // upload, goes to the edge without waiting out p2pTimeout. A viewer not
  // yet identified is sent the want without asking for DONT_HAVE, so only
  // the signal ends a want that only such viewers were asked.
  async want (cid, signal) {
    const asked = new Set(this.askable().map(c => c.remotePeer.toString()))
    const lacking = new Set()
    const nobody = new AbortController()
    const presence = e => {
      const { sender, cid: about, has } = e.detail
      const id = sender.toString()
      if (has || !asked.has(id) || !sameBytes(about.multihash.bytes, cid.multihash.bytes)) return
      lacking.add(id)
      if (lacking.size === asked.size) nobody.abort(new Error(`no viewer has block ${cid}`))
    }
    this.bitswap.wantList.addEventListener('presence', presence)
    try {
      return await this.bitswap.want(cid, { signal: AbortSignal.any([signal, nobody.signal]) })
    } finally {
      this.bitswap.wantList.removeEventListener('presence', presence)
    }
  }

  async fromEdge (url, signal) {
    const root = await this.carFromEdge(url, signal)
    return await assemble(root, this.held(), signal)
  }

  // carFromEdge fetches url from the edge as a CAR, keeps its blocks,
  // each hashed first, and returns the content's root.
  async carFromEdge (url, signal) {
    const resp = await fetch(url, { headers: { Accept: CAR }, signal })
    if (!resp.ok) throw new Error(`${url}: ${resp.status}`)
    const car = new Uint8Array(await resp.arrayBuffer())
    this.counts.fromEdge += car.byteLength
    const it = await CarBlockIterator.fromBytes(car)
    for await (const { cid, bytes } of it) {
      this.blocks.put(cid, await verified(cid, bytes))
    }
    return rootOf(resp) ?? (await it.getRoots())[0]
  }

  // held is the blocks held, as the exporter reads a store.
  held () {
    const blocks = this.blocks
    return {
      get: async function * (cid) {
        const bytes = blocks.bytesOf(cid)
        if (bytes == null) throw notFound(cid)
        yield bytes
      }
    }
  }

  // range answers the service worker: bytes start to end (null: to the
  // end; at most rangeChunk) of the file at url, from the viewers if they
  // have them in time, else from the edge (a CAR of just those bytes,
  // entity-bytes). The file's swarm is its own URL.
  async range (url, start, end) {
    await this.ready
    const meta = await this.meta(url)
    if (start >= meta.size) throw new Error(`range starts past the file's ${meta.size} bytes`)
    const last = Math.min(end ?? Infinity, meta.size - 1, start + rangeChunk - 1)
    const span = { offset: start, length: last - start + 1 }
    const u = new URL(url, location.href)
    await Promise.race([this.joinFile(url), new Promise(resolve => setTimeout(resolve, this.opts.p2pTimeout))])
    // What is held answers at once; peers have p2pTimeout, and a second
    // more per MiB, for the rest.
    let body = await assemble(meta.root, this.held(), AbortSignal.timeout(60000), span).catch(() => null)
    if (body == null && this.askable().length > 0) {
      const timeout = this.opts.p2pTimeout + 1000 * span.length / (1 << 20)
      body = await this.assembleFromPeers(meta.root, AbortSignal.timeout(60000), span, timeout).catch(() => null)
    }
    if (body == null) {
      u.searchParams.set('entity-bytes', `${start}:${last}`)
      await this.carFromEdge(u.toString(), AbortSignal.timeout(60000))
      body = await assemble(meta.root, this.held(), AbortSignal.timeout(60000), span)
    }
    return {
      body: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength),
      headers: {
        'Content-Type': meta.type,
        'Content-Range': `bytes ${start}-${last}/${meta.size}`,
        'Content-Length': String(span.length),
        'Accept-Ranges': 'bytes'
      }
    }
  }

  // meta returns the root, size and type of the file at url (a HEAD to
  // the edge, remembered for the last few files).
  async meta (url) {
    this.metas ??= new Map()
    let m = this.metas.get(url)
    if (m == null) {
      const head = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(10000) })
      const root = rootOf(head)
      const size = Number(head.headers.get('Content-Length'))
      if (!head.ok || root == null || !Number.isSafeInteger(size)) throw new Error(`${url}: ${head.status}, no root or size`)
      m = { root, size, type: head.headers.get('Content-Type') ?? 'application/octet-stream' }
      this.metas.set(url, m)
      if (this.metas.size > 16) this.metas.delete(this.metas.keys().next().value)
    }
    return m
  }

  stats () {
    return { ...this.counts, peers: new Set(this.viewers().map(c => c.remotePeer.toString())).size }
  }
}

// rootOf returns the content's CID from a response's X-Ipfs-Roots (the
// last of the path's CIDs), or null.
function rootOf (resp) {
  const roots = resp.headers.get('X-Ipfs-Roots')
  if (!roots) return null
  return CID.parse(roots.split(',').pop().trim())
}

// assemble reads the file root names out of store: all of it, or length
// bytes from offset.
async function assemble (root, store, signal, span = {}) {
  const entry = await exporter(root, store, { signal })
  const parts = []
  let size = 0
  for await (const chunk of entry.content({ signal, ...span })) {
    parts.push(chunk)
    size += chunk.byteLength
  }
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

// spare is the buffer, in seconds, that peers may not eat into: a
// fragment is asked of them for what the player holds beyond it (at most
// p2pTimeout), and one needed sooner comes from the edge at once.
const spare = 1

// ahead returns the seconds media holds buffered past its playhead.
function ahead (media) {
  if (media == null) return 0
  const t = media.currentTime
  for (let i = 0; i < media.buffered.length; i++) {
    if (media.buffered.start(i) <= t + 0.1 && t < media.buffered.end(i)) return media.buffered.end(i) - t
  }
  return 0
}

// loaderFor returns an hls.js fragment loader that loads through peers,
// for hls.
function loaderFor (Base, peers, hls) {
  return class PeerLoader {
    constructor (config) {
      this.base = new Base(config)
      this.own = null
      this.controller = null
    }

    get stats () { return this.own ?? this.base.stats }
    get context () { return this.ctx ?? this.base.context }

    load (context, config, callbacks) {
      if (context.rangeStart || context.rangeEnd) {
        this.own = null
        return this.base.load(context, config, callbacks)
      }
      this.ctx = context
      const stats = this.own = {
        aborted: false, loaded: 0, retry: 0, total: 0, chunkCount: 0, bwEstimate: 0,
        loading: { start: performance.now(), first: 0, end: 0 },
        parsing: { start: 0, end: 0 },
        buffering: { start: 0, first: 0, end: 0 }
      }
      const controller = this.controller = new AbortController()
      const budget = Math.min(peers.opts.p2pTimeout, (ahead(hls.media) - spare) * 1000)
      peers.load(context.url, controller.signal, budget).then(data => {
        if (controller.signal.aborted) return
        stats.loading.first = stats.loading.end = performance.now()
        stats.loaded = stats.total = data.byteLength
        const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
        callbacks.onSuccess({ url: context.url, data: buf }, stats, context, null)
      }, err => {
        if (controller.signal.aborted) return
        callbacks.onError({ code: 0, text: String(err) }, context, null, stats)
      })
    }

    abort () {
      if (this.controller) {
        this.controller.abort()
        if (this.own) this.own.aborted = true
      }
      this.base.abort()
    }

    destroy () {
      this.abort()
      this.base.destroy()
    }
  }
}

const base = document.currentScript?.src ?? location.href
let peers = null

window.PacmanPeers = {
  // attach makes hls (an hls.js instance) load its fragments through
  // viewer peers. opts override the defaults above.
  attach (hls, opts = {}) {
    if (peers == null) peers = new Peers(base, opts)
    const Base = hls.config.loader
    hls.config.fLoader = loaderFor(Base, peers, hls)
    // The stream's viewers are joined as its playlist loads, so that they
    // are connected by the time fragments may come from them.
    hls.on('hlsManifestLoading', (_, data) => { peers.ready.then(() => peers.join(data.url)) })
    return peers.ready
  },
  // serve registers the service worker that hands plain <video src> and
  // <audio src> Range requests under scope to this page's peers; it
  // resolves once the page is controlled, when media URLs may be set.
  async serve ({ scope = '/', ...opts } = {}) {
    if (!('serviceWorker' in navigator)) throw new Error('this browser has no service workers')
    if (peers == null) peers = new Peers(base, opts)
    navigator.serviceWorker.addEventListener('message', e => {
      if (e.data?.pacman !== 'range' || e.ports[0] == null) return
      const port = e.ports[0]
      peers.range(e.data.url, e.data.start, e.data.end).then(
        a => port.postMessage(a, [a.body]),
        err => port.postMessage({ error: String(err) }))
    })
    await navigator.serviceWorker.register(new URL('/pacman/peer-sw.js', base), { scope })
    await navigator.serviceWorker.ready
    if (navigator.serviceWorker.controller == null) {
      await new Promise(resolve => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }))
    }
    return peers.ready
  },
  // join puts this page among the viewers of the file at url, as a
  // <video src> of it would be on its first range, and resolves once one
  // of the viewers the edge names is connected, or none could be. A page
  // that calls it before setting src can have the first ranges from them.
  async join (url) {
    if (peers == null) throw new Error('PacmanPeers.join: call serve() first')
    await peers.ready
    return peers.joinFile(url)
  },
  // stats returns the bytes taken from peers and from the edge, the bytes
  // uploaded, and the viewers connected.
  async stats () {
    if (peers == null) return { fromPeers: 0, fromEdge: 0, uploaded: 0, peers: 0 }
    await peers.ready
    return peers.stats()
  }
}
