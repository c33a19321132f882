package node_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// fetchAll fetches the file root from n's peers, 16 leaves at a time, and
// returns how long that took; the bytes must equal data.
func fetchAll(n *node.Node, root cid.Cid, data []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ix, err := dag.NewIndex(16)
	if err != nil {
		return 0, err
	}
	session := n.NewSession(ctx)
	start := time.Now()
	got := make([]byte, len(data))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for leaf, err := range ix.Leaves(ctx, session, root, 0, int64(len(data))) {
		if err != nil {
			return 0, err
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// A failed fetch leaves zeros, which the comparison catches.
			if blk, err := session.GetBlock(ctx, leaf.Cid); err == nil {
				copy(got[leaf.Offset:], blk.RawData())
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if !bytes.Equal(got, data) {
		return took, errors.New("fetched bytes differ from the source")
	}
	return took, nil
}

// checkRate fails unless bytes over took is within 10 % of limit.
func checkRate(t *testing.T, what string, bytes int, took time.Duration, limit int64) {
	t.Helper()
	rate := float64(bytes) / took.Seconds()
	t.Logf("%s: %.2f MiB/s against a cap of %.2f MiB/s (%.0f%%)", what, rate/(1<<20), float64(limit)/(1<<20), 100*rate/float64(limit))
	if rate > 1.1*float64(limit) || rate < 0.9*float64(limit) {
		t.Errorf("%s: %.0f B/s, want within 10%% of %d", what, rate, limit)
	}
}

// TestUploadLimitTotal: a leecher fetching from a seeder capped at 4 MiB/s
// observes 4 MiB/s, ±10 %.
func TestUploadLimitTotal(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4 s of rate-limited transfer")
	}
	const limit = 4 << 20
	data := testutil.Bytes("upload-total", 16<<20)
	seeder := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{Total: limit}})
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leecher := testutil.NewNode(t, seeder.AddrInfo())
	took, err := fetchAll(leecher, root, data)
	if err != nil {
		t.Fatal(err)
	}
	checkRate(t, "one leecher", len(data), took, limit)
}

// TestUploadLimitPerPeer: two leechers fetching at once from a seeder
// capped at 2 MiB/s per peer each observe 2 MiB/s, ±10 %.
func TestUploadLimitPerPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4 s of rate-limited transfer")
	}
	const limit = 2 << 20
	data := testutil.Bytes("upload-peer", 8<<20)
	seeder := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{PerPeer: limit}})
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		leecher := testutil.NewNode(t, seeder.AddrInfo())
		wg.Go(func() {
			took, err := fetchAll(leecher, root, data)
			if err != nil {
				t.Error(err)
				return
			}
			checkRate(t, "leecher "+string(rune('A'+i)), len(data), took, limit)
		})
	}
	wg.Wait()
}

// TestUploadLimitPerAddress: two leechers with peer IDs of their own at one
// address (loopback), fetching at once from a seeder capped at 2 MiB/s per
// address, share 2 MiB/s between them, ±10 %: a new peer ID buys no more
// bandwidth.
func TestUploadLimitPerAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4 s of rate-limited transfer")
	}
	const limit = 2 << 20
	data := testutil.Bytes("upload-address", 4<<20)
	seeder := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{PerAddress: limit}})
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range 2 {
		leecher := testutil.NewNode(t, seeder.AddrInfo())
		wg.Go(func() {
			if _, err := fetchAll(leecher, root, data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	checkRate(t, "two peer IDs at one address", 2*len(data), time.Since(start), limit)
}

// TestSeededCountsWhatCrossed: what a capped seeder reports seeded is
// what it has written, at its cap, not what bitswap has queued for it
// (the figure ran seconds ahead of the bytes, issue 22).
func TestSeededCountsWhatCrossed(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4 s of rate-limited transfer")
	}
	const limit = 2 << 20
	data := testutil.Bytes("seeded", 8<<20)
	seeder := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{Total: limit}})
	root, err := ingest.Import(context.Background(), seeder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leecher := testutil.NewNode(t, seeder.AddrInfo())
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := fetchAll(leecher, root, data); done <- err }()
	time.Sleep(time.Second)
	st, err := seeder.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// At 2 MiB/s, with the limiter's burst of a tenth of a second.
	if most := uint64(float64(limit)*time.Since(start).Seconds()) + 512<<10; st.BytesSeeded > most {
		t.Errorf("%.1f s into a fetch capped at 2 MiB/s the seeder says it seeded %.1f MiB", time.Since(start).Seconds(), float64(st.BytesSeeded)/(1<<20))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err = seeder.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesSeeded < uint64(len(data)) {
		t.Errorf("after the fetch the seeder says it seeded %d bytes of %d", st.BytesSeeded, len(data))
	}
}
