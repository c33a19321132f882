package node_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/node"
)

// BenchmarkUnpin unpins a 4 MiB file from a store that also pins 64
// files of 64 MiB (4096 leaves of 1 MiB, each a repeated pattern, cheap to
// build): what it measures is the unpin's walk of the other pins, its
// time and memory.
func BenchmarkUnpin(b *testing.B) {
	ctx := context.Background()
	s, err := node.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	dag := merkledag.NewDAGService(blockservice.New(s.Blockstore, nil))
	for i := range 64 {
		// 64 MiB of 1 MiB leaves, all distinct: each leaf is one byte
		// pattern, cheap to hash and small to store as it compresses.
		var buf bytes.Buffer
		for j := range 64 {
			buf.Write(bytes.Repeat([]byte(fmt.Sprintf("%04d-%04d ", i, j)), 1<<20/10+1)[:1<<20])
		}
		root, err := ingest.Import(ctx, dag, &buf)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.PinHeld(ctx, root); err != nil {
			b.Fatal(err)
		}
	}
	one, err := ingest.Import(ctx, dag, bytes.NewReader(bytes.Repeat([]byte("unpinned "), 4<<20/9)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := s.PinHeld(ctx, one); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Unpin(ctx, one); err != nil {
			b.Fatal(err)
		}
	}
}
