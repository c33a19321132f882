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

// flightKey names a fetch: the block, and whether it is fetched ahead of
// need, which may not use the origin (a viewer must not wait on such a
// fetch, which may fail where its own would not).
type flightKey struct {
	c     cid.Cid
	ahead bool
}

// flight is one fetch in progress.
type flight struct {
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
	blk, err := f.wait(ctx, c, fl)
	if err != nil && !led && ctx.Err() == nil {
		fl, _ = f.join(c, fetch)
		blk, err = f.wait(ctx, c, fl)
	}
	return blk, err
}

// join returns the flight of c, starting it with fetch when there is none,
// and whether this call started it.
func (f *Flights) join(c flightKey, fetch func(context.Context) (blocks.Block, error)) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.flights[c]; ok {
		fl.waiters++
		return fl, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl := &flight{done: make(chan struct{}), cancel: cancel, waiters: 1}
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
func (f *Flights) wait(ctx context.Context, c flightKey, fl *flight) (blocks.Block, error) {
	select {
	case <-fl.done:
		f.leave(c, fl, false)
		return fl.blk, fl.err
	case <-ctx.Done():
		f.leave(c, fl, true)
		return nil, ctx.Err()
	}
}

func (f *Flights) leave(c flightKey, fl *flight, abandon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl.waiters--
	if abandon && fl.waiters == 0 {
		// Nobody wants the block any more: stop fetching it, and let
		// the next caller start afresh rather than join a dying fetch.
		if f.flights[c] == fl {
			delete(f.flights, c)
		}
		fl.cancel()
	}
}
