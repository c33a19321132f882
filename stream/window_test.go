package stream

import (
	"context"
	"testing"
	"time"
)

// TestWindowGrowsWithThroughput: peers whose throughput rises with the
// leaves in flight up to 40 (a bandwidth-delay product of 40 leaves) get
// a window of at least 40, never above the maximum.
func TestWindowGrowsWithThroughput(t *testing.T) {
	c := newWindowController(16, 4, 64)
	sizes := []int{c.size}
	for range 40 {
		rate := float64(min(c.size, 40)) * 1e6
		sizes = append(sizes, c.next(rate))
	}
	for _, s := range sizes {
		if s > 64 || s < 4 {
			t.Fatalf("window left its bounds: %v", sizes)
		}
	}
	if got := sizes[len(sizes)-1]; got < 40 {
		t.Errorf("window settled at %d, below the 40 leaves the peers reward: %v", got, sizes)
	}
	if sizes[1] <= 16 || sizes[2] <= sizes[1] {
		t.Errorf("window did not grow while growth paid: %v", sizes)
	}
}

// TestWindowShrinksWhenGrowthDoesNotPay: a client that reads at a fixed
// rate (or peers at their limit) gains nothing from a larger window: each
// probe is undone at the next round, and between probes the window holds
// at its size for holdRounds rounds.
func TestWindowShrinksWhenGrowthDoesNotPay(t *testing.T) {
	c := newWindowController(16, 4, 64)
	sizes := []int{c.size}
	for range 30 {
		sizes = append(sizes, c.next(10e6))
	}
	grown := 0
	for i, s := range sizes {
		switch {
		case s == 16:
		case s == 24:
			grown++
			if i+1 < len(sizes) && sizes[i+1] != 16 {
				t.Fatalf("a probe that did not pay was kept: %v", sizes)
			}
		default:
			t.Fatalf("window went to %d with flat throughput: %v", s, sizes)
		}
	}
	if grown == 0 || grown > 30/holdRounds {
		t.Errorf("%d probes in 30 rounds, want between 1 and %d: %v", grown, 30/holdRounds, sizes)
	}
}

// TestWindowAtMaximum: at the maximum the controller holds, and a drop
// in throughput does not push it below the minimum.
func TestWindowAtMaximum(t *testing.T) {
	c := newWindowController(100, 4, 8)
	if c.size != 8 {
		t.Fatalf("initial window %d, want it clamped to 8", c.size)
	}
	for i := range 10 {
		if s := c.next(float64(i) * 1e6); s != 8 {
			t.Fatalf("round %d: window %d at the maximum, want 8", i, s)
		}
	}
	c = newWindowController(2, 4, 8)
	if c.size != 4 {
		t.Errorf("initial window %d, want it raised to the minimum 4", c.size)
	}
}

// TestWindowTokens: the token window bounds what is in flight and follows
// resizes, taking tokens back as they return when it shrinks.
func TestWindowTokens(t *testing.T) {
	w := newWindow(2, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	mustAcquire := func() {
		t.Helper()
		if err := w.acquire(ctx); err != nil {
			t.Fatalf("acquire: %v", err)
		}
	}
	mustAcquire()
	mustAcquire()
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if w.acquire(short) == nil {
		t.Fatal("a third leaf got in flight with a window of 2")
	}
	w.resize(3)
	mustAcquire() // the new token
	// Shrink to 1 with 3 in flight: two returns are swallowed.
	w.resize(1)
	w.release()
	w.release()
	short2, stop2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop2()
	if w.acquire(short2) == nil {
		t.Fatal("a token came back while the shrink was owed")
	}
	w.release()
	mustAcquire() // the third return is the window's one token
}
