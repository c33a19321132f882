package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
)

// BlockPutter stores blocks.
type BlockPutter interface {
	PutMany(ctx context.Context, blks []blocks.Block) error
}

// carBatch is the number of blocks stored per write while importing a CAR.
const carBatch = 256

// ImportCAR reads a CARv1 or CARv2 stream, checks every block against its
// CID, stores the blocks in bs and returns the CAR's roots and the number of
// blocks stored. A block whose bytes do not match its CID fails the import.
func ImportCAR(ctx context.Context, bs BlockPutter, r io.Reader) ([]cid.Cid, int, error) {
	br, err := carv2.NewBlockReader(r)
	if err != nil {
		return nil, 0, fmt.Errorf("reading CAR header: %w", err)
	}
	var (
		batch []blocks.Block
		n     int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := bs.PutMany(ctx, batch); err != nil {
			return fmt.Errorf("storing blocks: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		blk, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, n, fmt.Errorf("reading CAR block %d: %w", n+len(batch), err)
		}
		batch = append(batch, blk)
		if len(batch) == carBatch {
			if err := flush(); err != nil {
				return nil, n, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, n, err
	}
	return br.Roots, n, nil
}
