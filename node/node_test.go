package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestRestartKeepsIdentityAndBlocks: the peer ID and the stored blocks
// survive a restart on the same data directory.
func TestRestartKeepsIdentityAndBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := node.New(ctx, node.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id := n.Host().ID()
	blk := blocks.NewBlock([]byte("kept across restarts"))
	if err := n.Blockstore().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n, err = node.New(ctx, node.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Host().ID() != id {
		t.Errorf("peer ID changed from %s to %s", id, n.Host().ID())
	}
	got, err := n.Blockstore().Get(ctx, blk.Cid())
	if err != nil || string(got.RawData()) != "kept across restarts" {
		t.Errorf("block after restart: %v, %q", err, got)
	}
}

// TestStoreHasOneUser: a second opener of a data directory in use gets an
// error that says why, instead of a corrupted store.
func TestStoreHasOneUser(t *testing.T) {
	dir := t.TempDir()
	s, err := node.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = node.OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "another pacman") {
		t.Errorf("second open: %v, want an error naming the cause", err)
	}
	if _, err := node.OpenStore(""); err == nil {
		t.Error("opened a store without a directory")
	}
}

// tempStore opens a store in a temporary directory, closed when tb ends.
func tempStore(tb testing.TB) *node.Store {
	tb.Helper()
	s, err := node.OpenStore(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStoreHasAndSize: Has and GetSize, which the store answers from its
// index without reading values, are right for blocks in the memtable and
// in flushed files, kept apart in blob files (1 MiB) or inline (small),
// and for blocks that are not there. What they save is measured by
// BenchmarkLeafLookup.
func TestStoreHasAndSize(t *testing.T) {
	ctx := context.Background()
	s := tempStore(t)
	small := blocks.NewBlock([]byte("small"))
	leaf := blocks.NewBlock(testutil.Bytes("leaf", 1<<20))
	absent := blocks.NewBlock([]byte("absent"))
	check := func(when string) {
		t.Helper()
		for _, b := range []blocks.Block{small, leaf} {
			if ok, err := s.Blockstore.Has(ctx, b.Cid()); !ok || err != nil {
				t.Errorf("%s: Has(%d-byte block) = %v, %v", when, len(b.RawData()), ok, err)
			}
			if n, err := s.Blockstore.GetSize(ctx, b.Cid()); n != len(b.RawData()) || err != nil {
				t.Errorf("%s: GetSize = %d, %v, want %d", when, n, err, len(b.RawData()))
			}
		}
		if ok, err := s.Blockstore.Has(ctx, absent.Cid()); ok || err != nil {
			t.Errorf("%s: Has(absent) = %v, %v", when, ok, err)
		}
		if _, err := s.Blockstore.GetSize(ctx, absent.Cid()); !ipld.IsNotFound(err) {
			t.Errorf("%s: GetSize(absent) error %v, want not found", when, err)
		}
	}
	if err := s.Blockstore.PutMany(ctx, []blocks.Block{small, leaf}); err != nil {
		t.Fatal(err)
	}
	check("in the memtable")
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed")
}

// TestVerifyFindsCorruptBlocks writes a block under a CID its bytes do not
// match, as a torn write or a bad disk would, and checks Verify finds and
// repairs it.
func TestVerifyFindsCorruptBlocks(t *testing.T) {
	ctx := context.Background()
	s := tempStore(t)
	good := blocks.NewBlock([]byte("good"))
	bad, err := blocks.NewBlockWithCid([]byte("tampered"), blocks.NewBlock([]byte("original")).Cid())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Blockstore.PutMany(ctx, []blocks.Block{good, bad}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 2 || len(rep.Bad) != 1 || !bytes.Equal(rep.Bad[0].Hash(), bad.Cid().Hash()) {
		t.Fatalf("report %+v, want 2 checked and the tampered block bad", rep)
	}
	if _, err := s.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s.Verify(ctx, false); rep.Checked != 1 || len(rep.Bad) != 0 {
		t.Errorf("after repair: %+v, want 1 good block", rep)
	}
}

// TestConnectionLimit opens more connections than the node allows: the
// extra ones are refused and the node stays within its limit.
func TestConnectionLimit(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{
		DataDir:     t.TempDir(),
		ListenAddrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")},
		Limits:      node.Limits{ConnsInbound: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	refused := 0
	for range 5 {
		c, err := node.New(ctx, node.Config{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Host().Connect(ctx, n.AddrInfo()); err != nil {
			refused++
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(n.Host().Network().Conns()); got > 2 {
		t.Errorf("%d inbound connections held, limit 2", got)
	}
	if refused < 3 {
		t.Errorf("%d of 5 dials refused, want at least 3", refused)
	}
}

// The hedge reads where a session's block came from through hedge.Labelled.
var _ hedge.Labelled = node.SourcedBlock{}
