package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

const (
	// wantRate and wantBurst bound the wants one peer may hand the
	// bitswap server: a busy edge asks a peer a few thousand a second
	// (a want-have and a want-block per leaf, many streams at once); a
	// flood asks tens of thousands. A cut want gets no answer, and a
	// pacman client drops a peer that leaves want-blocks unanswered, so
	// honest peers must stay well under it.
	wantRate  = 4000
	wantBurst = 16384
	// addressWantRate and addressWantBurst bound the wants of all the
	// peers at one address together: peer IDs are free, addresses not.
	// Twice what the peers one address may connect (8) may ask at their
	// own rate, so Sybils at their cap leave room for an honest peer
	// behind the same address.
	addressWantRate  = 16 * wantRate
	addressWantBurst = 16 * wantBurst
	// gatedPeers bounds the peers and addresses the gate remembers.
	gatedPeers = 4096
)

// wantGate bounds the wants that reach the bitswap server from each peer
// and from each address: past its rate a message's new wants are cut
// (cancels, blocks and presences always pass). A peer that sends
// thousands of wants costs the server's workers and the store's lookups
// what an honest leecher's do, not more.
type wantGate struct {
	bsnetwork.BitSwapNetwork
	addrOf func(peer.ID) string // a peer's IP address, "" if not known
	cut    atomic.Int64         // wants cut since start

	mu    sync.Mutex // guards peers and addrs
	peers *simplelru.LRU[peer.ID, *rate.Limiter]
	addrs *simplelru.LRU[string, *rate.Limiter]
}

func newWantGate(net bsnetwork.BitSwapNetwork, addrOf func(peer.ID) string) *wantGate {
	peers, _ := simplelru.NewLRU[peer.ID, *rate.Limiter](gatedPeers, nil) // size > 0
	addrs, _ := simplelru.NewLRU[string, *rate.Limiter](gatedPeers, nil)  // size > 0
	return &wantGate{BitSwapNetwork: net, addrOf: addrOf, peers: peers, addrs: addrs}
}

// Start starts the network with each receiver behind the gate.
func (g *wantGate) Start(rs ...bsnetwork.Receiver) {
	gated := make([]bsnetwork.Receiver, len(rs))
	for i, r := range rs {
		gated[i] = gatedReceiver{r, g}
	}
	g.BitSwapNetwork.Start(gated...)
}

// admit takes up to n wants from p's and its address's budgets and
// returns how many it took.
func (g *wantGate) admit(p peer.ID, n int, now time.Time) int {
	addr := g.addrOf(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	lims := []*rate.Limiter{limiter(g.peers, p, wantRate, wantBurst)}
	if addr != "" {
		lims = append(lims, limiter(g.addrs, addr, addressWantRate, addressWantBurst))
	}
	for _, l := range lims {
		n = min(n, int(l.TokensAt(now)))
	}
	n = max(n, 0)
	for _, l := range lims {
		l.AllowN(now, n)
	}
	return n
}

func limiter[K comparable](lru *simplelru.LRU[K, *rate.Limiter], k K, r rate.Limit, burst int) *rate.Limiter {
	l, ok := lru.Get(k)
	if !ok {
		l = rate.NewLimiter(r, burst)
		lru.Add(k, l)
	}
	return l
}

// gatedReceiver hands the bitswap server what the gate admits.
type gatedReceiver struct {
	bsnetwork.Receiver
	g *wantGate
}

func (r gatedReceiver) ReceiveMessage(ctx context.Context, p peer.ID, msg bsmsg.BitSwapMessage) {
	wants := 0
	for _, e := range msg.Wantlist() {
		if !e.Cancel {
			wants++
		}
	}
	if wants > 0 {
		if n := r.g.admit(p, wants, time.Now()); n < wants {
			r.g.cut.Add(int64(wants - n))
			msg = keepWants(msg, n)
		}
	}
	r.Receiver.ReceiveMessage(ctx, p, msg)
}

// keepWants returns msg with only its first n new wants: its cancels,
// blocks and block presences all stay.
func keepWants(msg bsmsg.BitSwapMessage, n int) bsmsg.BitSwapMessage {
	out := bsmsg.New(msg.Full())
	for _, e := range msg.Wantlist() {
		switch {
		case e.Cancel:
			out.Cancel(e.Cid)
		case n > 0:
			n--
			out.AddEntry(e.Cid, e.Priority, e.WantType, e.SendDontHave)
		}
	}
	for _, b := range msg.Blocks() {
		out.AddBlock(b)
	}
	for _, bp := range msg.BlockPresences() {
		out.AddBlockPresence(bp.Cid, bp.Type)
	}
	out.SetPendingBytes(msg.PendingBytes())
	return out
}
