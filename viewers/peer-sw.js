// pacman viewer peers' service worker, served at /pacman/peer-sw.js (with
// Service-Worker-Allowed: /). A page registers it with
// PacmanPeers.serve(); it hands each Range request of a <video> or
// <audio> element to that page, whose peer.js answers it from the other
// viewers and the edge (a service worker cannot open WebRTC itself). When
// the page does not answer, or the request is of another kind, the request
// goes to the edge as it would without it.
self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))

self.addEventListener('fetch', (event) => {
  const req = event.request
  if (req.method !== 'GET' || (req.destination !== 'video' && req.destination !== 'audio') || !event.clientId) return
  if (new URL(req.url).origin !== self.location.origin) return // another site's media: not the edge's
  event.respondWith(viaPage(event))
})

// The page has this long to answer a range before the edge is asked.
const patience = 15000

async function viaPage (event) {
  const req = event.request
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get('range') ?? 'bytes=0-')
  const client = await self.clients.get(event.clientId)
  if (m == null || client == null) return fetch(req)
  const channel = new MessageChannel()
  const answer = new Promise((resolve) => {
    channel.port1.onmessage = (e) => resolve(e.data)
    setTimeout(() => resolve(null), patience)
  })
  client.postMessage({ pacman: 'range', url: req.url, start: Number(m[1]), end: m[2] === '' ? null : Number(m[2]) }, [channel.port2])
  const a = await answer
  if (a == null || a.error != null) return fetch(req)
  return new Response(a.body, { status: 206, headers: a.headers })
}
