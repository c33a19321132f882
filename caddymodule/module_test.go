package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/caddymodule"
	_ "github.com/pacman-cdn/pacman/plugins/all"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/ipfs/boxo/blockservice"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// testCaddyfile returns a Caddyfile serving /ipfs/* on port 9080 from a node in
// dataDir peered with peers, with the given stream window.
func testCaddyfile(dataDir string, peers []string, window int) string {
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
		peer %s
	}
}
http://localhost:9080 {
	pacman /ipfs/* {
		window %d
		access open
	}
}
`, dataDir, strings.Join(peers, " "), window)
}

func peerAddrs(nodes []*node.Node) []string {
	var out []string
	for _, n := range nodes {
		for _, a := range n.Host().Addrs() {
			out = append(out, a.String()+"/p2p/"+n.Host().ID().String())
		}
	}
	return out
}

// caddyDataDir returns a data directory for a node run by the in-process
// Caddy that caddytest shares between tests. When the test ends, Caddy is
// left with an empty config, so the node stops before its directory is
// removed.
func caddyDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		resp, err := http.Post("http://localhost:2999/load", "application/json",
			strings.NewReader(`{"admin":{"listen":"localhost:2999"}}`))
		if err != nil {
			return // no Caddy running: the test was skipped before starting it
		}
		resp.Body.Close()
	})
	return dir
}

// runningNode returns the node the pool holds for dataDir.
func runningNode(t *testing.T, dataDir string) *node.Node {
	t.Helper()
	n := caddymodule.RunningNode(dataDir)
	if n == nil {
		t.Fatalf("no node running for %s", dataDir)
	}
	return n
}

// TestServeThroughCaddy runs the module in a real Caddy: ranges from two
// seeders arrive byte-exact, and a config reload in the middle of 20
// streams neither drops a stream nor restarts the node.
func TestServeThroughCaddy(t *testing.T) {
	data := testutil.Bytes("caddy", 24<<20+99)
	seeders, root := testutil.Seeders(t, 2, data)
	dataDir := caddyDataDir(t)

	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(dataDir, peerAddrs(seeders), 8), "caddyfile")
	url := "http://localhost:9080/ipfs/" + root.String()

	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=1000000-3000000")
	_, body := tester.AssertResponse(req, 206, string(data[1000000:3000001]))
	if len(body) != 2000001 {
		t.Fatalf("range: %d bytes", len(body))
	}

	before := runningNode(t, dataDir)
	peersBefore := len(before.Host().Network().Peers())

	// Start 20 full downloads, read some of each, reload, read the rest.
	const streams = 20
	bodies := make([]io.ReadCloser, streams)
	heads := make([][]byte, streams)
	for i := range bodies {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		heads[i] = make([]byte, 1<<20+i*4096)
		if _, err := io.ReadFull(resp.Body, heads[i]); err != nil {
			t.Fatal(err)
		}
		bodies[i] = resp.Body
	}
	tester.InitServer(testCaddyfile(dataDir, peerAddrs(seeders), 4), "caddyfile")
	errs := make(chan error, streams)
	for i, body := range bodies {
		go func() {
			rest, err := io.ReadAll(body)
			switch {
			case err != nil:
				errs <- fmt.Errorf("stream %d broken by the reload: %w", i, err)
			case !bytes.Equal(append(heads[i], rest...), data):
				errs <- fmt.Errorf("stream %d: bytes differ from the source", i)
			default:
				errs <- nil
			}
		}()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	after := runningNode(t, dataDir)
	if after != before {
		t.Error("the reload replaced the node")
	}
	if after.Host().ID() != before.Host().ID() || len(after.Host().Network().Peers()) < peersBefore {
		t.Errorf("after the reload: peer %s with %d peers, before: %s with %d", after.Host().ID(), len(after.Host().Network().Peers()), before.Host().ID(), peersBefore)
	}

	// The metrics on the admin endpoint count what crossed the network:
	// the whole file, whether a viewer's stream, the index walk or
	// readahead fetched each block (a block readahead fetched is then
	// delivered from the store).
	var fetched float64
	for _, reason := range []string{"viewer", "index", "readahead"} {
		v, _ := metricSample(t, `pacman_fetched_bytes_total{reason="`+reason+`",source="peers"}`)
		fetched += v
	}
	if fetched < float64(len(data)) {
		t.Errorf("pacman_fetched_bytes_total{source=\"peers\"} = %.0f, want at least the file's %d bytes", fetched, len(data))
	}
	peerBytes := metricValue(t, `pacman_block_bytes_total{source="peers"}`)
	// Every stream's blocks were delivered once each, from one source or
	// the other: 20 files' worth at least.
	if local := metricValue(t, `pacman_block_bytes_total{source="local"}`); local+peerBytes < streams*float64(len(data)) {
		t.Errorf("%.0f bytes delivered locally and %.0f from peers, want at least %d", local, peerBytes, streams*len(data))
	}
	if peers := metricValue(t, "pacman_peers"); peers < 2 {
		t.Errorf("pacman_peers = %.0f, want 2", peers)
	}

	// `caddy pacman stat` reads the node's status from the admin endpoint.
	var stat bytes.Buffer
	if err := testutil.Pacman(t, &stat, "stat", "--address", "localhost:2999"); err != nil {
		t.Fatal(err)
	}
	if out := stat.String(); !strings.Contains(out, "peer ID       "+after.Host().ID().String()) || !strings.Contains(out, "peers         2") {
		t.Errorf("stat printed:\n%s", out)
	}

	// The reloaded config serves too.
	req, _ = http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=-10")
	tester.AssertResponse(req, 206, string(data[len(data)-10:]))
}

// metricValue reads one sample from the admin endpoint's /metrics.
func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	v, ok := metricSample(t, name)
	if !ok {
		t.Fatalf("no %s in /metrics", name)
	}
	return v
}

// metricSample reads one sample from the admin endpoint's /metrics, and
// whether it is there.
func metricSample(t *testing.T, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}

// TestOriginThroughCaddy: the one seeder holds every other leaf of a file
// and a plain HTTP origin holds all of it. The gateway serves the file
// byte-exact, half from the peer and half from the origin, and the metrics
// account for every byte by source: the offload ratio.
func TestOriginThroughCaddy(t *testing.T) {
	data := testutil.Bytes("origin-caddy", 8<<20+4321)
	seeders, root := testutil.Seeders(t, 1, data)
	ctx := context.Background()
	ix, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	store := blockservice.New(seeders[0].Blockstore(), nil)
	var removed int
	for leaf, err := range ix.Leaves(ctx, store, root, 0, int64(len(data))) {
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Offset/(1<<20)%2 == 1 {
			if err := seeders[0].Blockstore().DeleteBlock(ctx, leaf.Cid); err != nil {
				t.Fatal(err)
			}
			removed += int(leaf.Size)
		}
	}
	// The origin keeps the file under a name of its own, which the
	// route's URL template builds from the request's placeholders.
	var wrongPaths atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/"+root.String()+"/film.mp4" {
			wrongPaths.Add(1)
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer origin.Close()

	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
		peer %s
	}
}
http://localhost:9080 {
	pacman /ipfs/* {
		access       open
		origin       %s/files/{http.request.uri.path.1}/film.mp4
		origin_after 100ms
	}
}
`, caddyDataDir(t), strings.Join(peerAddrs(seeders), " "), origin.URL), "caddyfile")
	peersBefore, _ := metricSample(t, `pacman_block_bytes_total{source="peers"}`)
	url := "http://localhost:9080/ipfs/" + root.String()
	req, _ := http.NewRequest("GET", url, nil)
	tester.AssertResponse(req, 200, string(data))
	if n := wrongPaths.Load(); n > 0 {
		t.Errorf("the origin was asked %d times for a path its template does not build", n)
	}

	fromPeers := metricValue(t, `pacman_block_bytes_total{source="peers"}`) - peersBefore
	fromOrigin := metricValue(t, `pacman_block_bytes_total{source="origin"}`)
	if int(fromOrigin) < removed {
		t.Errorf("origin delivered %.0f bytes, want at least the %d the peer lacks", fromOrigin, removed)
	}
	// Each byte the viewer got is counted once, under its source: the
	// first leaf, fetched to sniff the media type, then came from the
	// store.
	fromLocal, _ := metricSample(t, `pacman_block_bytes_total{source="local"}`)
	if got := fromPeers + fromOrigin + fromLocal; got != float64(len(data)) {
		t.Errorf("peers %.0f + origin %.0f + local %.0f bytes = %.0f, want the file's %d exactly", fromPeers, fromOrigin, fromLocal, got, len(data))
	}
	t.Logf("offload: %.0f bytes from peers, %.0f from the origin: %.0f%% carried by the P2P network",
		fromPeers, fromOrigin, 100*fromPeers/(fromPeers+fromOrigin))
	if n := metricValue(t, "pacman_first_byte_seconds_count"); n < 1 {
		t.Errorf("pacman_first_byte_seconds_count = %.0f", n)
	}
	if n := metricValue(t, "pacman_leaves_in_flight"); n != 0 {
		t.Errorf("pacman_leaves_in_flight = %.0f after the stream ended", n)
	}
	// Every fetched block, from the peer or the origin, is kept in the
	// cache (the node has no cache_size: nothing evicted).
	if n := metricValue(t, "pacman_cache_bytes"); n < float64(len(data)) {
		t.Errorf("pacman_cache_bytes = %.0f, want at least the file's %d", n, len(data))
	}
	if n, _ := metricSample(t, `pacman_rejected_total{source="origin"}`); n != 0 {
		t.Errorf("pacman_rejected_total{source=\"origin\"} = %.0f from an honest origin", n)
	}
}
