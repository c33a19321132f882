package hedge

import (
	"context"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Flights holds the fetches in flight on an edge, one per block: a caller
// that wants a block already being fetched waits for that fetch instead of
// starting its own (groupcache's singleflight). A fetch runs as long as any
// caller still waits for it, and is cancelled when the last one leaves.
type Flights struct {
	mu      sync.Mutex // guards flights
	flights map[flightKey]*flight
}

// NewFlights returns an empty set of flights, to share between the hedges
// of one edge.
func NewFlights() *Flights { return &Flights{flights: make(map[flightKey]*flight)} }

// flightKey names a fetch: the block, whether it is fetched ahead of
// need, which may not use the origin, and whether it may use the open
// network. A viewer must not wait on a fetch that may fail where its own
// would not: one ahead of need, or one kept off the network when it may
// go there. A fetch kept off the network joins one that may go there.
type flightKey struct {
	c       cid.Cid
	ahead   bool
	network bool
}

// flight is one fetch in progress.
type flight struct {
	key     flightKey
	done    chan struct{}
	blk     blocks.Block // valid once done is closed
	err     error
	cancel  context.CancelFunc
	waiters int // guarded by Flights.mu
}

// do returns the block c, fetched by fetch unless a fetch of c is already
// in flight. A caller that joined a flight that failed leads a flight of
// its own once: the first caller's sources may differ from its own.
func (f *Flights) do(ctx context.Context, c flightKey, fetch func(context.Context) (blocks.Block, error)) (blocks.Block, error) {
	fl, led := f.join(c, fetch)
	blk, err := f.wait(ctx, fl)
	if err != nil && !led && ctx.Err() == nil {
		fl, _ = f.join(c, fetch)
		blk, err = f.wait(ctx, fl)
	}
	return blk, err
}

// join returns the flight of c, starting it with fetch when there is none,
// and whether this call started it.
func (f *Flights) join(c flightKey, fetch func(context.Context) (blocks.Block, error)) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wider := c
	wider.network = true
	for _, k := range []flightKey{c, wider} {
		if fl, ok := f.flights[k]; ok {
			fl.waiters++
			return fl, false
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl := &flight{key: c, done: make(chan struct{}), cancel: cancel, waiters: 1}
	f.flights[c] = fl
	go func() {
		blk, err := fetch(ctx)
		f.mu.Lock()
		if f.flights[c] == fl {
			delete(f.flights, c)
		}
		f.mu.Unlock()
		fl.blk, fl.err = blk, err
		cancel()
		close(fl.done)
	}()
	return fl, true
}

// wait waits for fl or for ctx; the last waiter to leave cancels it.
func (f *Flights) wait(ctx context.Context, fl *flight) (blocks.Block, error) {
	select {
	case <-fl.done:
		f.leave(fl, false)
		return fl.blk, fl.err
	case <-ctx.Done():
		f.leave(fl, true)
		return nil, ctx.Err()
	}
}

// leave counts a waiter of fl out, and stops fl when it was the last to
// give up on it.
func (f *Flights) leave(fl *flight, abandon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl.waiters--
	if abandon && fl.waiters == 0 {
		// Nobody wants the block any more: stop fetching it, and let
		// the next caller start afresh rather than join a dying fetch.
		if f.flights[fl.key] == fl {
			delete(f.flights, fl.key)
		}
		fl.cancel()
	}
}
