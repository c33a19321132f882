package stream

import (
	"context"
	"sync"
	"time"
)

// windowController sizes a stream's window of leaves in flight by probing:
// after each round (a window's worth of leaves delivered) it compares the
// round's throughput with the last one's. It grows the window while growing
// raised throughput by at least growGain, goes back to the last size when
// it did not, and probes a larger size again every holdRounds rounds, so
// the window follows the bandwidth-delay product of the peers at hand
// without holding more memory than it buys throughput.
type windowController struct {
	min, max int
	size     int
	// prev is the size before the last growth, restored when growing did
	// not pay; 0 when the last decision was not a growth.
	prev     int
	lastRate float64
	hold     int // rounds to wait before probing again
}

const (
	// growGain is the throughput gain a growth must bring to be kept.
	growGain = 1.10
	// holdRounds is how many rounds a size is kept before probing again.
	holdRounds = 4
)

func newWindowController(initial, lo, hi int) *windowController {
	lo = max(lo, 1)
	hi = max(hi, lo)
	return &windowController{min: lo, max: hi, size: min(max(initial, lo), hi)}
}

// next takes the throughput of the round just finished, in bytes per
// second, and returns the window for the next round.
func (c *windowController) next(rate float64) int {
	switch {
	case c.prev != 0 && rate < c.lastRate*growGain:
		// The last growth did not pay: back to the size before it, and
		// stay there a while. The rate at that size is the one to beat.
		c.size, c.prev, c.hold = c.prev, 0, holdRounds
		c.lastRate = max(rate, c.lastRate)
		return c.size
	case c.prev != 0:
		// Growth paid: grow again.
		c.lastRate = rate
		return c.grow()
	case c.hold > 0:
		c.hold--
		c.lastRate = rate
		return c.size
	default:
		c.lastRate = rate
		return c.grow()
	}
}

// grow raises the window by half, at least one leaf, within max.
func (c *windowController) grow() int {
	if c.size >= c.max {
		c.prev, c.hold = 0, holdRounds
		return c.size
	}
	c.prev = c.size
	c.size = min(c.max, c.size+max(c.size/2, 1))
	return c.size
}

// window hands out the right to have one more leaf in flight, up to a
// limit that can change while the stream runs: a token bucket of capacity
// max holding limit tokens, less those in flight. Shrinking takes back
// tokens as they are returned.
type window struct {
	tokens chan struct{}
	mu     sync.Mutex // guards limit and debt
	limit  int
	debt   int // tokens to swallow as they come back
}

func newWindow(limit, maxLimit int) *window {
	w := &window{tokens: make(chan struct{}, maxLimit), limit: limit}
	for range limit {
		w.tokens <- struct{}{}
	}
	return w
}

// acquire waits for a token.
func (w *window) acquire(ctx context.Context) error {
	select {
	case <-w.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release returns a token, unless a shrink is owed one.
func (w *window) release() {
	w.mu.Lock()
	if w.debt > 0 {
		w.debt--
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.tokens <- struct{}{} // never blocks: tokens + in flight <= limit <= cap
}

// resize changes the limit.
func (w *window) resize(limit int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ; w.limit < limit; w.limit++ {
		if w.debt > 0 {
			w.debt-- // cancel an owed token instead of adding one
			continue
		}
		w.tokens <- struct{}{}
	}
	for ; w.limit > limit; w.limit-- {
		select {
		case <-w.tokens:
		default:
			w.debt++
		}
	}
}

// roundMeter measures the throughput of rounds of a stream: a round ends
// when as many leaves as the window holds have been delivered, and at least
// minRound has passed.
type roundMeter struct {
	start  time.Time
	leaves int
	bytes  int64
}

const minRound = 50 * time.Millisecond

// add records a delivered leaf and, at the end of a round of size leaves,
// returns its throughput.
func (m *roundMeter) add(n int, size int, now time.Time) (rate float64, done bool) {
	if m.start.IsZero() {
		m.start = now
	}
	m.leaves++
	m.bytes += int64(n)
	el := now.Sub(m.start)
	if m.leaves < size || el < minRound {
		return 0, false
	}
	rate = float64(m.bytes) / el.Seconds()
	*m = roundMeter{start: now}
	return rate, true
}
