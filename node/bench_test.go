package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/pacman-cdn/pacman/chunker"
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
		if _, err := chunker.Import(context.Background(), dag, bytes.NewReader(data)); err != nil {
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
