package fleet

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PurgeProtocol is the libp2p protocol of a member's word that names
// under a prefix must be revalidated.
const PurgeProtocol = "/pacman/fleet/purge/1.0.0"

// Purger marks stale what an edge knows of the names under prefix, and
// returns how many it marked.
type Purger func(prefix string) int

// purge is how this edge purges on a member's word.
type purge struct {
	mu sync.RWMutex // guards fn
	fn Purger
}

// SetPurge sets how this edge purges on a member's word; until it is
// called, members' purges mark nothing.
func (f *Fleet) SetPurge(fn Purger) {
	f.purge.mu.Lock()
	f.purge.fn = fn
	f.purge.mu.Unlock()
}

// Purge tells every live member to purge prefix, at once, and returns how
// many did and the names they marked.
func (f *Fleet) Purge(ctx context.Context, prefix string) (members, marked int) {
	var mu sync.Mutex
	f.eachMember(func(p peer.ID) {
		if n, ok := f.tellPurge(ctx, p, prefix); ok {
			mu.Lock()
			members++
			marked += n
			mu.Unlock()
		}
	})
	return members, marked
}

// eachMember calls fn for every live member but this edge, all at once,
// and returns when every call has.
func (f *Fleet) eachMember(fn func(p peer.ID)) {
	var wg sync.WaitGroup
	for _, p := range f.live() {
		if p != f.self {
			wg.Go(func() { fn(p) })
		}
	}
	wg.Wait()
}

// tellPurge tells p to purge prefix and returns what it marked.
func (f *Fleet) tellPurge(ctx context.Context, p peer.ID, prefix string) (int, bool) {
	r, done, err := f.ask(ctx, p, PurgeProtocol, []byte(prefix))
	if err != nil {
		return 0, false
	}
	defer done()
	n, err := binary.ReadUvarint(r)
	return int(min(n, 1<<31)), err == nil
}

// handlePurge purges on a member's word and answers the names marked.
func (f *Fleet) handlePurge(s network.Stream) {
	_, prefix, done, ok := f.accept(s, maxRequest)
	if !ok {
		return
	}
	defer done()
	n := 0
	f.purge.mu.RLock()
	fn := f.purge.fn
	f.purge.mu.RUnlock()
	if fn != nil {
		n = fn(string(prefix))
	}
	var b [binary.MaxVarintLen64]byte
	_, _ = s.Write(b[:binary.PutUvarint(b[:], uint64(n))])
}
