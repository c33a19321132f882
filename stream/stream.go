// Package stream writes byte ranges of UnixFS files to clients: a sliding
// window of leaves in flight, adapted to the throughput the sources give,
// written strictly in order, and readahead past each range into the store.
// Memory per stream is bounded by the window, never by the file size. It
// fetches every block through the hedge and knows nothing of HTTP.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
)

// ErrStalled reports a leaf that no source delivered within the stall
// timeout. The stream stops; the client sees a response shorter than its
// Content-Length, never wrong bytes.
var ErrStalled = errors.New("content stalled: no peer delivered the next block in time")

// ErrBusy reports a stream that could not start within BudgetWait: the
// leaves all streams may hold at once are taken.
var ErrBusy = errors.New("the gateway is busy: too many leaves in flight; try again shortly")

// RangeStreamer writes byte ranges of UnixFS files to clients. Leaves are
// fetched in a sliding window, so many are in flight across the session's
// peers, and written strictly in order as the head of the window arrives.
// Memory per stream is bounded by the window, never by the file size.
type RangeStreamer struct {
	// Index maps ranges to leaves.
	Index *dag.Index
	// Window is the number of leaves in flight per stream at its start.
	// It then adapts between MinWindow and MaxWindow: it grows while
	// more leaves in flight bring more throughput, and shrinks back when
	// they do not.
	Window int
	// MinWindow and MaxWindow bound the window. MaxWindow × the leaf
	// size bounds a stream's memory.
	MinWindow, MaxWindow int
	// StallTimeout bounds the wait for the leaf at the head of the window.
	StallTimeout time.Duration
	// Observer counts leaves in flight and stalls. Required.
	Observer Observer
	// Budget, if set, holds a token per leaf in flight over all streams,
	// so the windows of many streams together stay within a memory bound.
	Budget chan struct{}
	// BudgetWait bounds a stream's wait for the budget token of its first
	// leaf, after which it fails with ErrBusy, before any byte is sent:
	// streams of slow clients that hold the budget make the next request
	// wait at most this long. A later leaf waits for its token as for a
	// late leaf, up to StallTimeout: a response under way is not cut for
	// want of budget.
	BudgetWait time.Duration

	// pieces holds buffers of pieceSize for reading held leaves, reused
	// across streams.
	pieces sync.Pool
}

// Span is one range of a file to stream: bytes [Start, End).
type Span struct {
	Start, End int64
}

// Getter fetches blocks by CID for the DAG walks, and leaves with their
// byte spans for the streams, and reads the leaves the edge holds in
// place: a hedge.Request.
type Getter interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
	Get(ctx context.Context, w hedge.Want) (blocks.Block, error)
	// ReadAt copies into p the bytes of the held block w names from
	// byte off on; an empty p checks that it is held and as long as
	// w.Size says: see hedge.Request.ReadAt.
	ReadAt(ctx context.Context, w hedge.Want, p []byte, off int64) (int, error)
}

// pieceSize is how much of a held leaf is read from the store for each
// write: a client slow to take it holds a piece, not the leaf.
const pieceSize = 64 << 10

// Observer learns of leaves in flight and stalls, for metrics. Its
// methods are called on stream goroutines and must be quick.
type Observer interface {
	// Stalled reports a stream cut short because no source delivered a
	// leaf within the stall timeout.
	Stalled()
	// LeavesInFlight adds delta to the number of leaves being fetched.
	LeavesInFlight(delta int)
}

// slot is a leaf in the window: fetched concurrently, consumed in order.
type slot struct {
	span int
	leaf dag.Leaf
	done chan struct{}
	// needed is closed when the stream starts to wait for the leaf.
	needed chan struct{}
	err    error
	// held is set, before done is closed, for a raw leaf the edge holds:
	// it is read from the store piece by piece as it is written, so it
	// holds no data and no budget token.
	held bool
	// mu guards data, holds, taken and evicted: once the leaf is
	// fetched, the consumer takes it while a stuck write may evict it.
	mu      sync.Mutex
	data    []byte // valid once done is closed and err is nil
	holds   bool   // the slot holds a budget token
	taken   bool   // the consumer has it
	evicted bool   // its data went back, with its token, while the client was stuck
	// source names where the leaf came from (local, peers, http, origin;
	// "" if unknown) and wait how long fetching it took.
	source string
	wait   time.Duration
}

// FirstLeaf tells how a response's first leaf was obtained, for the
// Server-Timing header that leaves with the first byte.
type FirstLeaf struct {
	// Source names where it came from: local, fleet, peers, http, origin.
	Source string
	// Wait is how long fetching it took.
	Wait time.Duration
}

// Stream writes the bytes of spans of the file root to the writers that
// begin returns, calling begin(i) once before the first byte of span i,
// and only once that byte has arrived, so a caller that sends headers in
// begin(0) can still answer a failure to fetch anything with an error
// status. All fetching stops when ctx is done or a write fails. g must
// verify blocks against their CIDs. Leaves late from g are also fetched
// through the hedge's request g. How the first leaf was obtained is recorded
// in first, if not nil, before begin(0) is called.
func (s *RangeStreamer) Stream(ctx context.Context, g Getter, root cid.Cid, spans []Span, first *FirstLeaf, begin func(i int) (io.Writer, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	ah := &ahead{s: s}
	// Budget tokens still held by leaves this stream has not taken go
	// back when it ends, however it ends: after the producer, the
	// fetches and any eviction have stopped.
	defer ah.release()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	hi := max(s.MaxWindow, s.Window, 1)
	ctrl := newWindowController(s.Window, s.MinWindow, hi)
	win := newWindow(ctrl.size, hi)
	// The window's tokens bound the leaves in flight; the channel only
	// orders them.
	slots := make(chan *slot, hi)
	wg.Go(func() {
		defer close(slots)
		s.produce(ctx, g, root, spans, slots, win, ah, &wg)
	})

	timer := time.NewTimer(s.StallTimeout)
	defer timer.Stop()
	// A write the client has not taken within slowWrite makes the
	// leaves fetched ahead give their budget back (see ahead).
	ah.timer = time.AfterFunc(time.Hour, ah.stuck)
	ah.timer.Stop()
	defer ah.timer.Stop()
	cur := -1
	var (
		w     io.Writer
		meter roundMeter
		piece *[]byte // for held leaves, taken at the first
	)
	defer func() {
		if piece != nil {
			s.pieces.Put(piece)
		}
	}()
	for sl := range slots {
		// Wait for the bytes before announcing their span: a response
		// whose first leaf never arrives can still become a clean error.
		if err := s.await(ctx, timer, sl); err != nil {
			return err
		}
		data, err := ah.take(ctx, g, sl)
		if err != nil {
			return err
		}
		if cur < 0 && first != nil {
			first.Source, first.Wait = sl.source, sl.wait
		}
		for cur < sl.span {
			cur++
			if w, err = begin(cur); err != nil {
				return err
			}
		}
		sp := spans[sl.span]
		lo := max(sp.Start-sl.leaf.Offset, 0)
		hi := min(sp.End-sl.leaf.Offset, sl.leaf.Size)
		if sl.held {
			if piece == nil {
				piece = s.piece()
			}
			err = writeHeld(ctx, g, w, sl.leaf, lo, hi, *piece, ah)
		} else {
			err = ah.write(w, data[lo:hi])
		}
		if err != nil {
			return err
		}
		win.release()
		if rate, done := meter.add(int(hi-lo), ctrl.size, time.Now()); done {
			win.resize(ctrl.next(rate))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for cur < len(spans)-1 {
		cur++
		if _, err := begin(cur); err != nil {
			return err
		}
	}
	return nil
}

// piece returns a buffer of pieceSize bytes, to give back to s.pieces.
func (s *RangeStreamer) piece() *[]byte {
	if p, ok := s.pieces.Get().(*[]byte); ok {
		return p
	}
	p := make([]byte, pieceSize)
	return &p
}

// writeHeld writes bytes [lo, hi) of the held leaf to w, read from the
// store a piece at a time. A leaf evicted meanwhile is fetched again for
// the rest.
func writeHeld(ctx context.Context, g Getter, w io.Writer, leaf dag.Leaf, lo, hi int64, piece []byte, ah *ahead) error {
	want := hedge.Want{Cid: leaf.Cid, Offset: leaf.Offset, Size: leaf.Size}
	for lo < hi {
		n, err := g.ReadAt(ctx, want, piece[:min(hi-lo, int64(len(piece)))], lo)
		if ipld.IsNotFound(err) {
			data, err := refetch(ctx, g, leaf)
			if err != nil {
				return err
			}
			return ah.write(w, data[lo:hi])
		}
		if err != nil {
			return fmt.Errorf("reading leaf %s: %w", leaf.Cid, err)
		}
		if n == 0 { // the size was checked when it was found held
			return fmt.Errorf("reading leaf %s: nothing at %d of %d bytes", leaf.Cid, lo, leaf.Size)
		}
		if err := ah.write(w, piece[:n]); err != nil {
			return err
		}
		lo += int64(n)
	}
	return nil
}

// slowWrite is how long a write to the client may take before the stream
// counts as stuck on its client.
const slowWrite = 200 * time.Millisecond

// ahead is a stream's leaves launched and not yet taken, oldest first.
// Budget tokens bound the leaves fetched ahead of clients that keep up:
// while the client is stuck on a write and the budget is more than half
// taken, the leaves fetched ahead of it give their data and tokens back,
// and are read again (from the store, where the hedge put them) when the
// client catches up. The leaf being written is the connection's own cost,
// so slow readers, however many, cannot hold the budget that other
// requests need; with room to spare, nothing is given back.
type ahead struct {
	s     *RangeStreamer
	timer *time.Timer // fires stuck while a write lasts
	mu    sync.Mutex  // guards slots, inWrite and blocked
	slots []*slot
	// inWrite is set while the client is being written to, blocked once
	// that has lasted slowWrite.
	inWrite, blocked bool
}

// write writes p to the client, noting how long it takes.
func (a *ahead) write(w io.Writer, p []byte) error {
	a.writing(true)
	_, err := w.Write(p)
	a.writing(false)
	if err != nil {
		return fmt.Errorf("writing to client: %w", err)
	}
	return nil
}

// writing notes that a write to the client starts or has ended.
func (a *ahead) writing(on bool) {
	a.mu.Lock()
	a.inWrite, a.blocked = on, false
	a.mu.Unlock()
	if on {
		a.timer.Reset(slowWrite)
	} else {
		a.timer.Stop()
	}
}

// pressed reports whether more than half the budget is taken.
func (a *ahead) pressed() bool {
	return a.s.Budget != nil && 2*len(a.s.Budget) > cap(a.s.Budget)
}

// add appends a launched slot.
func (a *ahead) add(sl *slot) {
	a.mu.Lock()
	a.slots = append(a.slots, sl)
	a.mu.Unlock()
}

// take hands sl's data to the consumer: its budget token goes back, and an
// evicted leaf is fetched again.
func (a *ahead) take(ctx context.Context, g Getter, sl *slot) ([]byte, error) {
	a.mu.Lock()
	if len(a.slots) > 0 && a.slots[0] == sl {
		a.slots[0] = nil
		a.slots = a.slots[1:]
	}
	a.mu.Unlock()
	sl.mu.Lock()
	sl.taken = true
	data, evicted := sl.data, sl.evicted
	sl.data = nil
	sl.mu.Unlock()
	a.giveBack(sl)
	if !evicted {
		return data, nil
	}
	return refetch(ctx, g, sl.leaf)
}

// giveBack returns sl's budget token, if it holds one.
func (a *ahead) giveBack(sl *slot) {
	sl.mu.Lock()
	holds := sl.holds
	sl.holds = false
	sl.mu.Unlock()
	if holds {
		<-a.s.Budget
	}
}

// evict gives back the data and token of sl, fetched and not taken.
func (a *ahead) evict(sl *slot) {
	sl.mu.Lock()
	ok := sl.holds && !sl.taken && sl.data != nil && sl.leaf.Data == nil
	if ok {
		sl.data, sl.evicted = nil, true
	}
	sl.mu.Unlock()
	if ok {
		a.giveBack(sl)
	}
}

// fetched is called when sl's fetch ends: a held leaf needs no token, and
// a leaf that arrives while the client is stuck, and the budget pressed,
// is evicted at once.
func (a *ahead) fetched(sl *slot) {
	if sl.held {
		a.giveBack(sl)
		return
	}
	a.mu.Lock()
	blocked := a.blocked
	a.mu.Unlock()
	if blocked && a.pressed() {
		a.evict(sl)
	}
}

// stuck runs while a write has lasted slowWrite: it marks the client
// stuck and, while the budget is pressed, evicts the leaves fetched
// ahead. It looks again every slowWrite until the write ends.
func (a *ahead) stuck() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.inWrite {
		return
	}
	a.blocked = true
	if a.pressed() {
		for _, sl := range a.slots {
			select {
			case <-sl.done:
				a.evict(sl)
			default: // evicted by fetched, if the client is still stuck
			}
		}
	}
	a.timer.Reset(slowWrite)
}

// release gives back every token still held.
func (a *ahead) release() {
	if a.s.Budget == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sl := range a.slots {
		a.giveBack(sl)
	}
	a.slots = nil
}

// await waits for sl to be fetched, at most StallTimeout.
func (s *RangeStreamer) await(ctx context.Context, timer *time.Timer, sl *slot) error {
	timer.Reset(s.StallTimeout)
	if sl.needed != nil {
		close(sl.needed)
	}
	select {
	case <-sl.done:
		return sl.err
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		s.Observer.Stalled()
		return fmt.Errorf("%w (leaf %s at offset %d)", ErrStalled, sl.leaf.Cid, sl.leaf.Offset)
	}
}

// takeBudget takes a budget token, waiting at most wait.
func (s *RangeStreamer) takeBudget(ctx context.Context, wait time.Duration) error {
	select {
	case s.Budget <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.Budget <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrBusy
	}
}

// produce walks the leaves of every span in order and launches their
// fetches, blocking while the window is full.
func (s *RangeStreamer) produce(ctx context.Context, g Getter, root cid.Cid, spans []Span, slots chan<- *slot, win *window, ah *ahead, wg *sync.WaitGroup) {
	first := true
	for i, sp := range spans {
		for leaf, err := range s.Index.Leaves(ctx, g, root, sp.Start, sp.End) {
			if win.acquire(ctx) != nil {
				return
			}
			holds := false
			if s.Budget != nil {
				// Only the first leaf may fail for want of budget:
				// a response under way is not cut for it, and waits
				// as it would for a late leaf.
				wait := s.StallTimeout
				if first {
					wait, first = s.BudgetWait, false
				}
				switch err := s.takeBudget(ctx, wait); {
				case err == nil:
					holds = true
				case ctx.Err() != nil:
					return
				default:
					sl := &slot{span: i, leaf: leaf, done: make(chan struct{}), err: err}
					close(sl.done)
					select {
					case slots <- sl:
					case <-ctx.Done():
					}
					return
				}
			}
			sl := &slot{span: i, leaf: leaf, done: make(chan struct{}), needed: make(chan struct{}), err: err, holds: holds}
			fetch := err == nil && leaf.Data == nil
			if !fetch {
				sl.data = leaf.Data
				close(sl.done)
			}
			if holds {
				ah.add(sl)
			}
			select {
			case slots <- sl:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			if fetch {
				wg.Go(func() {
					s.fetchLeaf(ctx, g, sl)
					if holds {
						ah.fetched(sl)
					}
				})
			}
		}
	}
}

// fetchLeaf fetches one leaf through the hedge, which decides who is
// asked when, unless it is a raw leaf the edge holds: that is read in
// place as it is written.
func (s *RangeStreamer) fetchLeaf(ctx context.Context, g Getter, sl *slot) {
	defer close(sl.done)
	want := hedge.Want{Cid: sl.leaf.Cid, Offset: sl.leaf.Offset, Size: sl.leaf.Size, Needed: sl.needed}
	if held, err := heldLeaf(ctx, g, want); err != nil {
		sl.err = err
		return
	} else if held {
		sl.held, sl.source = true, hedge.SourceLocal
		return
	}
	s.Observer.LeavesInFlight(1)
	defer s.Observer.LeavesInFlight(-1)
	start := time.Now()
	blk, err := g.Get(ctx, want)
	sl.wait = time.Since(start)
	if err != nil {
		sl.err = fmt.Errorf("fetching leaf %s: %w", sl.leaf.Cid, err)
		return
	}
	sl.source = hedge.SourceOf(blk)
	data, err := sized(sl.leaf, blk)
	if err != nil {
		sl.err = err
		return
	}
	sl.mu.Lock()
	sl.data = data
	sl.mu.Unlock()
}

// sized returns blk's bytes if leaf holds as many as its parent says.
func sized(leaf dag.Leaf, blk blocks.Block) ([]byte, error) {
	data := blk.RawData()
	if int64(len(data)) != leaf.Size {
		return nil, fmt.Errorf("%w: leaf %s holds %d bytes, its parent says %d", dag.ErrMalformed, leaf.Cid, len(data), leaf.Size)
	}
	return data, nil
}

// refetch fetches a leaf again: one found held and evicted since.
func refetch(ctx context.Context, g Getter, leaf dag.Leaf) ([]byte, error) {
	blk, err := g.Get(ctx, hedge.Want{Cid: leaf.Cid, Offset: leaf.Offset, Size: leaf.Size, Reason: hedge.ForRefetch})
	if err != nil {
		return nil, fmt.Errorf("fetching leaf %s again: %w", leaf.Cid, err)
	}
	return sized(leaf, blk)
}

// heldLeaf reports whether w names a raw leaf the edge holds, as long as
// its parent says, without reading it.
func heldLeaf(ctx context.Context, g Getter, w hedge.Want) (bool, error) {
	if w.Cid.Prefix().Codec != cid.Raw {
		return false, nil
	}
	w.Reason = hedge.ForIndex // a look at the leaf, not its delivery
	switch _, err := g.ReadAt(ctx, w, nil, 0); {
	case err == nil:
		return true, nil
	case errors.Is(err, dag.ErrMalformed):
		return false, err
	default:
		return false, nil // not held, or unreadable: fetch it
	}
}
