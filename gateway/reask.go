package gateway

import (
	"context"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/chunker"
)

// lateSignal broadcasts "the viewer is waiting": every leaf still in flight
// is then asked for again, since leaves stuck behind one bad peer tend to
// be stuck together.
type lateSignal struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newLateSignal() *lateSignal { return &lateSignal{ch: make(chan struct{})} }

// wait returns a channel closed at the next fire.
func (l *lateSignal) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

func (l *lateSignal) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.ch)
	l.ch = make(chan struct{})
}

// raceGet fetches c through g, and again through a fresh session each time
// late fires; the first answer wins and the other asks are cancelled. With
// fresh nil, late must never fire.
func raceGet(ctx context.Context, c cid.Cid, g chunker.BlockGetter, fresh func(context.Context) chunker.BlockGetter, late *lateSignal) (blocks.Block, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		blk blocks.Block
		err error
	}
	answers := make(chan answer, 8) // buffered: losing asks never block
	ask := func(g chunker.BlockGetter) {
		blk, err := g.GetBlock(ctx, c)
		answers <- answer{blk, err}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ask(g) })
	asks := 1
	var (
		blk blocks.Block
		err error
	)
	for pending := 1; pending > 0; {
		select {
		case a := <-answers:
			pending--
			blk, err = a.blk, a.err
			if err == nil {
				pending = 0
			}
		case <-late.wait():
			if asks < cap(answers) {
				asks++
				pending++
				session := fresh(ctx)
				wg.Go(func() { ask(session) })
			}
		}
	}
	cancel()
	return blk, err
}

// reasking is a getter for the steps a viewer waits on one block at a
// time (resolving a path, reading the root, a CAR walk): a block not
// delivered within after is asked for again through a fresh session,
// racing the first ask, and again each after that passes.
type reasking struct {
	g     chunker.BlockGetter
	fresh func(context.Context) chunker.BlockGetter
	after time.Duration
}

func (r reasking) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if r.fresh == nil || r.after <= 0 {
		return r.g.GetBlock(ctx, c)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	late := newLateSignal()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stops the ticker goroutine
	wg.Go(func() {
		t := time.NewTicker(r.after)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				late.fire()
			}
		}
	})
	return raceGet(ctx, c, r.g, r.fresh, late)
}
