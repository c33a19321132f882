package hedge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
)

// TestFlightsKeepTheNetworkApart: a want that may use the open network
// never waits on a fetch kept off it, which may fail where its own would
// not; a want kept off the network shares a fetch that may go there.
// Before, both shared whichever fetch came first.
func TestFlightsKeepTheNetworkApart(t *testing.T) {
	blk := blocks.NewBlock([]byte("a leaf"))
	for _, c := range []struct {
		name          string
		first, second bool // whether each may use the network
		wantFetches   int32
	}{
		{"off the network first", false, true, 2},
		{"on the network first", true, false, 1},
		{"both on", true, true, 1},
		{"both off", false, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := NewFlights()
			var fetches atomic.Int32
			release := make(chan struct{})
			fetch := func(ctx context.Context) (blocks.Block, error) {
				fetches.Add(1)
				select {
				case <-release:
					return blk, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			done := make(chan error, 2)
			for _, network := range []bool{c.first, c.second} {
				go func() {
					_, err := f.do(context.Background(), flightKey{blk.Cid(), false, network}, fetch)
					done <- err
				}()
				for deadline := time.Now().Add(5 * time.Second); fetches.Load() == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the first fetch never started")
					}
				}
			}
			time.Sleep(50 * time.Millisecond) // the second has joined, or started its own
			close(release)
			for range 2 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if n := fetches.Load(); n != c.wantFetches {
				t.Errorf("%d fetches, want %d", n, c.wantFetches)
			}
		})
	}
}
