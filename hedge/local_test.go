package hedge_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
)

// sizeOnly is a store that answers sizes and refuses to be read.
type sizeOnly struct{ hedge.Local }

func (sizeOnly) GetBlock(context.Context, cid.Cid) (blocks.Block, error) {
	return nil, errors.New("read whole")
}

func (sizeOnly) ReadAt(context.Context, cid.Cid, []byte, int64) (int, error) {
	return 0, errors.New("read in place")
}

// TestHeldChecksTheSizeWithoutReading: a read of nothing tells whether a
// leaf is held and as long as its parent says, from the store's index,
// without reading the leaf: the check a warm seek makes of every leaf it
// streams. A leaf of another length is a malformed DAG.
func TestHeldChecksTheSizeWithoutReading(t *testing.T) {
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	leaf := blocks.NewBlock(bytes.Repeat([]byte("leaf "), 1000))
	if err := bs.Put(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	h, err := hedge.New(hedge.Config{Local: sizeOnly{hedge.LocalBlockstore(bs)}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := h.Open(hedge.Target{}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Release()
	if _, err := req.ReadAt(ctx, hedge.Want{Cid: leaf.Cid(), Size: 5000}, nil, 0); err != nil {
		t.Errorf("a held leaf as long as its parent says: %v", err)
	}
	if _, err := req.ReadAt(ctx, hedge.Want{Cid: leaf.Cid(), Size: 4999}, nil, 0); !errors.Is(err, dag.ErrMalformed) {
		t.Errorf("a held leaf longer than its parent says: %v, want a malformed DAG", err)
	}
	other := blocks.NewBlock([]byte("not held"))
	if _, err := req.ReadAt(ctx, hedge.Want{Cid: other.Cid(), Size: 8}, nil, 0); !ipld.IsNotFound(err) {
		t.Errorf("a leaf not held: %v, want not found", err)
	}
}
