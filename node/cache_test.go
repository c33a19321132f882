package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// newBlocks returns n distinct blocks of size bytes.
func newBlocks(seed string, n, size int) []blocks.Block {
	out := make([]blocks.Block, n)
	for i := range out {
		out[i] = blocks.NewBlock(testutil.Bytes(fmt.Sprintf("%s-%d", seed, i), size))
	}
	return out
}

func has(t *testing.T, n *node.Node, blk blocks.Block) bool {
	t.Helper()
	ok, err := n.Blockstore().Has(context.Background(), blk.Cid())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// waitCache waits until the fetched bytes held are at most limit.
func waitCache(t *testing.T, n *node.Node, limit int64) node.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := n.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.CacheBytes <= limit {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache holds %d bytes, limit %d", st.CacheBytes, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCacheEvictsLeastRecentlyUsed keeps 24 fetched blocks of 256 KiB in a
// 2 MiB cache: the least recently used go, a block read lately stays,
// imported blocks (5 MiB, more than the limit on their own) all stay, and
// the bookkeeping survives a restart.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const limit = 2 << 20
	cfg := node.Config{DataDir: dir, CacheSize: limit, CacheGrace: 50 * time.Millisecond}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	imported := newBlocks("imported", 20, 256<<10)
	for _, blk := range imported {
		if err := n.Blockstore().Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	fetched := newBlocks("fetched", 24, 256<<10)
	for i, blk := range fetched {
		if err := n.Keep(ctx, blk); err != nil {
			t.Fatal(err)
		}
		if i >= 1 {
			// Block 0 is read after every later store: the most
			// recently used, it must survive.
			if _, err := n.Blockstore().Get(ctx, fetched[0].Cid()); err != nil {
				t.Fatalf("block 0 evicted while in use: %v", err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond) // past the grace of the last ones
	st := waitCache(t, n, limit)
	if st.Evictions < 16 {
		t.Errorf("%d evictions, want at least 16", st.Evictions)
	}
	if !has(t, n, fetched[0]) {
		t.Error("the most recently read block was evicted")
	}
	if has(t, n, fetched[1]) || has(t, n, fetched[2]) {
		t.Error("the least recently used blocks were kept")
	}
	if !has(t, n, fetched[23]) {
		t.Error("the newest block was evicted")
	}
	for i, blk := range imported {
		if !has(t, n, blk) {
			t.Fatalf("imported block %d was evicted", i)
		}
	}

	// Importing a cached block makes it permanent.
	if err := n.Blockstore().Put(ctx, fetched[23]); err != nil {
		t.Fatal(err)
	}
	before := st.CacheBytes
	if st, _ = n.Stats(ctx); st.CacheBytes != before-256<<10 {
		t.Errorf("after importing a cached block the cache holds %d bytes, want %d", st.CacheBytes, before-256<<10)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the cache knows what it held; a lower limit evicts
	// down to it, still never an imported block.
	cfg.CacheSize = 512 << 10
	n, err = node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitCache(t, n, 512<<10)
	for i, blk := range imported {
		if !has(t, n, blk) {
			t.Fatalf("imported block %d was evicted after restart", i)
		}
	}
	if !has(t, n, fetched[23]) {
		t.Error("a block imported after it was cached was evicted")
	}
}

// TestCacheGraceKeepsFreshBlocks: blocks stored within the grace period
// are not evicted up to twice the limit; past that the least recently used
// go even within it; once it passes, the cache goes down to its limit.
func TestCacheGraceKeepsFreshBlocks(t *testing.T) {
	ctx := context.Background()
	const limit = 1 << 20
	n, err := node.New(ctx, node.Config{DataDir: t.TempDir(), CacheSize: limit, CacheGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	fetched := newBlocks("fresh", 9, 256<<10)
	for _, blk := range fetched[:8] {
		if err := n.Keep(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for i, blk := range fetched[:8] {
		if !has(t, n, blk) {
			t.Fatalf("block %d evicted within its grace period, with the cache at twice its limit", i)
		}
	}
	if err := n.Keep(ctx, fetched[8]); err != nil {
		t.Fatal(err)
	}
	waitCache(t, n, 2*limit)
	if has(t, n, fetched[0]) || !has(t, n, fetched[1]) || !has(t, n, fetched[8]) {
		t.Error("past twice the limit, not just the least recently used block went")
	}
	st := waitCache(t, n, limit)
	if st.Evictions != 5 {
		t.Errorf("%d evictions after the grace period, want 5", st.Evictions)
	}
}
