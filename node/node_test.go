package node_test

import (
	"context"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
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
