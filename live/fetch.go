package live

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
)

// PeerSessions is the swarm as a live segment's source: every edge learns
// of a segment at the same moment, so the owner of each block fetches it
// at once and the others ask the owner first, for hedge.FleetFirst; the
// publisher then sends each block to a fleet about once, not once per
// edge.
func PeerSessions(open func(ctx context.Context) hedge.Getter) *hedge.Sessions {
	return hedge.NewSessions(hedge.Rung{Name: "peers", Owned: true}, open, 64, time.Minute)
}

// HedgeFetcher returns a Fetcher that makes DAGs local through h.
func HedgeFetcher(h *hedge.Hedge) Fetcher {
	return func(ctx context.Context, c cid.Cid, maxBlocks int) error {
		req, err := h.Open(hedge.Target{Root: c}, true, nil)
		if err != nil {
			return err
		}
		defer req.Release()
		return FetchDAG(ctx, req, c, maxBlocks)
	}
}

// FetchDAG makes every block of the DAG under root local through g, eight
// at a time; a DAG of more than maxBlocks blocks is refused.
func FetchDAG(ctx context.Context, g dag.BlockGetter, root cid.Cid, maxBlocks int) error {
	var seen atomic.Int64
	return dag.Walk(ctx, root, 8, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
		if seen.Add(1) > int64(maxBlocks) {
			return nil, fmt.Errorf("%s has more than %d blocks", root, maxBlocks)
		}
		blk, err := g.GetBlock(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("fetching block %s: %w", c, err)
		}
		return dag.Links(blk)
	})
}
