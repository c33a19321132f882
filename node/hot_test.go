package node

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
)

// TestReadAtReadsABlockOnce: a stream reads a held 1 MiB leaf 64 KiB at
// a time, and pebble read the whole value from its blob file, and
// checked it, for every piece (a warm full GET at a quarter of the pace
// of reading each leaf once). Once a read continues the one before, the
// value is kept in memory and the pieces after it come from there: they
// are served even with pebble's copy gone behind the store's back.
func TestReadAtReadsABlockOnce(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	blk := blocks.NewBlock(bytes.Repeat([]byte("a leaf read in pieces "), 1<<20/22))
	if err := s.Blockstore.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(off int64) ([]byte, error) {
		p := make([]byte, 64<<10)
		n, err := s.ReadAt(ctx, blk.Cid(), p, off)
		return p[:n], err
	}
	for off := int64(0); off < 128<<10; off += 64 << 10 {
		if got, err := read(off); err != nil || !bytes.Equal(got, blk.RawData()[off:off+64<<10]) {
			t.Fatalf("piece at %d: %d bytes, %v", off, len(got), err)
		}
	}
	// pebble's copy goes, as if read by someone else: the rest of the
	// block is the one read already.
	key := blockstore.BlockPrefix.Child(dshelp.MultihashToDsKey(blk.Cid().Hash())).Bytes()
	if err := s.ds.DB.Delete(key, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	for off := int64(128 << 10); off < int64(len(blk.RawData())); off += 64 << 10 {
		got, err := read(off)
		if err != nil || !bytes.Equal(got, blk.RawData()[off:min(off+64<<10, int64(len(blk.RawData())))]) {
			t.Fatalf("piece at %d: %d bytes, %v; want it from the block read once", off, len(got), err)
		}
	}
	// A block deleted through the store is not read from what was kept.
	if err := s.Blockstore.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 64 << 10} { // a reader going through it: kept
		if _, err := read(off); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Blockstore.DeleteBlock(ctx, blk.Cid()); err != nil {
		t.Fatal(err)
	}
	if got, err := read(128 << 10); !ipld.IsNotFound(err) {
		t.Errorf("a piece of a deleted block: %d bytes, %v; want not found", len(got), err)
	}
}
