package dag_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestWalk walks a file whose 20 leaves are 2 distinct ones repeated: each
// block is visited once, never more than parallel at a time, and a visit's
// error stops the walk and is returned.
func TestWalk(t *testing.T) {
	ctx := context.Background()
	_, bserv, ds := testutil.MemStore()
	a := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	b := bytes.Repeat([]byte("fedcba9876543210"), 16<<10)
	data := bytes.Repeat(append(a, b...), 10)
	root, err := ingest.Import(ctx, ds, bytes.NewReader(data), ingest.WithChunkSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		visits    = map[cid.Cid]int{}
		now, most atomic.Int64
	)
	visit := func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
		if n := now.Add(1); n > most.Load() {
			most.Store(n)
		}
		defer now.Add(-1)
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		visits[c]++
		mu.Unlock()
		blk, err := bserv.GetBlock(ctx, c)
		if err != nil {
			return nil, err
		}
		return dag.Links(blk)
	}
	if err := dag.Walk(ctx, root, 3, visit); err != nil {
		t.Fatal(err)
	}
	blk, _ := bserv.GetBlock(ctx, root)
	links, _ := dag.Links(blk)
	distinct := map[cid.Cid]bool{}
	for _, l := range links {
		distinct[l] = true
	}
	if len(links) != 20 || len(distinct) != 2 {
		t.Fatalf("the file has %d leaves, %d distinct; want 20 and 2", len(links), len(distinct))
	}
	if len(visits) != len(distinct)+1 {
		t.Errorf("%d blocks visited, want the root and %d distinct leaves", len(visits), len(distinct))
	}
	for c, n := range visits {
		if n != 1 {
			t.Errorf("block %s visited %d times", c, n)
		}
	}
	if m := most.Load(); m > 3 {
		t.Errorf("%d visits at once, parallel is 3", m)
	}

	boom := errors.New("boom")
	var after atomic.Int64
	err = dag.Walk(ctx, root, 3, func(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
		if c != root {
			after.Add(1)
			return nil, boom
		}
		return visit(ctx, c)
	})
	if !errors.Is(err, boom) {
		t.Errorf("walk returned %v, want the visit's error", err)
	}
	if n := after.Load(); n > 3 {
		t.Errorf("%d leaves visited after the first error, want at most the 3 under way", n)
	}
}
