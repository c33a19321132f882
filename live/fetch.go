package live

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

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
