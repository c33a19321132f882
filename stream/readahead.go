package stream

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
)

// maxReadaheads bounds the readahead jobs running at once across all
// requests, so readahead never competes with foreground streams for more
// than a few sessions' worth of bandwidth.
const maxReadaheads = 8

// Readahead fetches the leaves that follow a served range into the
// blockstore in the background: players read sequentially, so the next
// request then starts from local blocks.
type Readahead struct {
	index   *dag.Index
	leaves  int
	timeout time.Duration
	// slots holds a token per running job; a job that cannot get one is
	// skipped, not queued.
	slots chan struct{}
	// ctx ends every job when the readahead closes; wg waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // orders Start's wg.Go before Close's wg.Wait
	closed bool
}

// NewReadahead returns a readahead of up to leaves leaves of the files
// index maps, each job bounded by timeout.
func NewReadahead(index *dag.Index, leaves int, timeout time.Duration) *Readahead {
	ctx, cancel := context.WithCancel(context.Background())
	return &Readahead{
		index:   index,
		leaves:  leaves,
		timeout: timeout,
		slots:   make(chan struct{}, maxReadaheads),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// Close stops the jobs running and waits for them to end.
func (ra *Readahead) Close() {
	ra.mu.Lock()
	ra.closed = true
	ra.mu.Unlock()
	ra.cancel()
	ra.wg.Wait()
}

// Start makes local, through the request's hedge, up to ra.leaves leaves
// of root from byte offset from on, unless from is the end of the file or
// too many jobs already run.
func (ra *Readahead) Start(req *hedge.Request, root cid.Cid, from, size int64) {
	if from >= size {
		return
	}
	select {
	case ra.slots <- struct{}{}:
	default:
		return
	}
	// The job is one more user of the request's sources.
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.closed {
		<-ra.slots
		return
	}
	req.Retain()
	ra.wg.Go(func() {
		defer func() { <-ra.slots }()
		defer req.Release()
		ctx, cancel := context.WithTimeout(ra.ctx, ra.timeout)
		defer cancel()
		ra.fetch(ctx, req, root, from, size)
	})
}

// fetch fetches, all at once, those of the ra.leaves leaves from byte
// offset from on that the edge does not hold: reading a megabyte to learn
// it is there would take the cores from the requests being served.
func (ra *Readahead) fetch(ctx context.Context, req *hedge.Request, root cid.Cid, from, size int64) {
	var pending []dag.Leaf
	seen := 0
	// The budget is in leaves and in bytes: leaves of 1 MiB (the
	// default) or smaller.
	budget := int64(ra.leaves) << 20
	for leaf, err := range ra.index.Leaves(ctx, req, root, from, size) {
		if err != nil {
			return
		}
		// A leaf starting before from holds the range's last bytes: it
		// was just served, so it is local already.
		if leaf.Offset < from {
			continue
		}
		// Every leaf counts, those whose bytes the index already read
		// (dag-pb leaves) included: else readahead of such a file reads
		// the rest of it.
		seen++
		budget -= leaf.Size
		if leaf.Data == nil && !req.Has(ctx, leaf.Cid) {
			pending = append(pending, leaf)
		}
		if seen == ra.leaves || budget <= 0 {
			break
		}
	}
	done := make(chan struct{}, len(pending))
	for _, leaf := range pending {
		go func() {
			// A failed readahead costs nothing but the miss it failed to
			// prevent; the foreground request reports real errors.
			_, _ = req.Get(ctx, hedge.Want{Cid: leaf.Cid, Offset: leaf.Offset, Size: leaf.Size, Reason: hedge.ForReadahead})
			done <- struct{}{}
		}()
	}
	for range pending {
		<-done
	}
}
