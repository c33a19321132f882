package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// sharedDAG stores a directory depth levels deep whose every level links
// its one child twice, as "a" and "b": depth+1 distinct blocks, 2^depth
// paths to the bottom.
func sharedDAG(t testing.TB, depth int) (blockstore.Blockstore, cid.Cid) {
	t.Helper()
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	child := unixfs.EmptyDirNode()
	if err := dag.Add(ctx, child); err != nil {
		t.Fatal(err)
	}
	for range depth {
		nd := unixfs.EmptyDirNode()
		for _, name := range []string{"a", "b"} {
			if err := nd.AddRawLink(name, &ipld.Link{Cid: child.Cid(), Size: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := dag.Add(ctx, nd); err != nil {
			t.Fatal(err)
		}
		child = nd
	}
	return bs, child.Cid()
}

// TestCARBomb: a CAR of a DAG whose subtrees are shared (64 levels, each
// linking its child twice) holds each block once and is answered at once;
// with dups=y it is cut at the block cap rather than walking 2^64 paths;
// and a client that leaves stops the walk.
func TestCARBomb(t *testing.T) {
	bs, root := sharedDAG(t, 64)
	h, err := gateway.NewHandler(gateway.Config{
		Resolvers: []gateway.Resolver{gateway.IPFSPaths{}},
		Policies:  []gateway.Policy{testutil.OpenPolicy{}},
		Local:     hedge.LocalBlockstore(bs),
		Logger:    testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/ipfs/" + root.String() + "?format=car"
	client := &http.Client{Timeout: 10 * time.Second}

	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("CAR of a shared DAG: %v", err)
	}
	cr, err := carv2.NewBlockReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := cr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("reading the CAR: %v", err)
		}
		n++
	}
	resp.Body.Close()
	if n != 65 {
		t.Errorf("the CAR holds %d blocks, want the 65 distinct ones", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the CAR took %v", d)
	}

	// With duplicates, and a client that leaves after a moment: the walk
	// stops with it instead of burning a core.
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"&dups=y", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var cpu1, cpu2 runtime.MemStats
	runtime.ReadMemStats(&cpu1)
	time.Sleep(200 * time.Millisecond)
	runtime.ReadMemStats(&cpu2)
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Errorf("%d goroutines 3 s after the client left, %d before: the walk goes on", g, before)
	}
	if grew := cpu2.TotalAlloc - cpu1.TotalAlloc; grew > 64<<20 {
		t.Errorf("%d MB allocated in 200 ms after the client left: the walk goes on", grew>>20)
	}
}
