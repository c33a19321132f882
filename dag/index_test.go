package dag_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	bschunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"google.golang.org/protobuf/proto"
)

// countingGetter counts the blocks fetched through it.
type countingGetter struct {
	g interface {
		GetBlock(context.Context, cid.Cid) (blocks.Block, error)
	}
	n atomic.Int64
}

func (c *countingGetter) GetBlock(ctx context.Context, k cid.Cid) (blocks.Block, error) {
	c.n.Add(1)
	return c.g.GetBlock(ctx, k)
}

func mustIndex(t testing.TB) *dag.Index {
	ix, err := dag.NewIndex(1024)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestLeavesCoverRanges checks on a four-level DAG (50 leaves of 1000
// bytes, 4 links per node) that Leaves yields exactly the leaves overlapping
// each range, in order, contiguous, with the right bytes.
func TestLeavesCoverRanges(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("index", 50_000)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data), ingest.WithChunkSize(1000), ingest.WithMaxLinks(4))
	if err != nil {
		t.Fatal(err)
	}
	ix := mustIndex(t)
	if size, err := ix.Size(ctx, bserv, root); err != nil || size != int64(len(data)) {
		t.Fatalf("Size = %d, %v; want %d", size, err, len(data))
	}
	cases := [][2]int64{{0, 1}, {0, 50_000}, {999, 1001}, {1000, 2000}, {49_999, 50_000}, {12_345, 37_000}, {0, 1 << 40}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s := rng.Int64N(50_000)
		cases = append(cases, [2]int64{s, s + 1 + rng.Int64N(50_000-s)})
	}
	for _, c := range cases {
		start, end := c[0], min(c[1], int64(len(data)))
		next := start / 1000 * 1000
		for leaf, err := range ix.Leaves(ctx, bserv, root, c[0], c[1]) {
			if err != nil {
				t.Fatalf("[%d,%d): %v", start, end, err)
			}
			if leaf.Offset != next {
				t.Fatalf("[%d,%d): leaf at %d, want %d", start, end, leaf.Offset, next)
			}
			blk, err := bserv.GetBlock(ctx, leaf.Cid)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blk.RawData(), data[leaf.Offset:leaf.Offset+leaf.Size]) {
				t.Fatalf("[%d,%d): leaf at %d holds other bytes", start, end, leaf.Offset)
			}
			next = leaf.Offset + leaf.Size
		}
		if next < end {
			t.Fatalf("[%d,%d): leaves stop at %d", start, end, next)
		}
	}
}

// TestSeekCostsDepth checks that a seek fetches one node per level, not a
// scan, and that a second seek is served from the node cache.
func TestSeekCostsDepth(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("seek", 50_000)
	// 50 leaves under 4-link nodes: root, 2 levels of internal nodes, leaves.
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data), ingest.WithChunkSize(1000), ingest.WithMaxLinks(4))
	if err != nil {
		t.Fatal(err)
	}
	ix := mustIndex(t)
	g := &countingGetter{g: bserv}
	for range ix.Leaves(ctx, g, root, 37_500, 37_501) {
	}
	if got := g.n.Load(); got != 3 {
		t.Errorf("cold seek fetched %d nodes, want 3 (the internal levels)", got)
	}
	g.n.Store(0)
	for range ix.Leaves(ctx, g, root, 37_000, 37_001) {
	}
	if got := g.n.Load(); got != 0 {
		t.Errorf("warm seek fetched %d nodes, want 0", got)
	}
}

// TestLeavesStopsEarly checks that a consumer that stops iterating stops the
// walk: nothing past the break is fetched.
func TestLeavesStopsEarly(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("early", 50_000)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data), ingest.WithChunkSize(1000), ingest.WithMaxLinks(4))
	if err != nil {
		t.Fatal(err)
	}
	g := &countingGetter{g: bserv}
	n := 0
	for range mustIndex(t).Leaves(ctx, g, root, 0, 50_000) {
		if n++; n == 2 {
			break
		}
	}
	if got := g.n.Load(); got != 3 {
		t.Errorf("fetched %d nodes for the first two leaves, want 3", got)
	}
}

// TestLeavesOfDagPBLeaves reads a DAG built the pre-2025 way (CIDv0,
// dag-pb leaves wrapping their data) as the gateway conformance fixtures are.
func TestLeavesOfDagPBLeaves(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	data := testutil.Bytes("v0", 10_000)
	params := helpers.DagBuilderParams{Dagserv: ds, Maxlinks: 3}
	db, err := params.New(bschunker.NewSizeSplitter(bytes.NewReader(data), 1000))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for leaf, err := range mustIndex(t).Leaves(ctx, bserv, nd.Cid(), 0, 10_000) {
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Data == nil {
			t.Fatalf("dag-pb leaf %s without its data", leaf.Cid)
		}
		got = append(got, leaf.Data...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes that differ from the source", len(got))
	}
}

func TestIndexRejects(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	raw := merkledag.NewRawNode([]byte("12345"))
	if err := ds.Add(ctx, raw); err != nil {
		t.Fatal(err)
	}
	mkNode := func(typ unixfspb.Data_DataType, filesize uint64, sizes []uint64, links ...cid.Cid) cid.Cid {
		fsn := unixfs.NewFSNode(typ)
		for _, s := range sizes {
			fsn.AddBlockSize(s)
		}
		b, err := fsn.GetBytes()
		if err != nil {
			t.Fatal(err)
		}
		pn := merkledag.NodeWithData(b)
		for i, l := range links {
			if err := pn.AddRawLink(fmt.Sprint(i), &ipld.Link{Cid: l}); err != nil {
				t.Fatal(err)
			}
		}
		if filesize != 0 {
			// Rewrite the declared file size to contradict the block sizes.
			pb, err := unixfs.FromBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			pb.Filesize = &filesize
			pbBytes, err := proto.Marshal(pb)
			if err != nil {
				t.Fatal(err)
			}
			pn.SetData(pbBytes)
		}
		if err := ds.Add(ctx, pn); err != nil {
			t.Fatal(err)
		}
		return pn.Cid()
	}
	dir := mkNode(unixfspb.Data_Directory, 0, nil)
	missingSizes := mkNode(unixfspb.Data_File, 0, nil, raw.Cid())
	wrongTotal := mkNode(unixfspb.Data_File, 99, []uint64{5}, raw.Cid())
	cbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: 0x12, MhLength: -1}.Sum([]byte("x"))

	cases := []struct {
		name string
		root cid.Cid
		want error
	}{
		{"directory", dir, dag.ErrNotFile},
		{"dag-cbor", cbor, dag.ErrNotFile},
		{"links without block sizes", missingSizes, dag.ErrMalformed},
		{"file size contradicting block sizes", wrongTotal, dag.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			for _, e := range mustIndex(t).Leaves(ctx, bserv, tc.root, 0, 10) {
				if e != nil {
					err = e
				}
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}
