package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// blockCounter counts the block bytes delivered to viewers and fetched,
// by source (and reason), as the metrics do.
type blockCounter struct {
	mu        sync.Mutex
	delivered map[string]int
	fetched   map[string]int // by "source/reason"
	rejected  map[string]int
}

func (s *blockCounter) Delivered(src string, n int, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delivered == nil {
		s.delivered = map[string]int{}
	}
	s.delivered[src] += n
}

func (s *blockCounter) Fetched(src string, reason hedge.Reason, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetched == nil {
		s.fetched = map[string]int{}
	}
	s.fetched[src+"/"+string(reason)] += n
}

func (s *blockCounter) Rejected(src string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected == nil {
		s.rejected = map[string]int{}
	}
	s.rejected[src]++
}

// get returns the bytes delivered to viewers from src.
func (s *blockCounter) get(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[src]
}

// fetchedFrom returns the bytes fetched from src, for every reason.
func (s *blockCounter) fetchedFrom(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.fetched {
		if strings.HasPrefix(k, src+"/") {
			n += v
		}
	}
	return n
}

// TestHTTPGatewaySource: an edge with no libp2p peers at all, configured
// with a second pacman as its trustless HTTP gateway, serves a file only
// the second one holds. Bitswap asks the gateway over HTTP
// (?format=raw); every block is verified and counted as from "http".
func TestHTTPGatewaySource(t *testing.T) {
	data := testutil.Bytes("http-source", 5<<20+11)
	holder := testutil.NewNode(t)
	root, err := ingest.Import(context.Background(), holder.DAG(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	trustless, err := newSessionHandler(func(context.Context) dag.BlockGetter { return nil },
		gateway.Config{Local: holder.Store()}) // access local: it serves what it holds
	if err != nil {
		t.Fatal(err)
	}
	var rawRequests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "raw" || r.Header.Get("Accept") == "application/vnd.ipld.raw" {
			rawRequests.Add(1)
		}
		trustless.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	counts := &blockCounter{}
	edge := testutil.NewNodeConfig(t, node.Config{HTTPGateways: []string{srv.URL}})
	url := newGateway(t, edge, gateway.Config{Blocks: counts}).URL + "/ipfs/" + root.String()
	resp, body := do(t, "GET", url+"?filename=clip.mp4") // no sniffing: the stream fetches leaf 0
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("full GET through the HTTP gateway: status %d, equal=%v", resp.StatusCode, bytes.Equal(body, data))
	}
	if st := resp.Header.Get("Server-Timing"); !strings.Contains(st, `http;dur=`) {
		t.Errorf("Server-Timing %q does not name the HTTP gateway as the first leaf's source", st)
	}
	if rawRequests.Load() == 0 {
		t.Error("the trustless gateway got no raw block requests")
	}
	if got := counts.get(string(node.SourceHTTP)); got < len(data) {
		t.Errorf("%d bytes counted from http, want at least the file's %d", got, len(data))
	}
	checkRandomRanges(t, url, data, 10)
}
