package stream

import (
	"bytes"
	"context"
	"io"
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
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
)

// storeGetter serves blocks from a blockstore and counts the leaves asked.
type storeGetter struct {
	bs     blockstore.Blockstore
	leaves atomic.Int64
}

func (g *storeGetter) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return g.bs.Get(ctx, c)
}

func (g *storeGetter) Get(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	g.leaves.Add(1)
	return g.bs.Get(ctx, w.Cid)
}

// ReadAt holds nothing: every leaf is fetched through Get.
func (g *storeGetter) ReadAt(_ context.Context, w hedge.Want, _ []byte, _ int64) (int, error) {
	return 0, ipld.ErrNotFound{Cid: w.Cid}
}

// heldGetter is an edge that holds every block: leaves are read in place,
// and counted if they are fetched whole instead.
type heldGetter struct {
	storeGetter
	local hedge.Local
	reads atomic.Int64 // bytes read in place
}

func (g *heldGetter) ReadAt(ctx context.Context, w hedge.Want, p []byte, off int64) (int, error) {
	if len(p) == 0 { // held, and as long as its parent says
		size, err := g.local.Size(ctx, w.Cid)
		if err == nil && w.Size > 0 && int64(size) != w.Size {
			err = dag.ErrMalformed
		}
		return 0, err
	}
	n, err := g.local.ReadAt(ctx, w.Cid, p, off)
	if w.Reason != hedge.ForIndex { // the zero value is ForViewer
		g.reads.Add(int64(n))
	}
	return n, err
}

type nopObserver struct{}

func (nopObserver) Stalled()           {}
func (nopObserver) LeavesInFlight(int) {}

// budgetBed imports data into a store and returns it with the file's root
// and a streamer of a 6-leaf window on a budget of 8 leaves.
func budgetBed(t *testing.T, data []byte, opts ...ingest.Option) (blockstore.Blockstore, cid.Cid, *RangeStreamer, chan struct{}) {
	t.Helper()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	root, err := ingest.Import(context.Background(), merkledag.NewDAGService(blockservice.New(bs, nil)), bytes.NewReader(data), opts...)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	budget := make(chan struct{}, 8)
	s := &RangeStreamer{Index: idx, Window: 6, MaxWindow: 6, StallTimeout: 5 * time.Second, Observer: nopObserver{}, Budget: budget, BudgetWait: time.Second}
	return bs, root, s, budget
}

// stuckWriter takes its first write only after release is closed.
type stuckWriter struct {
	bytes.Buffer
	release chan struct{}
	writes  int
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes == 1 {
		<-w.release
	}
	return w.Buffer.Write(p)
}

// TestStuckClientGivesBudgetBack: while a client does not take a write,
// the leaves fetched ahead of it give their budget tokens back, so other
// streams can start; when it takes the write again, those leaves are
// fetched again and the bytes are exactly the file's. Every token is back
// when the stream ends.
func TestStuckClientGivesBudgetBack(t *testing.T) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	bs, root, s, budget := budgetBed(t, data, ingest.WithChunkSize(256<<10))
	g := &storeGetter{bs: bs}
	w := &stuckWriter{release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- s.Stream(context.Background(), g, root, []Span{{0, int64(len(data))}}, nil, func(int) (io.Writer, error) { return w, nil })
	}()
	// The stream fetches its window, then sticks on its first write.
	deadline := time.Now().Add(2 * time.Second)
	for g.leaves.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * slowWrite)
	if held := len(budget); held != 0 {
		t.Errorf("a stream stuck on its client holds %d budget tokens, want 0", held)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("%d bytes written, equal %v", w.Len(), bytes.Equal(w.Bytes(), data))
	}
	if n := g.leaves.Load(); n <= 16 {
		t.Errorf("%d leaves fetched for 16: the ones given back were not fetched again", n)
	}
	if held := len(budget); held != 0 {
		t.Errorf("%d budget tokens still held after the stream ended", held)
	}
}

// TestHeldLeavesAreReadInPlace: a range of a file the edge holds is
// written from the store a piece at a time: no leaf is fetched whole,
// exactly the range's bytes are read, no budget token is held while the
// client is stuck, and the bytes are the file's.
func TestHeldLeavesAreReadInPlace(t *testing.T) {
	data := make([]byte, 4<<20+77)
	for i := range data {
		data[i] = byte(i * 5 / 3)
	}
	bs, root, s, budget := budgetBed(t, data)
	g := &heldGetter{storeGetter: storeGetter{bs: bs}, local: hedge.LocalBlockstore(bs)}
	w := &stuckWriter{release: make(chan struct{})}
	const lo, hi = 300_000, 3<<20 + 12345
	done := make(chan error, 1)
	go func() {
		done <- s.Stream(context.Background(), g, root, []Span{{lo, hi}}, nil, func(int) (io.Writer, error) { return w, nil })
	}()
	time.Sleep(2 * slowWrite)
	if held := len(budget); held != 0 {
		t.Errorf("a stream of held leaves stuck on its client holds %d budget tokens, want 0", held)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), data[lo:hi]) {
		t.Fatalf("%d bytes written, equal %v", w.Len(), bytes.Equal(w.Bytes(), data[lo:hi]))
	}
	if n := g.leaves.Load(); n != 0 {
		t.Errorf("%d held leaves fetched whole", n)
	}
	if n := g.reads.Load(); n != hi-lo {
		t.Errorf("%d bytes read in place for a range of %d", n, hi-lo)
	}
	if w.writes < (hi-lo)/pieceSize {
		t.Errorf("%d writes for %d bytes: the leaves were not written a piece at a time", w.writes, hi-lo)
	}
}

// slowGetter fetches each leaf after delay.
type slowGetter struct {
	storeGetter
	delay time.Duration
}

func (g *slowGetter) Get(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	time.Sleep(g.delay)
	return g.storeGetter.Get(ctx, w)
}

// TestStartedResponseIsNotCutForBudget: once a response is under way, a
// leaf waiting for a budget token waits as for a late leaf, not BudgetWait:
// with one token and leaves slower than BudgetWait, every leaf after the
// first waited past it, and the old code cut the response after the first.
func TestStartedResponseIsNotCutForBudget(t *testing.T) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 11 / 7)
	}
	bs, root, s, _ := budgetBed(t, data, ingest.WithChunkSize(256<<10))
	s.Budget, s.BudgetWait = make(chan struct{}, 1), 20*time.Millisecond
	g := &slowGetter{storeGetter: storeGetter{bs: bs}, delay: 80 * time.Millisecond}
	var out bytes.Buffer
	err := s.Stream(context.Background(), g, root, []Span{{0, int64(len(data))}}, nil, func(int) (io.Writer, error) { return &out, nil })
	if err != nil {
		t.Fatalf("a response under way was cut: %v after %d of %d bytes", err, out.Len(), len(data))
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("%d bytes written, equal %v", out.Len(), bytes.Equal(out.Bytes(), data))
	}
}
