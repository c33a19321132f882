package hedge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
	"go.uber.org/zap"
)

// ErrNotServed is what a source answers for a want it cannot serve at
// all (an origin asked for a block that is not a raw leaf): the hedge
// moves on to the next source at once and never reports it as the cause.
var ErrNotServed = errors.New("the source does not serve this block")

// maxPostpone bounds how much a source's signs of progress (Want.Progress)
// delay the sources after it: an owner that is slow but working keeps its
// members from fetching the same leaf from the origin, and one that only
// says it works cannot hold them for longer than this.
const maxPostpone = 5 * time.Second

// FleetFirst is how long an edge gives its fleet before asking an owned
// source itself: a member that does not own a block gives the owner, and
// the owner gives the members that may hold it. The owner fills the
// block from those sources for the whole fleet, so each crosses into the
// fleet about once.
const FleetFirst = 250 * time.Millisecond

// step is one source on a want's ladder.
type step struct {
	name    string
	after   time.Duration
	fetcher Fetcher
	// kept steps store what they fetch themselves (see Rung.Kept).
	kept bool
	// fallback steps are asked only when every step before has failed.
	fallback bool
	// gate marks the step that asks the members for what they hold;
	// gated steps (the owned sources behind it) are asked at once when
	// it fails, and at their delay otherwise.
	gate, gated bool
}

// ladder lists who is asked for w, and when: the fleet's owner of the
// block first, then the sources in the order of their delays. The owned
// sources (the origin, the swarm) are asked by an edge that does not own
// the block only FleetFirst (or their own delay) after its owner; an
// owner asks them as soon as the members that may hold the block say
// they do not, and at most FleetFirst after them.
func (r *Request) ladder(w Want) []step {
	var steps []step
	fleet := r.h.cfg.Fleet
	if w.reason() == ForFleet {
		fleet = nil // the asker chose this edge as the owner: no loops
	}
	owned := false
	for _, o := range r.rungs {
		owned = owned || o.rung.Owned
	}
	var members []Fetcher
	if fleet != nil {
		if members = fleet.Members(); len(members) == 0 {
			fleet = nil // alone for now: ownership means nothing
		}
	}
	ahead := w.Ahead // Get marks readahead in a fleet
	own := true      // this edge fills its misses from owned sources at once
	if fleet != nil {
		if owner := fleet.Owner(w.Cid); owner != nil {
			own = false
			steps = append(steps, step{name: SourceFleet, fetcher: owner})
		}
		if !owned {
			// Without an origin behind the fleet, a member other than
			// the owner may hold the block.
			steps = append(steps, step{name: SourceFleet, fetcher: FirstOf(members...), fallback: !own})
		}
	}
	// An edge about to fill a miss from its origin for the fleet (as the
	// block's owner, or for the member that asked it) first asks the
	// other members for what they hold: a member may have it from another
	// owner, or from a whole file it pulled. The origin is asked as soon
	// as they all say no, or after its own delay.
	held := false
	if owned && !ahead && (w.reason() == ForFleet || (fleet != nil && own)) && r.h.cfg.Fleet != nil {
		if others := r.h.cfg.Fleet.Members(); len(others) > 0 {
			held = true
			steps = append(steps, step{name: SourceFleet, fetcher: heldOnly(FirstOf(others...)), gate: true})
		}
	}
	for _, o := range r.rungs {
		if ahead && o.rung.Owned {
			continue
		}
		after := o.rung.After
		switch {
		case o.rung.Owned && (!own || held):
			after = max(after, FleetFirst)
		case o.rung.Owned && (fleet != nil || w.reason() == ForFleet):
			after = 0
		}
		steps = append(steps, step{name: o.rung.Name, after: after, fetcher: o.fetcher, kept: o.rung.Kept,
			gated: held && o.rung.Owned})
	}
	slices.SortStableFunc(steps, func(a, b step) int {
		if a.fallback != b.fallback {
			if a.fallback {
				return 1
			}
			return -1
		}
		return int(a.after - b.after)
	})
	return steps
}

// ahead reports a want made ahead of need in a fleet: its readahead, or a
// member's. It never asks the origin: the bed measured readahead as the
// whole of the origin's excess over the bytes players read (1.74x with it,
// 1.00x without), and it slowed their first bytes.
func (r *Request) ahead(w Want) bool {
	if w.Ahead {
		return true
	}
	f := r.h.cfg.Fleet
	return w.reason() == ForReadahead && f != nil && len(f.Members()) > 0
}

// answer is one step's reply. stored, if not nil, yields the error of
// keeping blk, once it is kept.
type answer struct {
	step   int
	blk    blocks.Block
	err    error
	stored <-chan error
}

// race asks the ladder's steps for w, each at its delay or as soon as all
// steps asked before it have failed, and returns the first block.
func (r *Request) race(ctx context.Context, w Want) (blocks.Block, error) {
	steps := r.ladder(w)
	if len(steps) == 0 {
		return nil, r.missing(w, nil)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, len(steps)) // buffered: losers never block
	// Delays run from when a viewer waits for the block, not from when it
	// was asked for: a leaf deep in a stream's window is not late while
	// the leaves before it are still being written.
	needed := w.Needed
	waiting := needed == nil
	begin := time.Now()
	opened := false // the gate step failed: its gated steps are due
	due := func(st step) bool {
		return !st.fallback && (st.after == 0 || (st.gated && opened) || (waiting && time.Since(begin) >= st.after))
	}
	// A step's signs of progress move begin on, up to maxPostpone past
	// when the viewer began to wait.
	progressed := make(chan struct{}, 1)
	progress := func() {
		select {
		case progressed <- struct{}{}:
		default:
		}
	}
	started := begin
	pending, next := 0, 0
	ask := func(i int) {
		pending++
		sw := w
		sw.Progress = progress
		go func() {
			blk, err := steps[i].fetcher.Fetch(ctx, sw)
			if err != nil || steps[i].kept {
				answers <- answer{step: i, blk: blk, err: err}
				return
			}
			// Answered before it is kept, and kept before the answer is
			// served: keeping wakes the node's own sessions waiting for
			// the block, whose answer must not come first and claim the
			// block as theirs.
			stored := make(chan error, 1)
			answers <- answer{step: i, blk: blk, stored: stored}
			stored <- r.keep(ctx, blk)
		}()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var errs []error
	for {
		// Ask every step that is due, and the next one if nothing is
		// pending.
		for next < len(steps) && (due(steps[next]) || pending == 0) {
			ask(next)
			next++
		}
		if pending == 0 {
			return nil, r.missing(w, errs)
		}
		if waiting && next < len(steps) && !steps[next].fallback {
			timer.Reset(steps[next].after - time.Since(begin))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-needed:
			// A viewer waits for it now: the delays start.
			waiting, needed, begin = true, nil, time.Now()
			started = begin
		case <-progressed:
			// A source asked is slow but says the block is on its way:
			// the sources after it wait from now.
			if waiting {
				begin = time.Now()
				if limit := started.Add(maxPostpone); begin.After(limit) {
					begin = limit
				}
			}
		case <-timer.C:
		case a := <-answers:
			pending--
			name := steps[a.step].name
			if a.err == nil && a.stored != nil {
				a.err = <-a.stored
			}
			if a.err == nil {
				blk := r.fetched(w, name, a.blk)
				if pending > 0 {
					// Steps still running are cancelled; those that
					// finish anyway crossed into the edge too, and are
					// counted so.
					go r.drain(w, steps, answers, pending)
				}
				return blk, nil
			}
			r.failed(w, name, a.err)
			errs = append(errs, a.err)
			opened = opened || steps[a.step].gate
		}
	}
}

// keep stores a block a source fetched: once it crossed into the edge it
// is kept even if the want has been answered meanwhile, so no source's
// bytes are wasted.
func (r *Request) keep(ctx context.Context, blk blocks.Block) error {
	if r.h.cfg.Store == nil {
		return nil
	}
	if err := r.h.cfg.Store.Keep(context.WithoutCancel(ctx), blk); err != nil {
		return fmt.Errorf("keeping block %s: %w", blk.Cid(), err)
	}
	return nil
}

// fetched names the source of a block that crossed into the edge and
// counts it.
func (r *Request) fetched(w Want, name string, blk blocks.Block) blocks.Block {
	if SourceOf(blk) == "" || name == SourceFleet {
		blk = Sourced{blk, name}
	}
	r.h.cfg.Observer.Fetched(SourceOf(blk), w.reason(), len(blk.RawData()))
	return blk
}

// drain counts the blocks of the pending steps that still arrive after a
// winner, so that what a source sent is never missing from the counts.
func (r *Request) drain(w Want, steps []step, answers <-chan answer, pending int) {
	for range pending {
		if a := <-answers; a.err == nil {
			if a.stored != nil {
				<-a.stored
			}
			r.fetched(w, steps[a.step].name, a.blk)
		}
	}
}

// failed counts and logs a source's failure.
func (r *Request) failed(w Want, source string, err error) {
	if errors.Is(err, ErrMismatch) {
		r.h.cfg.Observer.Rejected(source)
		r.h.cfg.Logger.Warn("a source sent bytes that do not match the block's CID; not served",
			zap.String("source", source), zap.Stringer("cid", w.Cid), zap.Int64("offset", w.Offset))
		return
	}
	if ce := r.h.cfg.Logger.Check(zap.DebugLevel, "source failed"); ce != nil {
		ce.Write(zap.String("source", source), zap.Stringer("cid", w.Cid), zap.Error(err))
	}
}

// missing is the error for a want every source failed: the policy's when
// nothing else was wrong but absence, else the most telling failure.
func (r *Request) missing(w Want, errs []error) error {
	var cause error
	for _, err := range errs {
		if errors.Is(err, ErrNotServed) || errors.Is(err, context.Canceled) {
			continue
		}
		if cause == nil || ipld.IsNotFound(cause) {
			cause = err
		}
	}
	switch {
	case (cause == nil || ipld.IsNotFound(cause)) && r.notHeld != nil:
		return fmt.Errorf("%w: %s", r.notHeld, w.Cid)
	case cause == nil:
		// Absent, as far as this edge may look: a fleet member asking
		// hears "not found", and answers as a lone edge would.
		return fmt.Errorf("%w: %w", errNoSource, ipld.ErrNotFound{Cid: w.Cid})
	}
	return cause
}

// heldOnly asks f for what the fleet members it asks hold, never for a
// fetch from their origin (Want.Ahead).
func heldOnly(f Fetcher) Fetcher {
	return FetcherFunc(func(ctx context.Context, w Want) (blocks.Block, error) {
		w.Ahead = true
		return f.Fetch(ctx, w)
	})
}

// FirstOf asks every fetcher at once and returns the first block; it
// fails only when all have failed, with all their errors.
func FirstOf(fs ...Fetcher) Fetcher {
	return FetcherFunc(func(ctx context.Context, w Want) (blocks.Block, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		answers := make(chan answer, len(fs))
		for i, f := range fs {
			go func() {
				blk, err := f.Fetch(ctx, w)
				answers <- answer{step: i, blk: blk, err: err}
			}()
		}
		var errs []error
		for range fs {
			a := <-answers
			if a.err == nil {
				return a.blk, nil
			}
			errs = append(errs, a.err)
		}
		return nil, errors.Join(errs...)
	})
}
