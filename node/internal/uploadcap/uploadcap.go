// Package uploadcap caps the block bytes a node sends its peers: in all,
// per peer ID and per IP address, each a token bucket. Whatever the node
// uploads (bitswap's answers, the fleet's blocks) waits on it, in the
// goroutine writing to that peer, so a capped peer sees a slower seeder and
// no server worker waits for tokens.
package uploadcap

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxLimited bounds the per-peer and per-address limiters kept; the least
// recently served one is dropped first, and starts afresh.
const maxLimited = 4096

// Caps holds the limiters of the caps, in bytes per second (0: no cap).
// A nil *Caps caps nothing.
type Caps struct {
	total      *rate.Limiter // nil: no total cap
	perPeer    *keyedLimiters[peer.ID]
	perAddress *keyedLimiters[string]
	addrOf     func(peer.ID) string // a peer's IP address, "" if not known
}

// New returns the caps, or nil when there are none. addrOf tells a peer's
// IP address for the per-address cap.
func New(total, perPeer, perAddress int64, addrOf func(peer.ID) string) (*Caps, error) {
	if total < 0 || perPeer < 0 || perAddress < 0 {
		return nil, fmt.Errorf("upload limits must not be negative")
	}
	if total == 0 && perPeer == 0 && perAddress == 0 {
		return nil, nil
	}
	c := &Caps{perPeer: newKeyedLimiters[peer.ID](perPeer), perAddress: newKeyedLimiters[string](perAddress), addrOf: addrOf}
	if total > 0 {
		c.total = rate.NewLimiter(rate.Limit(total), burst(total))
	}
	return c, nil
}

// Wait returns once size bytes to p are within every cap: p's, its
// address's and the node's.
func (c *Caps) Wait(ctx context.Context, p peer.ID, size int) error {
	if c == nil || size == 0 {
		return nil
	}
	if err := waitN(ctx, c.perPeer.get(p), size); err != nil {
		return err
	}
	if c.perAddress.limit > 0 {
		if addr := c.addrOf(p); addr != "" {
			if err := waitN(ctx, c.perAddress.get(addr), size); err != nil {
				return err
			}
		}
	}
	return waitN(ctx, c.total, size)
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
