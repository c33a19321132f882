package stream_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/stream"
)

// stuckSource serves a file's index nodes and never delivers a leaf: it
// counts the leaf fetches under way.
type stuckSource struct {
	bs     blockstore.Blockstore
	active atomic.Int64
}

func (s *stuckSource) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if c.Prefix().Codec != cid.Raw {
		return s.bs.Get(ctx, c)
	}
	s.active.Add(1)
	defer s.active.Add(-1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestReadaheadCloseStopsItsJobs: a readahead job waiting on a source that
// does not answer ends when its Readahead closes, and Close waits for it;
// a Start after Close starts nothing.
func TestReadaheadCloseStopsItsJobs(t *testing.T) {
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	data := bytes.Repeat([]byte("readahead"), 1<<20)
	root, err := ingest.Import(ctx, merkledag.NewDAGService(blockservice.New(bs, nil)), bytes.NewReader(data), ingest.WithChunkSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	src := &stuckSource{bs: bs}
	empty := hedge.LocalBlockstore(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())))
	h, err := hedge.New(hedge.Config{Local: empty, Sources: []hedge.Source{
		hedge.NewSessions(hedge.Rung{Name: "peers"}, func(context.Context) hedge.Getter { return src }, 4, time.Minute),
	}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	ra := stream.NewReadahead(idx, 4, time.Hour)
	req, err := h.Open(hedge.Target{Root: root}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Release()
	ra.Start(req, root, 0, int64(len(data)))
	deadline := time.Now().Add(5 * time.Second)
	for src.active.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("readahead fetched nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { ra.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: its jobs go on")
	}
	// The fetches the jobs started end with them, once the hedge sees
	// their waiters gone.
	deadline = time.Now().Add(2 * time.Second)
	for src.active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d leaf fetches still under way 2 s after Close", src.active.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ra.Start(req, root, 0, int64(len(data)))
	time.Sleep(50 * time.Millisecond)
	if n := src.active.Load(); n != 0 {
		t.Errorf("a Start after Close fetched %d leaves", n)
	}
}
