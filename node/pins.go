package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/dag"
	"go.uber.org/zap"
)

// pinsPrefix namespaces the pins: the roots of the DAGs whose blocks the
// store keeps for good, /pacman/roots/{cid}. Every import pins its root.
// The key is older than pins as a word, and is kept so that stores from
// before keep their pins.
var pinsPrefix = datastore.NewKey("/pacman/roots")

// pinIdle is how long a pin resumed at start may go without a block.
const pinIdle = time.Minute

// pinWalkers is how many blocks a pin's walk fetches or looks at at once.
const pinWalkers = 16

// ErrNotPinned is the error of unpinning a CID that is not pinned.
var ErrNotPinned = errors.New("is not pinned")

// ErrIncomplete is the error of pinning, with nothing to fetch from, a DAG
// of which the store lacks blocks.
var ErrIncomplete = errors.New("is not all in the store")

// PinReport counts the blocks a pin or an unpin walked: for a pin, the
// blocks now kept for good; for an unpin, the blocks it left evictable
// (those no other pin reaches).
type PinReport struct {
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// fetcher gets a block the store lacks, and stores it.
type fetcher interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// Pin keeps the DAG under root for good: it records the pin, then walks the
// DAG (following dag-pb links; other codecs are single blocks), getting
// each block the store lacks from fetch, and takes every block out of the
// cache's reach. With fetch nil, a block the store lacks fails the pin
// with ErrIncomplete. A pin that fails is undone, unless root was pinned
// before; one cut short by a crash stays listed as incomplete, and a node
// that starts on the store resumes it. A pin is on disk when Pin returns,
// and its incomplete mark before the walk starts. progress, if not nil, is
// called after each block.
func (s *Store) Pin(ctx context.Context, root cid.Cid, fetch fetcher, progress func(PinReport)) (PinReport, error) {
	return s.pin(ctx, root, fetch, true, progress)
}

// PinHeld pins root as Pin does, from the store alone, and skips the
// blocks the store lacks: an import of part of a DAG (a CAR of its index)
// pins what it brought, and the rest is cached as it is fetched.
func (s *Store) PinHeld(ctx context.Context, root cid.Cid) (PinReport, error) {
	return s.pin(ctx, root, nil, false, nil)
}

func (s *Store) pin(ctx context.Context, root cid.Cid, fetch fetcher, complete bool, progress func(PinReport)) (PinReport, error) {
	var rep PinReport
	// The pin is recorded first, so an unpin that runs while the walk
	// does sees it and leaves its blocks kept.
	// It is marked incomplete until the walk ends, so a pin cut short by
	// a crash is listed as such, and resumed when a node next starts.
	s.pinMu.RLock()
	before, err := s.ds.Has(ctx, pinKey(root))
	if err == nil && !before {
		err = s.ds.Put(ctx, pinKey(root), incompleteMark)
	}
	s.pinMu.RUnlock()
	if err == nil && !before {
		// The mark must outlive a crash, or a pin cut short is
		// neither listed nor resumed.
		err = s.Sync(ctx)
	}
	if err != nil {
		return rep, fmt.Errorf("pinning %s: %w", root, err)
	}
	var mu sync.Mutex
	err = dag.Walk(ctx, root, pinWalkers, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
		blk, size, err := s.keep(ctx, root, c, fetch, complete)
		if err != nil || size < 0 {
			return nil, err
		}
		mu.Lock()
		rep.Blocks++
		rep.Bytes += int64(size)
		if progress != nil {
			progress(rep)
		}
		mu.Unlock()
		return dag.Links(blk)
	})
	if err != nil {
		if !before {
			// Undone with a context of its own: the pin's may be
			// what ended it.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, uerr := s.Unpin(uctx, root)
			cancel()
			err = errors.Join(err, uerr)
		}
		return rep, fmt.Errorf("pinning %s: %w", root, err)
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	ok, err := s.ds.Has(ctx, pinKey(root))
	if err != nil {
		return rep, fmt.Errorf("pinning %s: %w", root, err)
	}
	if !ok {
		// Unpinned while the walk ran: what it kept goes back to the
		// cache, as the unpin meant.
		_, err := s.release(ctx, root)
		return rep, errors.Join(fmt.Errorf("pinning %s: unpinned meanwhile", root), err)
	}
	if err := s.ds.Put(ctx, pinKey(root), nil); err != nil {
		return rep, fmt.Errorf("pinning %s: %w", root, err)
	}
	// A pin reported done is on disk: its record, the blocks its walk
	// fetched and their bookkeeping.
	if err := s.Sync(ctx); err != nil {
		return rep, fmt.Errorf("pinning %s: %w", root, err)
	}
	return rep, nil
}

// resumePins finishes the pins a crash cut short, fetching what they lack
// from peers. One that fails, or makes no progress for pinIdle, stays
// listed as incomplete, for the next start.
func (n *Node) resumePins(ctx context.Context) {
	pins, err := n.store.Pins(ctx)
	if err != nil {
		n.log.Warn("listing pins to resume", zap.Error(err))
		return
	}
	for _, p := range pins {
		if !p.Incomplete {
			continue
		}
		n.log.Info("resuming a pin cut short", zap.Stringer("cid", p.Root))
		pctx, cancel := context.WithCancel(ctx)
		idle := time.AfterFunc(pinIdle, cancel)
		_, err := n.Pin(pctx, p.Root, func(PinReport) { idle.Reset(pinIdle) })
		idle.Stop()
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("resuming a pin cut short", zap.Stringer("cid", p.Root), zap.Error(err))
		}
	}
}

// incompleteMark is the value of a pin whose walk has not ended.
var incompleteMark = []byte("incomplete")

// Unpin removes the pin of root, on disk when it returns. The blocks of its DAG that no other pin
// reaches become cached: evictable, least recently used first, under the
// cache's size. Unpins run one at a time, and pins' walks wait for them.
func (s *Store) Unpin(ctx context.Context, root cid.Cid) (PinReport, error) {
	var rep PinReport
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	ok, err := s.ds.Has(ctx, pinKey(root))
	if err != nil {
		return rep, fmt.Errorf("unpinning %s: %w", root, err)
	}
	if !ok {
		return rep, fmt.Errorf("%s %w", root, ErrNotPinned)
	}
	if err := s.ds.Delete(ctx, pinKey(root)); err != nil {
		return rep, fmt.Errorf("unpinning %s: %w", root, err)
	}
	rep, err = s.release(ctx, root)
	if err == nil {
		err = s.Sync(ctx)
	}
	if err != nil {
		return rep, fmt.Errorf("unpinning %s: %w", root, err)
	}
	return rep, nil
}

// Discard makes evictable the blocks of the DAGs under roots that no pin
// reaches: what an import that failed, or an upload that will never be
// announced, wrote. Imported blocks are otherwise kept for good, so
// without it they would fill the disk. A root not held is skipped.
func (s *Store) Discard(ctx context.Context, roots ...cid.Cid) (PinReport, error) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	rep, err := s.release(ctx, roots...)
	if err != nil {
		return rep, fmt.Errorf("discarding %d DAGs: %w", len(roots), err)
	}
	return rep, nil
}

// release makes evictable the blocks of the DAGs under roots that no pin
// reaches. The caller holds pinMu. It notes the blocks of root's DAG
// held, then walks the other pins and strikes off what they reach: memory
// in proportion to root's DAG, not to all that is pinned, and the other
// pins' raw leaves are struck off by their CIDs alone, without a lookup.
func (s *Store) release(ctx context.Context, roots ...cid.Cid) (PinReport, error) {
	var rep PinReport
	var mu sync.Mutex
	held := map[string]int{} // by multihash, as blocks are stored: the size
	for _, root := range roots {
		err := dag.Walk(ctx, root, pinWalkers, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
			mu.Lock()
			_, seen := held[string(c.Hash())]
			mu.Unlock()
			if seen {
				return nil, nil // walked from another root
			}
			blk, size, err := s.held(ctx, c)
			if err != nil || size < 0 {
				return nil, err
			}
			if c.Prefix().MhType != identity {
				mu.Lock()
				held[string(c.Hash())] = size
				mu.Unlock()
			}
			return dag.Links(blk)
		})
		if err != nil {
			return rep, err
		}
	}
	pins, err := s.listPins(ctx)
	if err != nil {
		return rep, err
	}
	errDone := errors.New("every block is reached by another pin")
	for _, p := range pins {
		err := dag.Walk(ctx, p.Root, pinWalkers, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
			mu.Lock()
			delete(held, string(c.Hash()))
			left := len(held)
			mu.Unlock()
			if left == 0 {
				return nil, errDone
			}
			if c.Prefix().Codec == cid.Raw {
				return nil, nil
			}
			blk, size, err := s.held(ctx, c)
			if err != nil || size < 0 {
				return nil, err
			}
			return dag.Links(blk)
		})
		if errors.Is(err, errDone) {
			return rep, nil
		}
		if err != nil {
			return rep, fmt.Errorf("walking pin %s: %w", p.Root, err)
		}
	}
	now := time.Now()
	for mh, size := range held {
		c := cid.NewCidV1(cid.Raw, multihash.Multihash(mh))
		if err := s.evictable(ctx, c, size, now); err != nil {
			return rep, err
		}
		rep.Blocks++
		rep.Bytes += int64(size)
	}
	return rep, nil
}

// identity is the multihash code of identity CIDs, whose blocks are the
// CIDs themselves and never stored.
const identity = 0x00

// Pinned is a pin as Pins lists it.
type Pinned struct {
	Root cid.Cid
	// Incomplete is set while the pin's walk runs, and after a crash cut
	// it short: not all of the DAG may be held yet.
	Incomplete bool
}

// Pins lists the pins. It waits for a pin or an unpin that is recording
// its end, so a pin listed complete is on disk.
func (s *Store) Pins(ctx context.Context) ([]Pinned, error) {
	s.pinMu.RLock()
	defer s.pinMu.RUnlock()
	return s.listPins(ctx)
}

// listPins lists the pins; the caller holds pinMu, or needs no more than
// what the store says now.
func (s *Store) listPins(ctx context.Context) ([]Pinned, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: pinsPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("listing pins: %w", err)
	}
	defer res.Close()
	var out []Pinned
	for r := range res.Next() {
		if r.Error != nil {
			return out, fmt.Errorf("listing pins: %w", r.Error)
		}
		c, err := cid.Decode(datastore.NewKey(r.Key).BaseNamespace())
		if err != nil {
			continue // not a pin
		}
		out = append(out, Pinned{Root: c, Incomplete: len(r.Value) > 0})
	}
	return out, ctx.Err()
}

// pins streams the pinned roots: what the "roots" strategy announces.
func (s *Store) pins(ctx context.Context) (<-chan cid.Cid, error) {
	pins, err := s.Pins(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan cid.Cid)
	go func() {
		defer close(out)
		for _, p := range pins {
			select {
			case out <- p.Root:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func pinKey(c cid.Cid) datastore.Key { return pinsPrefix.ChildString(c.String()) }

// held looks c up in the store: its size, -1 if the store lacks it, and
// its block when it can have links (a raw leaf is not read).
func (s *Store) held(ctx context.Context, c cid.Cid) (blocks.Block, int, error) {
	if c.Prefix().Codec == cid.Raw {
		n, err := s.base.GetSize(ctx, c)
		if ipld.IsNotFound(err) {
			return nil, -1, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("looking up block %s: %w", c, err)
		}
		return nil, n, nil
	}
	blk, err := s.base.Get(ctx, c)
	if ipld.IsNotFound(err) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading block %s: %w", c, err)
	}
	return blk, len(blk.RawData()), nil
}

// keep makes block c of root's DAG one the store keeps for good: held,
// or fetched, or (with fetch nil) missing, which is an error if complete
// is set. It returns the block if it may have links, and its size, -1 if
// it is missing.
func (s *Store) keep(ctx context.Context, root, c cid.Cid, fetch fetcher, complete bool) (blocks.Block, int, error) {
	// A block the evictor deleted before the pin took it out of the
	// cache is fetched again.
	for range 3 {
		blk, size, err := s.held(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		if size < 0 {
			switch {
			case fetch != nil:
				if blk, err = fetch.GetBlock(ctx, c); err != nil {
					return nil, 0, fmt.Errorf("fetching block %s: %w", c, err)
				}
				size = len(blk.RawData())
			case complete:
				return nil, 0, fmt.Errorf("%s %w: block %s is missing", root, ErrIncomplete, c)
			default:
				return nil, -1, nil
			}
		}
		kept, err := s.keepForGood(ctx, c)
		if err != nil || kept {
			return blk, size, err
		}
	}
	return nil, 0, fmt.Errorf("block %s was evicted each time it was pinned", c)
}

// keepForGood takes a stored block out of the cache, and reports whether
// it is still held: the evictor may have deleted it since it was stored.
// It waits for a running unpin, which might otherwise make the block
// evictable after the pin's walk took it out.
func (s *Store) keepForGood(ctx context.Context, c cid.Cid) (bool, error) {
	s.pinMu.RLock()
	defer s.pinMu.RUnlock()
	if err := s.ds.Delete(ctx, cachedKey(c)); err != nil {
		return false, fmt.Errorf("keeping block %s: %w", c, err)
	}
	if s.cache == nil {
		return true, nil
	}
	// Out of the cache, and past any deletion of it under way, the
	// block is either held for good or gone.
	s.cache.forget(c)
	ok, err := s.base.Has(ctx, c)
	if err != nil {
		return false, fmt.Errorf("keeping block %s: %w", c, err)
	}
	return ok, nil
}

// evictable marks a stored block as cached, used at t.
func (s *Store) evictable(ctx context.Context, c cid.Cid, size int, t time.Time) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], uint64(size))
	binary.BigEndian.PutUint64(v[8:], uint64(t.UnixNano()))
	if err := s.ds.Put(ctx, cachedKey(c), v[:]); err != nil {
		return fmt.Errorf("marking block %s evictable: %w", c, err)
	}
	if s.cache != nil {
		s.cache.track(c, int64(size), t)
	}
	return nil
}
