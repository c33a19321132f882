package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// memFile imports data into a new in-memory blockstore.
func memFile(t *testing.T, data []byte, opts ...ingest.Option) (blockstore.Blockstore, cid.Cid) {
	t.Helper()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	root, err := ingest.Import(context.Background(), merkledag.NewDAGService(blockservice.New(bs, nil)), bytes.NewReader(data), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return bs, root
}

// distantPeers answers every block after a fixed delay, however many are
// asked at once: far-away peers with bandwidth to spare, where throughput
// grows with the leaves in flight.
type distantPeers struct {
	bs    blockstore.Blockstore
	delay time.Duration
}

func (p distantPeers) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.bs.Get(ctx, c)
}

// TestWindowAdaptsToDistantPeers starts streams with a window of 4 leaves
// from peers 20 ms away: the window grows because throughput follows it,
// up to and never past max_window, and every byte is right.
func TestWindowAdaptsToDistantPeers(t *testing.T) {
	data := testutil.Bytes("adapt", 12<<20)
	bs, root := memFile(t, data, ingest.WithChunkSize(16<<10))
	obs := &countingObserver{}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter {
		return distantPeers{bs, 20 * time.Millisecond}
	}, gateway.Config{Window: 4, MaxWindow: 32, Readahead: -1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, h) + "/ipfs/" + root.String()
	resp, body := do(t, "GET", url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("status %d, equal=%v", resp.StatusCode, bytes.Equal(body, data))
	}
	peak := obs.maxInFlight.Load()
	t.Logf("peak leaves in flight: %d (window 4, max_window 32)", peak)
	if peak <= 8 {
		t.Errorf("peak in flight %d: the window did not grow from 4 with distant peers", peak)
	}
	if peak > 32 {
		t.Errorf("peak in flight %d, above max_window 32", peak)
	}
}

// TestLeafBudget: 8 streams at once under a budget of 6 leaves in flight
// over all of them never exceed it, all arrive byte-exact, and streams
// abandoned by their clients give their leaves back: requests after them
// are served.
func TestLeafBudget(t *testing.T) {
	data := testutil.Bytes("budget", 4<<20)
	bs, root := memFile(t, data, ingest.WithChunkSize(64<<10))
	obs := &countingObserver{}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter {
		return distantPeers{bs, 5 * time.Millisecond}
	}, gateway.Config{Window: 4, MaxWindow: 8, MaxLeavesInFlight: 6, Readahead: -1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, h) + "/ipfs/" + root.String()

	// Abandoned streams first: each reads a little and hangs up.
	for range 4 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			client := http.Client{Timeout: 30 * time.Second}
			resp, err := client.Get(url)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errs <- err
			case !bytes.Equal(body, data):
				errs <- fmt.Errorf("%d bytes that differ from the source", len(body))
			default:
				errs <- nil
			}
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if peak := obs.maxInFlight.Load(); peak > 6 {
		t.Errorf("peak leaves in flight over all streams %d, budget 6", peak)
	}
}
