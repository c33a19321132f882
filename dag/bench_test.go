package dag_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// syntheticDAG stores the internal nodes of a balanced 64 GiB file of
// 1 MiB raw leaves (65 536 leaves under 64 nodes of 1024 links under a
// root) and returns the root. The leaves are CIDs only: the index never
// fetches raw leaves.
func syntheticDAG(b *testing.B) (cid.Cid, dag.BlockGetter) {
	b.Helper()
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	builder := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	root := unixfs.NewFSNode(unixfspb.Data_File)
	rootNode := merkledag.NodeWithData(nil)
	rootNode.SetCidBuilder(builder)
	leaf := 0
	for range 64 {
		fsn := unixfs.NewFSNode(unixfspb.Data_File)
		nd := merkledag.NodeWithData(nil)
		nd.SetCidBuilder(builder)
		for range 1024 {
			c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte{byte(leaf), byte(leaf >> 8), byte(leaf >> 16)})
			leaf++
			if err := nd.AddRawLink("", &ipld.Link{Cid: c, Size: 1 << 20}); err != nil {
				b.Fatal(err)
			}
			fsn.AddBlockSize(1 << 20)
		}
		data, err := fsn.GetBytes()
		if err != nil {
			b.Fatal(err)
		}
		nd.SetData(data)
		if err := ds.Add(ctx, nd); err != nil {
			b.Fatal(err)
		}
		if err := rootNode.AddNodeLink("", nd); err != nil {
			b.Fatal(err)
		}
		root.AddBlockSize(1 << 30)
	}
	data, err := root.GetBytes()
	if err != nil {
		b.Fatal(err)
	}
	rootNode.SetData(data)
	if err := ds.Add(ctx, rootNode); err != nil {
		b.Fatal(err)
	}
	return rootNode.Cid(), bserv
}

// BenchmarkSeek64GiB measures a seek to a random offset of a 64 GiB file:
// cold (a fresh index, so the root and one internal node are decoded) and
// warm (nodes cached).
func BenchmarkSeek64GiB(b *testing.B) {
	root, store := syntheticDAG(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	const size = 64 << 30
	seek := func(ix *dag.Index) {
		off := rng.Int64N(size)
		for leaf, err := range ix.Leaves(ctx, store, root, off, off+1) {
			if err != nil || leaf.Offset > off {
				b.Fatalf("seek to %d: leaf at %d, %v", off, leaf.Offset, err)
			}
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			ix, _ := dag.NewIndex(128)
			seek(ix)
		}
	})
	b.Run("warm", func(b *testing.B) {
		ix, _ := dag.NewIndex(128)
		for b.Loop() {
			seek(ix)
		}
	})
}
