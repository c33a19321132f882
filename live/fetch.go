package live

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/hedge"
)

// OwnerFirst is how long an edge that does not own a live segment's block
// waits for the fleet's owner of it before asking the swarm itself.
const OwnerFirst = 250 * time.Millisecond

// PeerSessions is the swarm as a live segment's source: every edge learns
// of a segment at the same moment, so the owner of each block fetches it
// at once and the others ask the owner first, for OwnerFirst; the
// publisher then sends each block to a fleet about once, not once per
// edge.
func PeerSessions(open func(ctx context.Context) hedge.Getter) *hedge.Sessions {
	return hedge.NewSessions(hedge.Rung{Name: "peers", After: OwnerFirst, Again: 2 * time.Second, Owned: true}, open, 64, time.Minute)
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

// BlockGetter returns verified blocks, fetching those not held.
type BlockGetter interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// FetchDAG makes every block of the UnixFS DAG under root local through g,
// the links of each level fetched eight at a time; a DAG of more than
// maxBlocks blocks is refused.
func FetchDAG(ctx context.Context, g BlockGetter, root cid.Cid, maxBlocks int) error {
	level := []cid.Cid{root}
	seen := 0
	for len(level) > 0 {
		seen += len(level)
		if seen > maxBlocks {
			return fmt.Errorf("%s has more than %d blocks", root, maxBlocks)
		}
		var (
			mu   sync.Mutex
			next []cid.Cid
			errs = make(chan error, len(level))
			sem  = make(chan struct{}, 8)
			wg   sync.WaitGroup
		)
		for _, c := range level {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				blk, err := g.GetBlock(ctx, c)
				if err != nil {
					errs <- fmt.Errorf("fetching block %s: %w", c, err)
					return
				}
				if c.Type() != cid.DagProtobuf {
					return
				}
				nd, err := merkledag.DecodeProtobufBlock(blk)
				if err != nil {
					errs <- fmt.Errorf("decoding block %s: %w", c, err)
					return
				}
				mu.Lock()
				for _, l := range nd.Links() {
					next = append(next, l.Cid)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		level = next
	}
	return nil
}
