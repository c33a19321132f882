package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"go.uber.org/zap"
)

// TestResumePinCutShort: a store holds a pin a crash cut short (marked
// incomplete, its blocks not fetched). ls shows it incomplete; a node
// started on the store fetches the rest from a peer and marks it done,
// every block kept for good.
func TestResumePinCutShort(t *testing.T) {
	ctx := context.Background()
	loopback := []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}
	seeder, err := New(ctx, Config{DataDir: t.TempDir(), ListenAddrs: loopback, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seeder.Close() })
	data := bytes.Repeat([]byte("resume a pin cut short "), 200_000) // 4.4 MiB
	root, err := ingest.Import(ctx, seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash mid-walk leaves: the pin recorded, marked incomplete.
	if err := s.ds.Put(ctx, pinKey(root), incompleteMark); err != nil {
		t.Fatal(err)
	}
	if pins, err := s.Pins(ctx); err != nil || !slices.Equal(pins, []Pinned{{Root: root, Incomplete: true}}) {
		t.Fatalf("pins after the crash: %v, %v; want it incomplete", pins, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	gw, err := New(ctx, Config{DataDir: dir, ListenAddrs: loopback, Logger: zap.NewNop(), Peers: []peer.AddrInfo{seeder.AddrInfo()}, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pins, err := gw.Pins(ctx)
		if err == nil && slices.Equal(pins, []Pinned{{Root: root}}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pin was not resumed within 20 s: %v, %v", pins, err)
		}
	}
	var got bytes.Buffer
	if _, err := dag.ExportCAR(ctx, blockservice.New(gw.Blockstore(), nil), root, &got); err != nil {
		t.Fatalf("the resumed pin is not all held: %v", err)
	}
	if st, err := gw.Stats(ctx); err != nil || st.CacheBytes != 0 {
		t.Errorf("the resumed pin's blocks are cached (%d bytes, %v), not kept for good", st.CacheBytes, err)
	}
}
