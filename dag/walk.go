package dag

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Walk calls visit once for each block of the DAG under root, following
// the links visit returns, up to parallel visits at a time (at least one).
// A block reached twice is visited once. The first error visit returns
// stops the walk and is returned, as is ctx's end. Walks whose output
// has an order (a CAR) walk depth first themselves.
func Walk(ctx context.Context, root cid.Cid, parallel int, visit func(context.Context, cid.Cid) ([]cid.Cid, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[cid.Cid]struct{}{}
		sem  = make(chan struct{}, max(parallel-1, 0))
	)
	var step func(c cid.Cid)
	step = func(c cid.Cid) {
		if ctx.Err() != nil {
			return
		}
		mu.Lock()
		_, dup := seen[c]
		seen[c] = struct{}{}
		mu.Unlock()
		if dup {
			return
		}
		next, err := visit(ctx, c)
		if err != nil {
			cancel(err)
			return
		}
		for _, l := range next {
			select {
			case sem <- struct{}{}:
				wg.Go(func() {
					defer func() { <-sem }()
					step(l)
				})
			default:
				// Every walker is busy: this one goes on itself, so
				// the walk never waits on itself.
				step(l)
			}
		}
	}
	step(root)
	wg.Wait()
	return context.Cause(ctx)
}

// Links returns the links of a dag-pb block; any other block has none.
func Links(blk blocks.Block) ([]cid.Cid, error) {
	if blk == nil || blk.Cid().Prefix().Codec != cid.DagProtobuf {
		return nil, nil
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return nil, fmt.Errorf("%w: decoding block %s: %v", ErrMalformed, blk.Cid(), err)
	}
	out := make([]cid.Cid, len(nd.Links()))
	for i, l := range nd.Links() {
		out[i] = l.Cid
	}
	return out, nil
}
