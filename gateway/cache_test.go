package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestBoundedCache streams a working set three times the gateway's cache
// size, twice over: every response is byte-exact, the fetched bytes kept
// fall back under the limit once streams end, and a file imported on the
// gateway (larger than the cache on its own) stays whole.
func TestBoundedCache(t *testing.T) {
	const limit = 6 << 20
	var files [][]byte
	var seeders []*node.Node
	var roots []string
	for i := range 3 {
		data := testutil.Bytes("cache-"+string(rune('a'+i)), 6<<20+i*1000)
		s, root := testutil.Seeders(t, 1, data)
		files, seeders, roots = append(files, data), append(seeders, s...), append(roots, root.String())
	}
	gw := testutil.NewNodeConfig(t, node.Config{
		Peers:      testutil.AddrInfos(seeders),
		CacheSize:  limit,
		CacheGrace: 200 * time.Millisecond,
	})
	own := testutil.Bytes("imported", 8<<20)
	ownRoot, err := ingest.Import(context.Background(), gw.DAG(), bytes.NewReader(own))
	if err != nil {
		t.Fatal(err)
	}
	url := newGateway(t, gw, gateway.Config{Local: gw.Store()}).URL + "/ipfs/"
	waitConnected(t, gw, 3)

	for round := range 2 {
		for i, root := range roots {
			resp, body := do(t, "GET", url+root)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, files[i]) {
				t.Fatalf("round %d file %d: status %d, equal=%v", round, i, resp.StatusCode, bytes.Equal(body, files[i]))
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := gw.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.CacheBytes <= limit {
			if st.Evictions == 0 {
				t.Error("nothing was evicted")
			}
			t.Logf("cache %d bytes of %d after %d evictions", st.CacheBytes, limit, st.Evictions)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache holds %d bytes, limit %d", st.CacheBytes, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, body := do(t, "GET", url+ownRoot.String(), "Cache-Control", "only-if-cached")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, own) {
		t.Fatalf("imported file after eviction: status %d, equal=%v", resp.StatusCode, bytes.Equal(body, own))
	}
}
