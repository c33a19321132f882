package ingest_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestConcatReadsAsThePiecesInOrder: a file made of a one-block piece, a
// piece of several blocks and another one-block piece reads back as their
// bytes in order, and its root is the only block it adds.
func TestConcatReadsAsThePiecesInOrder(t *testing.T) {
	ctx := context.Background()
	dag := mdtest.Mock()
	var pieces []ingest.Piece
	var want []byte
	for i, size := range []int{3000, 1<<20 + 77, 1} {
		data := testutil.Bytes(string(rune('a'+i)), size)
		c, err := ingest.Import(ctx, dag, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, ingest.Piece{CID: c, Size: uint64(size)})
		want = append(want, data...)
	}
	c, err := ingest.Concat(ctx, dag, pieces)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := dag.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if links := nd.Links(); len(links) != 3 || links[1].Cid != pieces[1].CID {
		t.Errorf("the root links %v; want the three pieces", links)
	}
	r, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != uint64(len(want)) {
		t.Errorf("size %d; want %d", r.Size(), len(want))
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the file is not its pieces in order")
	}
	if _, err := ingest.Concat(ctx, dag, nil); err == nil {
		t.Error("a file of no pieces was made")
	}
}
