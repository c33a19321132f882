// Package guard is the node's defence against peers that lie or sit on
// wants: it drops peers that send blocks nobody asked for, marks mute the
// ones that claim blocks and send nothing, and refuses banned peers'
// connections. The scheduler asks it which peers not to ask.
package guard

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/exchange"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"
)

const (
	// junkStrikes is how many blocks nobody asked for a peer may send
	// before it is dropped. A block whose bytes do not match the CID a
	// peer claims hashes to a CID nobody asked for, so lying peers are
	// caught this way; honest peers only send what was wanted.
	junkStrikes = 3
	// banFor is how long a dropped peer is refused.
	banFor = 10 * time.Minute
	// rememberedWants bounds the CIDs remembered as asked for.
	rememberedWants = 1 << 16
	// muteAfter is how long a peer may hold a want-block without sending
	// any block or DONT_HAVE at all before it counts as mute: it claimed
	// blocks (HAVE) it does not send. A busy peer keeps sending blocks for
	// its older wants and is never mute.
	muteAfter = 5 * time.Second
	// mutedFor is how long a mute peer is asked only when no other holder
	// is left. It is not refused: a seeder that was mute because others
	// held it up comes back at once.
	mutedFor = time.Minute
)

// Guard watches bitswap traffic and drops peers that send blocks the
// node never asked for: every block is verified against its CID anyway, so
// junk is never stored or served, but a peer sending it wastes bandwidth
// and, in a session, the time of the viewer waiting for the real block.
// It is a bitswap tracer and a libp2p connection gater.
type Guard struct {
	log *zap.Logger

	// gateways are the HTTP gateways' peer IDs; set before bitswap runs.
	gateways map[peer.ID]bool

	mu      sync.Mutex // guards everything below
	wanted  *simplelru.LRU[string, struct{}]
	viaHTTP *simplelru.LRU[string, struct{}] // blocks lately received from gateways
	strikes map[peer.ID]strikes
	banned  map[peer.ID]time.Time
	muted   map[peer.ID]time.Time
	// waiting holds, per peer, the want-blocks sent to it that it has
	// answered neither with the block nor with DONT_HAVE, and when they
	// were sent; answered is when the peer last answered anything.
	waiting  map[peer.ID]map[string]time.Time
	answered map[peer.ID]time.Time
	drop     func(peer.ID) // closes a peer's connections; set once the host runs
}

// strikes counts a peer's unasked-for blocks, forgotten banFor after the
// last.
type strikes struct {
	n    int
	last time.Time
}

// New returns a guard that knows gateways, the HTTP gateways bitswap asks
// as peers, for what they are.
func New(log *zap.Logger, gateways []peer.AddrInfo) *Guard {
	wanted, _ := simplelru.NewLRU[string, struct{}](rememberedWants, nil)  // size > 0
	viaHTTP, _ := simplelru.NewLRU[string, struct{}](rememberedWants, nil) // size > 0
	g := &Guard{
		log: log, wanted: wanted, viaHTTP: viaHTTP,
		strikes: map[peer.ID]strikes{}, banned: map[peer.ID]time.Time{}, muted: map[peer.ID]time.Time{}, gateways: map[peer.ID]bool{},
		waiting: map[peer.ID]map[string]time.Time{}, answered: map[peer.ID]time.Time{},
	}
	for _, p := range gateways {
		g.gateways[p.ID] = true
	}
	return g
}

// CameViaHTTP reports whether block c was received from an HTTP gateway.
func (g *Guard) CameViaHTTP(c cid.Cid) bool {
	if len(g.gateways) == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.viaHTTP.Contains(string(c.Hash()))
}

// Want remembers that the node asks peers for c. Sessions call it before
// they ask, so a fast answer cannot arrive before the want is known (the
// bitswap tracer reports sent wants only after sending them).
func (g *Guard) Want(c cid.Cid) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wanted.Add(string(c.Hash()), struct{}{})
}

// SetDrop sets how a peer's connections are closed, once the host runs.
func (g *Guard) SetDrop(drop func(peer.ID)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drop = drop
}

// MessageSent is part of the bitswap tracer, which reports only the
// server's messages; the client's wants reach wantsSent through
// guardedNetwork.
func (g *Guard) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// wantsSent records the want-blocks sent to p, and forgets cancelled ones,
// for the mute check; wants as such are recorded by want.
func (g *Guard) wantsSent(p peer.ID, msg bsmsg.BitSwapMessage) {
	entries := msg.Wantlist()
	if len(entries) == 0 {
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.waiting[p]
	for _, e := range entries {
		k := string(e.Cid.Hash())
		switch {
		case e.Cancel:
			delete(w, k)
		case e.WantType == pb.Message_Wantlist_Block:
			if w == nil {
				w = map[string]time.Time{}
				g.waiting[p] = w
			}
			if _, ok := w[k]; !ok {
				w[k] = now
			}
		}
	}
}

// answer notes that p answered its want-blocks for cids, with the block or
// DONT_HAVE. Only answers to wants count: a peer sending blocks nobody
// asked it for makes no progress. The caller holds g.mu.
func (g *Guard) answer(p peer.ID, cids []cid.Cid) {
	w := g.waiting[p]
	for _, c := range cids {
		k := string(c.Hash())
		if _, ok := w[k]; ok {
			delete(w, k)
			g.answered[p] = time.Now()
		}
	}
}

// forget drops, at now, what the guard holds of peers whose marks have
// run out: expired bans and mutes, strikes banFor old, and answer times of
// peers no want waits on (an answer older than every want counts for
// nothing). Peers that never come back cost nothing then, however many
// come and go. The caller holds g.mu.
func (g *Guard) forget(now time.Time) {
	for p, until := range g.banned {
		if now.After(until) {
			delete(g.banned, p)
		}
	}
	for p, until := range g.muted {
		if now.After(until) {
			delete(g.muted, p)
		}
	}
	for p, st := range g.strikes {
		if now.Sub(st.last) > banFor {
			delete(g.strikes, p)
		}
	}
	for p := range g.answered {
		if len(g.waiting[p]) == 0 {
			delete(g.answered, p)
		}
	}
}

// checkMute marks muted the peers that hold a want-block for longer than
// muteAfter and have answered nothing since it was sent, and closes their
// connections: bitswap sends each peer a want once however many sessions
// want it, so only a new connection ends a want it sits on. They may
// connect again at once.
func (g *Guard) checkMute(now time.Time) {
	var mute []peer.ID
	g.mu.Lock()
	for p, w := range g.waiting {
		if len(w) == 0 {
			delete(g.waiting, p)
			continue
		}
		oldest := now
		for _, t := range w {
			if t.Before(oldest) {
				oldest = t
			}
		}
		if now.Sub(oldest) > muteAfter && g.answered[p].Before(oldest) {
			mute = append(mute, p)
			delete(g.waiting, p)
			delete(g.answered, p)
			g.muted[p] = now.Add(mutedFor)
		}
	}
	g.forget(now)
	drop := g.drop
	g.mu.Unlock()
	for _, p := range mute {
		g.log.Warn("dropping a peer that holds wanted blocks without sending them", zap.Stringer("peer", p))
		if drop != nil {
			drop(p)
		}
	}
}

// Watch runs the mute check every second until ctx ends.
func (g *Guard) Watch(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.checkMute(now)
		}
	}
}

// MessageReceived counts the blocks p sent that nobody asked for.
func (g *Guard) MessageReceived(p peer.ID, msg bsmsg.BitSwapMessage) {
	blks := msg.Blocks()
	if dontHaves := msg.DontHaves(); len(dontHaves) > 0 {
		g.mu.Lock()
		g.answer(p, dontHaves)
		g.mu.Unlock()
	}
	if len(blks) == 0 {
		return
	}
	g.mu.Lock()
	for _, b := range blks {
		g.answer(p, []cid.Cid{b.Cid()})
		if g.wanted.Contains(string(b.Cid().Hash())) {
			// A block the node wants, even one whose want to p was
			// cancelled because another peer was first: p is working
			// through its queue, not withholding.
			g.answered[p] = time.Now()
		}
	}
	if g.gateways[p] {
		for _, b := range blks {
			g.viaHTTP.Add(string(b.Cid().Hash()), struct{}{})
		}
	}
	junk := 0
	for _, b := range blks {
		if !g.wanted.Contains(string(b.Cid().Hash())) {
			junk++
		}
	}
	if junk == 0 {
		g.mu.Unlock()
		return
	}
	st := g.strikes[p]
	st.n += junk
	st.last = time.Now()
	g.strikes[p] = st
	ban := st.n >= junkStrikes
	if ban {
		delete(g.strikes, p)
		g.banned[p] = time.Now().Add(banFor)
	}
	drop := g.drop
	g.mu.Unlock()
	if ban {
		g.log.Warn("dropping a peer that sends blocks nobody asked for", zap.Stringer("peer", p))
		if drop != nil {
			go drop(p)
		}
	}
}

// IsBanned reports whether p is refused, forgetting expired bans.
func (g *Guard) IsBanned(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[p]
	if ok && time.Now().After(until) {
		delete(g.banned, p)
		return false
	}
	return ok
}

// IsMuted reports whether p was lately mute, forgetting expired marks.
func (g *Guard) IsMuted(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.muted[p]
	if ok && time.Now().After(until) {
		delete(g.muted, p)
		return false
	}
	return ok
}

// InterceptPeerDial refuses to dial banned peers.
func (g *Guard) InterceptPeerDial(p peer.ID) bool { return !g.IsBanned(p) }

// InterceptAddrDial allows every address.
func (g *Guard) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool { return true }

// InterceptAccept allows every inbound connection until its peer is known.
func (g *Guard) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses connections from banned peers.
func (g *Guard) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.IsBanned(p)
}

// InterceptUpgraded allows every upgraded connection.
func (g *Guard) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Network returns net with the client's outgoing wants shown to the guard.
func (g *Guard) Network(net bsnetwork.BitSwapNetwork) bsnetwork.BitSwapNetwork {
	return guardedNetwork{net, g}
}

// Exchange returns bs with every want recorded by the guard before peers
// are asked.
func (g *Guard) Exchange(bs *bitswap.Bitswap) exchange.SessionExchange {
	return guardedExchange{guardedFetcher{bs, g}, bs}
}

// guardedNetwork is the bitswap network with the client's outgoing wants
// shown to the guard.
type guardedNetwork struct {
	bsnetwork.BitSwapNetwork
	g *Guard
}

func (n guardedNetwork) NewMessageSender(ctx context.Context, p peer.ID, opts *bsnetwork.MessageSenderOpts) (bsnetwork.MessageSender, error) {
	ms, err := n.BitSwapNetwork.NewMessageSender(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return guardedSender{ms, p, n.g}, nil
}

// guardedSender shows every message it sends to the guard.
type guardedSender struct {
	bsnetwork.MessageSender
	p peer.ID
	g *Guard
}

func (s guardedSender) SendMsg(ctx context.Context, msg bsmsg.BitSwapMessage) error {
	s.g.wantsSent(s.p, msg)
	return s.MessageSender.SendMsg(ctx, msg)
}

// guardedFetcher records every want with the guard before asking peers.
type guardedFetcher struct {
	exchange.Fetcher
	g *Guard
}

func (f guardedFetcher) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	f.g.Want(c)
	return f.Fetcher.GetBlock(ctx, c)
}

func (f guardedFetcher) GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error) {
	for _, c := range cs {
		f.g.Want(c)
	}
	return f.Fetcher.GetBlocks(ctx, cs)
}

// guardedExchange is bitswap with every want recorded, for the block
// service that imports and the gateways the benchmarks compare use.
type guardedExchange struct {
	guardedFetcher
	bs *bitswap.Bitswap
}

func (e guardedExchange) NotifyNewBlocks(ctx context.Context, blks ...blocks.Block) error {
	return e.bs.NotifyNewBlocks(ctx, blks...)
}

func (e guardedExchange) Close() error { return e.bs.Close() }

func (e guardedExchange) NewSession(ctx context.Context) exchange.Fetcher {
	return guardedFetcher{e.bs.NewSession(ctx), e.g}
}

var _ exchange.SessionExchange = guardedExchange{}
