package hedge

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Local is the edge's own store, as hedges and gateways read it. Blocks in
// it were verified when they were stored.
type Local interface {
	// GetBlock returns the held block c, or an error for which
	// ipld.IsNotFound holds.
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
	// Size returns the length of the held block c without reading it,
	// or an error for which ipld.IsNotFound holds.
	Size(ctx context.Context, c cid.Cid) (int, error)
	// ReadAt copies into p the bytes of the held block c from byte off
	// on and returns how many it copied, fewer than len(p) only at the
	// block's end. A block not held gives an error for which
	// ipld.IsNotFound holds.
	ReadAt(ctx context.Context, c cid.Cid, p []byte, off int64) (int, error)
}

// LocalBlockstore makes a boxo blockstore a Local. Its ReadAt reads a
// block whole to copy part of it: the node's own store reads in place.
func LocalBlockstore(bs blockstore.Blockstore) Local {
	return localBlockstore{bs}
}

type localBlockstore struct {
	bs blockstore.Blockstore
}

func (l localBlockstore) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return l.bs.Get(ctx, c)
}

func (l localBlockstore) Size(ctx context.Context, c cid.Cid) (int, error) {
	return l.bs.GetSize(ctx, c)
}

func (l localBlockstore) ReadAt(ctx context.Context, c cid.Cid, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading block %s at %d: negative offset", c, off)
	}
	blk, err := l.bs.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	if data := blk.RawData(); off < int64(len(data)) {
		return copy(p, data[off:]), nil
	}
	return 0, nil
}
