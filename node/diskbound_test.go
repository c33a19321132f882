package node_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/node"
)

// dirBytes returns the bytes of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCacheBoundsTheDisk fetches 768 MiB through a 16 MiB cache with the
// default grace, reading the first block of each of the last eight 32 MiB batches again
// and again, as
// a crowd re-reads a file's first leaf: what pebble keeps on disk stays
// within twice the limit plus a memtable's worth of garbage. Before, grace
// kept every block of the last minute, and each batch's one live block kept
// its whole blob file for an hour: the disk grew without bound.
func TestCacheBoundsTheDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches 768 MiB")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const limit = 16 << 20
	n, err := node.New(ctx, node.Config{DataDir: dir, CacheSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var hot []blocks.Block
	var peak int64
	for i := range 24 {
		batch := newBlocks(fmt.Sprint("batch", i), 32, 1<<20)
		for j, blk := range batch {
			if err := n.Keep(ctx, blk); err != nil {
				t.Fatal(err)
			}
			if j == 0 {
				hot = append(hot, blk)
			}
			if j%4 == 0 {
				for _, blk := range hot[max(0, len(hot)-8):] {
					if _, err := n.Blockstore().Get(ctx, blk.Cid()); err != nil {
						t.Fatalf("hot block %s was evicted: %v", blk.Cid(), err)
					}
				}
			}
		}
		time.Sleep(500 * time.Millisecond) // blob files age
		peak = max(peak, dirBytes(t, dir))
	}
	st, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("768 MiB fetched through a %d MiB cache: %d MiB cached, disk peaked at %d MiB, %d evictions",
		limit>>20, st.CacheBytes>>20, peak>>20, st.Evictions)
	if bound := int64(2*limit + 64<<20); peak > bound {
		t.Errorf("disk peaked at %d MiB, more than twice the cache's %d MiB and a memtable (%d MiB)",
			peak>>20, limit>>20, bound>>20)
	}
}
