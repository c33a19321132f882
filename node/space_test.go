package node

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/ingest"
	"go.uber.org/zap"
)

// fakeDisk is a filesystem of 4 GiB whose free space the test sets.
type fakeDisk struct{ free atomic.Int64 }

func (d *fakeDisk) stat(string) (int64, int64, error) { return d.free.Load(), 4 << 30, nil }

// onFakeDisk starts a node as cfg says, in a fresh data directory, whose
// store sees a 4 GiB disk with 2 GiB free until the test says otherwise.
func onFakeDisk(t *testing.T, cfg Config) (*Node, *fakeDisk) {
	t.Helper()
	cfg.DataDir, cfg.Logger = t.TempDir(), zap.NewNop()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	disk := &fakeDisk{}
	disk.free.Store(2 << 30)
	n.store.space.fake(disk.stat)
	return n, disk
}

// fake makes d read its free space from stat, as newDiskSpace would have.
func (d *diskSpace) fake(stat func(string) (int64, int64, error)) {
	fresh := newDiskSpace("fake", stat)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dir, d.stat, d.reserve, d.checked = fresh.dir, fresh.stat, fresh.reserve, time.Time{}
}

// TestFullDisk: with less free disk than the store keeps back, an import
// fails at once with ErrNoSpace and stores nothing; a fetched block is
// served (Keep succeeds) without being kept; what the store holds is still
// read; and once there is room again, writes go on.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	n, disk := onFakeDisk(t, Config{})
	if n.store.space.reserve != maxReserve {
		t.Fatalf("the reserve on a 4 GiB disk is %d, want %d", n.store.space.reserve, maxReserve)
	}
	held := blocks.NewBlock(bytes.Repeat([]byte("held"), 1<<18))
	if err := n.Blockstore().Put(ctx, held); err != nil {
		t.Fatal(err)
	}

	disk.free.Store(maxReserve + 512<<10) // room for half a MiB
	time.Sleep(2 * spaceCheckEvery)       // what others write is seen at the next check
	_, err := ingest.Import(ctx, n.DAG(), bytes.NewReader(bytes.Repeat([]byte("big"), 4<<20)))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("an import onto a full disk: %v, want ErrNoSpace", err)
	}
	fetched := blocks.NewBlock(bytes.Repeat([]byte("fetched"), 1<<17))
	if err := n.Keep(ctx, fetched); err != nil {
		t.Errorf("keeping a fetched block on a full disk: %v, want it served without being kept", err)
	}
	if ok, _ := n.Blockstore().Has(ctx, fetched.Cid()); ok {
		t.Error("a fetched block was stored on a full disk")
	}
	if got, err := n.Blockstore().Get(ctx, held.Cid()); err != nil || !bytes.Equal(got.RawData(), held.RawData()) {
		t.Errorf("a held block on a full disk: %v", err)
	}

	disk.free.Store(2 << 30)
	time.Sleep(2 * spaceCheckEvery)
	if err := n.Keep(ctx, fetched); err != nil {
		t.Fatal(err)
	}
	if ok, _ := n.Blockstore().Has(ctx, fetched.Cid()); !ok {
		t.Error("with room again, a fetched block is not kept")
	}
}

// TestLowDiskOverridesGrace: fetched blocks within their grace may take the
// cache past its limit while the disk has room; once the disk runs low the
// least recently used go at once, whatever their age.
func TestLowDiskOverridesGrace(t *testing.T) {
	ctx := context.Background()
	const limit = 4 << 20
	n, disk := onFakeDisk(t, Config{CacheSize: limit, CacheGrace: time.Hour})
	keep := func(i int) {
		t.Helper()
		if err := n.Keep(ctx, blocks.NewBlock(bytes.Repeat([]byte{byte(i)}, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		keep(i)
	}
	time.Sleep(100 * time.Millisecond)
	if bytes, _ := n.cache.stats(); bytes != 6<<20 {
		t.Fatalf("with room on disk, the cache holds %d bytes of fresh blocks, want all 6 MiB", bytes)
	}

	disk.free.Store(2*maxReserve - 1)
	time.Sleep(2 * spaceCheckEvery)
	keep(6)
	deadline := time.Now().Add(5 * time.Second)
	for {
		bytes, evictions := n.cache.stats()
		if bytes <= limit {
			t.Logf("disk low: %d evictions, %d bytes cached", evictions, bytes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the disk low, the cache still holds %d bytes, limit %d", bytes, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
