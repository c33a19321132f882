package gateway

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/chunker"
)

// maxReadaheads bounds the readahead jobs running at once across all
// requests, so readahead never competes with foreground streams for more
// than a few sessions' worth of bandwidth.
const maxReadaheads = 8

// localBlocks is implemented by sessions that can tell whether a block is
// already in the local store without reading it (node.Session can).
// Readahead skips those leaves: reading a megabyte to learn it is there
// would take the cores from the requests being served.
type localBlocks interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// readahead fetches the leaves that follow a served range into the
// blockstore in the background: players read sequentially, so the next
// request then starts from local blocks.
type readahead struct {
	index   *chunker.Index
	leaves  int
	timeout time.Duration
	// slots holds a token per running job; a job that cannot get one is
	// skipped, not queued.
	slots chan struct{}
}

func newReadahead(index *chunker.Index, leaves int, timeout time.Duration) *readahead {
	return &readahead{
		index:   index,
		leaves:  leaves,
		timeout: timeout,
		slots:   make(chan struct{}, maxReadaheads),
	}
}

// start fetches through the shared session up to ra.leaves leaves of root from byte
// offset from on, unless from is the end of the file or too many jobs
// already run.
// Leaves late from peers are fetched from origin too, when not nil.
func (ra *readahead) start(session *cachedSession, origin *originFile, root cid.Cid, from, size int64) {
	if from >= size {
		return
	}
	select {
	case ra.slots <- struct{}{}:
	default:
		return
	}
	// The job is one more user of the request's session.
	session.cache.mu.Lock()
	session.refs++
	session.cache.mu.Unlock()
	go func() {
		defer func() { <-ra.slots }()
		defer session.release()
		ctx, cancel := context.WithTimeout(context.Background(), ra.timeout)
		defer cancel()
		local, _ := session.getter.(localBlocks)
		ra.fetch(ctx, inlineIdentity{session.getter}, local, origin, root, from, size)
	}()
}

// fetch fetches, all at once, those of the ra.leaves leaves from byte
// offset from on that local does not hold (all of them without local).
func (ra *readahead) fetch(ctx context.Context, session chunker.BlockGetter, local localBlocks, origin *originFile, root cid.Cid, from, size int64) {
	var pending []chunker.Leaf
	seen := 0
	for leaf, err := range ra.index.Leaves(ctx, session, root, from, size) {
		if err != nil {
			return
		}
		// A leaf starting before from holds the range's last bytes: it
		// was just served, so it is local already.
		if leaf.Data != nil || leaf.Offset < from {
			continue
		}
		if seen++; local == nil || !has(ctx, local, leaf.Cid) {
			pending = append(pending, leaf)
		}
		if seen == ra.leaves {
			break
		}
	}
	done := make(chan struct{}, len(pending))
	for _, leaf := range pending {
		go func() {
			// A failed readahead costs nothing but the miss it failed to
			// prevent; the foreground request reports real errors.
			_, _ = origin.fetchLeaf(ctx, session, leaf)
			done <- struct{}{}
		}()
	}
	for range pending {
		<-done
	}
}

// has reports whether local holds c; when it cannot tell, the leaf is
// fetched, which reads it if it is there after all.
func has(ctx context.Context, local localBlocks, c cid.Cid) bool {
	ok, err := local.Has(ctx, c)
	return err == nil && ok
}
