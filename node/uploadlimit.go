package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// UploadLimits caps the block bytes the node sends to peers, in bytes per
// second. Zero means no cap.
type UploadLimits struct {
	// Total caps the upload to all peers together.
	Total int64
	// PerPeer caps the upload to each peer ID.
	PerPeer int64
	// PerAddress caps the upload to all the peers at one IP address
	// together: peer IDs cost nothing to make, addresses do.
	PerAddress int64
}

// maxLimited bounds the per-peer and per-address limiters kept; the least
// recently served one is dropped first, and starts afresh.
const maxLimited = 4096

// uploadCaps holds the limiters of UploadLimits. The outbox waits on them
// before each write, in the goroutine writing to that peer, so a capped
// peer sees a slower seeder and no server worker waits for tokens.
type uploadCaps struct {
	total      *rate.Limiter // nil: no total cap
	perPeer    *keyedLimiters[peer.ID]
	perAddress *keyedLimiters[string]
}

// newUploadCaps returns the caps of l, or nil when there are none.
func newUploadCaps(l UploadLimits) (*uploadCaps, error) {
	if l.Total < 0 || l.PerPeer < 0 || l.PerAddress < 0 {
		return nil, fmt.Errorf("upload limits must not be negative")
	}
	if l == (UploadLimits{}) {
		return nil, nil
	}
	c := &uploadCaps{perPeer: newKeyedLimiters[peer.ID](l.PerPeer), perAddress: newKeyedLimiters[string](l.PerAddress)}
	if l.Total > 0 {
		c.total = rate.NewLimiter(rate.Limit(l.Total), burst(l.Total))
	}
	return c, nil
}

// wait returns once size bytes to peer p at address addr ("" when not
// known) are within every cap.
func (c *uploadCaps) wait(ctx context.Context, p peer.ID, addr string, size int) error {
	if c == nil || size == 0 {
		return nil
	}
	if err := waitN(ctx, c.perPeer.get(p), size); err != nil {
		return err
	}
	if addr != "" {
		if err := waitN(ctx, c.perAddress.get(addr), size); err != nil {
			return err
		}
	}
	return waitN(ctx, c.total, size)
}

// uploads waits, for whatever the node sends a peer (bitswap's answers,
// the fleet's blocks), on the caps of that peer, of its address and of the
// node.
type uploads struct {
	caps   *uploadCaps          // nil: no upload caps
	addrOf func(peer.ID) string // a peer's IP address, "" if not known
}

// wait returns once size bytes to p are within every cap.
func (u uploads) wait(ctx context.Context, p peer.ID, size int) error {
	addr := ""
	if u.caps != nil && u.caps.perAddress.limit > 0 {
		addr = u.addrOf(p)
	}
	return u.caps.wait(ctx, p, addr, size)
}

// WaitUpload returns once size bytes to p are within the node's upload
// caps (upload_limit, per peer and per address), or ctx is done. What
// the node sends peers over its other protocols (the fleet's blocks)
// waits on it, so a cap caps every block byte the node uploads.
func (n *Node) WaitUpload(ctx context.Context, p peer.ID, size int) error {
	return n.uploads.wait(ctx, p, size)
}

// keyedLimiters is one limiter per key, at the same rate.
type keyedLimiters[K comparable] struct {
	limit rate.Limit // 0: no cap
	mu    sync.Mutex // guards keys
	keys  *simplelru.LRU[K, *rate.Limiter]
}

func newKeyedLimiters[K comparable](perSecond int64) *keyedLimiters[K] {
	k := &keyedLimiters[K]{limit: rate.Limit(perSecond)}
	k.keys, _ = simplelru.NewLRU[K, *rate.Limiter](maxLimited, nil) // size > 0
	return k
}

// get returns key's limiter, or nil when there is no cap.
func (k *keyedLimiters[K]) get(key K) *rate.Limiter {
	if k.limit == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.keys.Get(key)
	if !ok {
		l = rate.NewLimiter(k.limit, burst(int64(k.limit)))
		k.keys.Add(key, l)
	}
	return l
}

// burst lets a tenth of a second's bytes go at once (at least 256 KiB):
// larger blocks wait for their tokens in pieces.
func burst(perSecond int64) int {
	return int(max(perSecond/10, 256<<10))
}

// waitN waits for n tokens of l (nil: none needed), in pieces no larger
// than the burst.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	for l != nil && n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return fmt.Errorf("waiting for upload bandwidth: %w", err)
		}
		n -= k
	}
	return nil
}
