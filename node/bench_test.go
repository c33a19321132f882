package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

const importBenchSize = 32 << 20

// BenchmarkImport imports a file into a fresh store and syncs it, as
// `caddy pacman add` does. Compare with BenchmarkSHA256 of the same bytes,
// run alongside: the hashing every import must do.
func BenchmarkImport(b *testing.B) {
	data := testutil.Bytes("import-bench", importBenchSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := node.OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dag := merkledag.NewDAGService(blockservice.New(s.Blockstore, nil))
		if _, err := ingest.Import(context.Background(), dag, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := s.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA256 is the import's baseline: hashing the same bytes in
// memory.
func BenchmarkSHA256(b *testing.B) {
	data := testutil.Bytes("import-bench", importBenchSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sha256.Sum256(data)
	}
}

// BenchmarkLeafLookup asks the store whether it holds a flushed 1 MiB
// leaf, as the bitswap server does for each want-have and readahead for
// each leaf: "has" is that lookup, and "get", reading the leaf, its
// baseline. Before Has and GetSize came from the index they read the
// value as well, without copying it: 20.7 µs against get's 101 µs.
// "readat-64KiB" is a warm range's read of 64 KiB of a leaf in place.
func BenchmarkLeafLookup(b *testing.B) {
	ctx := context.Background()
	s := tempStore(b)
	var leaves []blocks.Block
	for i := range 64 {
		leaves = append(leaves, blocks.NewBlock(testutil.Bytes(fmt.Sprint("leaf", i), 1<<20)))
	}
	if err := s.Blockstore.PutMany(ctx, leaves); err != nil {
		b.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("has", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if ok, err := s.Blockstore.Has(ctx, leaves[i%len(leaves)].Cid()); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Blockstore.Get(ctx, leaves[i%len(leaves)].Cid()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// What a warm 64 KiB range costs now: its bytes read in place.
	b.Run("readat-64KiB", func(b *testing.B) {
		b.ReportAllocs()
		p := make([]byte, 64<<10)
		i := 0
		for b.Loop() {
			if n, err := s.ReadAt(ctx, leaves[i%len(leaves)].Cid(), p, 300_000); n != len(p) || err != nil {
				b.Fatal(n, err)
			}
			i++
		}
	})
}
