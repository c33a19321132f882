package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestSlowReaders: clients that open streams and never read cannot hold
// the route's leaf budget. 200 of them, on a budget of 8 leaves, and a
// fresh range of another file is still served at once (the review saw 503
// after 5 s with 200 readers at 1 byte/s): the leaves fetched ahead of a
// stuck client give their budget back, and the leaf being written is the
// connection's own cost. Each write must still be taken within the stall
// timeout, and once the slow streams are cut, requests are served. One address may not hold more than its share of streams.
func TestSlowReaders(t *testing.T) {
	// 200 clients that ask for the big file and never read a byte.
	url, smallRoot, small := slowBed(t, "slow", 200, gateway.Config{
		Window:              4,
		MaxWindow:           4,
		MaxLeavesInFlight:   8,
		Readahead:           -1,
		StallTimeout:        time.Second,
		BudgetWait:          300 * time.Millisecond,
		MaxStreamsPerClient: 1000,
		MaxNetworkRequests:  1000, // this test is about the leaf budget
	})

	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (*http.Response, []byte, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest("GET", url+"/ipfs/"+smallRoot.String(), nil)
		req.Header.Set("Range", "bytes=0-300000")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a request behind 200 slow readers: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, body, time.Since(start)
	}
	for i := range 5 {
		resp, body, took := get()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, small[:300001]) {
			t.Errorf("request %d behind 200 slow readers: status %d, %d bytes, first difference at %d (%q), want 206 and the 300001 bytes",
				i, resp.StatusCode, len(body), firstDiff(body, small[:300001]), body[:min(len(body), 200)])
		}
		if took > 2*time.Second {
			t.Errorf("request %d behind 200 slow readers took %v", i, took)
		}
	}
	resp, body, took := get()
	if took > 2*time.Second {
		t.Errorf("behind slow readers the answer took %v", took)
	}
	// The slow streams are cut within the stall timeout: then everything
	// is served again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body, _ = get()
		if resp.StatusCode == http.StatusPartialContent && bytes.Equal(body, small[:300001]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the slow readers stalled: status %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStreamsPerClient: one address gets 429 past its share of requests
// in progress.
func TestStreamsPerClient(t *testing.T) {
	big := testutil.Bytes("per-client", 8<<20)
	bs, root := memFile(t, big, ingest.WithChunkSize(256<<10))
	dag := blockservice.New(bs, nil)
	h, err := gateway.NewHandler(gateway.Config{
		Resolvers:           []gateway.Resolver{gateway.IPFSPaths{}},
		Policies:            []gateway.Policy{testutil.OpenPolicy{}},
		Sources:             []hedge.Source{testutil.PeerSessions(func(context.Context) hedge.Getter { return dag })},
		Local:               emptyStore(),
		Readahead:           -1,
		MaxStreamsPerClient: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for range 4 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /ipfs/%s HTTP/1.1\r\nHost: x\r\n\r\n", root)
	}
	time.Sleep(200 * time.Millisecond)
	resp, err := http.Get(srv.URL + "/ipfs/" + root.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a fifth request from one address: status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// emptyStore is an edge's store holding nothing.
func emptyStore() hedge.Local {
	return hedge.LocalBlockstore(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())))
}

// dagService writes through bs.
func dagService(bs blockservice.BlockService) ipld.DAGService { return merkledag.NewDAGService(bs) }

// firstDiff returns the index of the first byte where a and b differ, or
// the shorter one's length.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSlowReadersOfContentNotHeld: clients that ask for content the edge
// does not hold and then never read keep no network-request count once
// their path is resolved, so a fresh request for other content not held
// is still served. Before, each of them held one of MaxNetworkRequests for
// its whole response, and 20 of them on a cap of 8 left every other
// request of content not held a 503.
func TestSlowReadersOfContentNotHeld(t *testing.T) {
	url, smallRoot, small := slowBed(t, "slow-not-held", 20, gateway.Config{
		Readahead:           -1,
		MaxStreamsPerClient: 1000,
		MaxNetworkRequests:  8,
	})
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		req, _ := http.NewRequest("GET", url+"/ipfs/"+smallRoot.String(), nil)
		req.Header.Set("Range", "bytes=1000-300999")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d behind 20 slow readers of content not held: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, small[1000:301000]) {
			t.Fatalf("request %d behind 20 slow readers of content not held: status %d, %d bytes (%q); want 206 and the 300000 bytes",
				i, resp.StatusCode, len(body), body[:min(len(body), 200)])
		}
	}
}

// slowBed serves, through a gateway configured by cfg over an empty store,
// a 16 MiB file and a 1 MiB one held by a peer session, and opens readers
// clients that ask for the big file and never read a byte. It returns
// the server's URL, the small file's CID and its bytes.
func slowBed(t *testing.T, name string, readers int, cfg gateway.Config) (url string, smallRoot cid.Cid, small []byte) {
	t.Helper()
	big := testutil.Bytes(name+"-big", 16<<20)
	small = testutil.Bytes(name+"-small", 1<<20)
	bs, bigRoot := memFile(t, big, ingest.WithChunkSize(256<<10))
	dag := blockservice.New(bs, nil)
	smallRoot, err := ingest.Import(context.Background(), dagService(dag), bytes.NewReader(small), ingest.WithChunkSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resolvers = []gateway.Resolver{gateway.IPFSPaths{}}
	cfg.Policies = []gateway.Policy{testutil.OpenPolicy{}}
	cfg.Sources = []hedge.Source{testutil.PeerSessions(func(context.Context) hedge.Getter { return dag })}
	cfg.Local = emptyStore()
	h, err := gateway.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for range readers {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		fmt.Fprintf(c, "GET /ipfs/%s HTTP/1.1\r\nHost: x\r\n\r\n", bigRoot)
	}
	time.Sleep(500 * time.Millisecond)
	return srv.URL, smallRoot, small
}
