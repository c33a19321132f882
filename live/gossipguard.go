package live

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

const (
	// maxAnnouncement bounds one gossip message: a signed announcement
	// is under 1 KiB. Larger ones are cut by pubsub before they are read.
	maxAnnouncement = 4 << 10
	// gossipRate and gossipBurst bound the announcements one peer may
	// hand the validators each second: far above what relaying every
	// stream followed needs, far below a flood.
	gossipRate  = 200
	gossipBurst = 400
	// gossipStrikes is how many forged or malformed announcements a peer
	// may send before it is dropped and ignored for gossipBan. Honest
	// peers forward only what verified, so never one.
	gossipStrikes = 8
	gossipBan     = 10 * time.Minute
	// gossipPeers bounds the peers the guard remembers.
	gossipPeers = 4096
)

// gossipGuard screens gossip before the validators decode or verify it: a
// rate per peer, and strikes for what fails in ways no honest peer sends.
type gossipGuard struct {
	mu    sync.Mutex // guards peers
	peers *simplelru.LRU[peer.ID, *gossipPeer]
}

type gossipPeer struct {
	limit   *rate.Limiter
	strikes int
}

func newGossipGuard() *gossipGuard {
	peers, _ := simplelru.NewLRU[peer.ID, *gossipPeer](gossipPeers, nil) // size > 0
	return &gossipGuard{peers: peers}
}

func (g *gossipGuard) peer(p peer.ID) *gossipPeer {
	gp, ok := g.peers.Get(p)
	if !ok {
		gp = &gossipPeer{limit: rate.NewLimiter(gossipRate, gossipBurst)}
		g.peers.Add(p, gp)
	}
	return gp
}

// allow reports whether a message from p may be validated now.
func (g *gossipGuard) allow(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peer(p).limit.Allow()
}

// strike counts a message from p that no honest peer forwards, and reports
// whether p has now sent too many.
func (g *gossipGuard) strike(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	gp := g.peer(p)
	gp.strikes++
	return gp.strikes >= gossipStrikes
}
