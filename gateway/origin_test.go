package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

// originBed is a file imported with 256 KiB leaves, an HTTP origin serving
// its plain bytes, and an edge whose store holds only the DAG's index
// nodes: every leaf must come from peers or the origin.
type originBed struct {
	data     []byte
	root     cid.Cid
	full     blockstore.Blockstore // every block: what honest peers hold
	edge     blockstore.Blockstore // index nodes only, then what was kept
	leaves   map[cid.Cid]bool
	origin   *httptest.Server
	requests atomic.Int64 // Range requests the origin answered
	corrupt  atomic.Bool  // the origin flips a byte in every answer
}

func newOriginBed(t *testing.T) *originBed {
	t.Helper()
	ctx := context.Background()
	b := &originBed{
		data:   testutil.Bytes("origin", 4<<20+777),
		edge:   blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())),
		leaves: map[cid.Cid]bool{},
	}
	b.full, b.root = memFile(t, b.data, ingest.WithChunkSize(256<<10), ingest.WithMaxLinks(8))
	keys, err := b.full.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		blk, err := b.full.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk.RawData()) == 256<<10 || len(blk.RawData()) == len(b.data)%(256<<10) {
			b.leaves[k] = true // raw leaves: keys are multihashes, sizes tell
			continue
		}
		if err := b.edge.Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.leaves) != 17 {
		t.Fatalf("fixture has %d leaves, want 17", len(b.leaves))
	}
	b.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/media/film.mp4" {
			http.NotFound(w, r)
			return
		}
		b.requests.Add(1)
		body := b.data
		if b.corrupt.Load() {
			body = bytes.Clone(b.data)
			for i := 0; i < len(body); i += 4096 {
				body[i] ^= 0xff
			}
		}
		http.ServeContent(w, r, "film.mp4", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(b.origin.Close)
	return b
}

// kept counts the leaves the edge stored.
func (b *originBed) kept(t *testing.T) int {
	t.Helper()
	n := 0
	for c := range b.leaves {
		blk, err := b.edge.Get(context.Background(), c)
		if err != nil {
			continue
		}
		if !bytes.Equal(blk.Cid().Hash(), c.Hash()) {
			t.Fatalf("edge holds a block under the wrong key")
		}
		n++
	}
	return n
}

// countingObserver counts what the handler reports.
type countingObserver struct {
	rejected, stalls, firstBytes atomic.Int64
	inFlight, maxInFlight        atomic.Int64
}

func (o *countingObserver) FirstByte(time.Duration)              { o.firstBytes.Add(1) }
func (o *countingObserver) Stalled()                             { o.stalls.Add(1) }
func (o *countingObserver) Rejected(string)                      { o.rejected.Add(1) }
func (o *countingObserver) Delivered(string, int, time.Duration) {}
func (o *countingObserver) Fetched(string, hedge.Reason, int)    {}
func (o *countingObserver) LeavesInFlight(d int) {
	n := o.inFlight.Add(int64(d))
	for m := o.maxInFlight.Load(); n > m && !o.maxInFlight.CompareAndSwap(m, n); m = o.maxInFlight.Load() {
	}
}

// slowPeers delivers the full store's blocks after a delay, as distant
// or overloaded peers do; leaves only, index nodes come at once.
type slowPeers struct {
	full  blockstore.Blockstore
	delay time.Duration
	asked atomic.Int64
}

func (p *slowPeers) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	p.asked.Add(1)
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.full.Get(ctx, c)
}

// afterOrigin are peers that hand over a leaf only once the origin has
// been asked for it (asked reports the Range header it was asked with);
// index nodes come at once.
type afterOrigin struct {
	full  blockstore.Blockstore
	spans map[cid.Cid]string // leaf → its Range header
	asked func(rng string) bool
}

func (p afterOrigin) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if rng, ok := p.spans[c]; ok {
		for !p.asked(rng) {
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return p.full.Get(ctx, c)
}

// edgeGateway serves the bed's file through a handler that streams leaves
// from peers (nil: none, the edge is on its own) with the origin behind.
func (b *originBed) edgeGateway(t *testing.T, peers dag.BlockGetter, originURL string, after time.Duration, obs *countingObserver) string {
	t.Helper()
	o := &origin.Source{URL: originURL + "/media/film.mp4?{http.request.uri.query}", After: caddy.Duration(after)}
	if after == 0 {
		o.After = caddy.Duration(time.Nanosecond) // at once
	}
	if err := o.Init(); err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		Local:        hedge.LocalBlockstore(b.edge),
		Store:        storeFunc(b.edge.Put),
		StallTimeout: 3 * time.Second,
		Readahead:    -1,
		Sources:      []hedge.Source{o},
		Policies:     []gateway.Policy{},
		Expander:     testutil.Placeholders,
	}
	if obs != nil {
		cfg.Observer, cfg.Blocks = obs, obs
	}
	if peers != nil {
		cfg.Policies = nil // open
		cfg.Sources = append(cfg.Sources, testutil.PeerSessions(func(context.Context) hedge.Getter {
			return localFirst{b.edge, peers}
		}))
	}
	h, err := newSessionHandler(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return httptestServer(t, h) + "/ipfs/" + b.root.String()
}

// storeFunc adapts a blockstore's Put to hedge.Storer.
type storeFunc func(context.Context, blocks.Block) error

func (f storeFunc) Keep(ctx context.Context, blk blocks.Block) error { return f(ctx, blk) }

// localFirst reads the edge's store, then asks peers.
type localFirst struct {
	local blockstore.Blockstore
	peers dag.BlockGetter
}

func (l localFirst) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if blk, err := l.local.Get(ctx, c); err == nil {
		return blk, nil
	}
	return l.peers.GetBlock(ctx, c)
}

// TestOriginOnly serves a file no peer holds: the edge has the DAG's index
// (a few KB, e.g. imported from a CAR) and the origin has the bytes. Every
// leaf is fetched by its span, verified and kept, so the next request is
// answered from the store alone.
func TestOriginOnly(t *testing.T) {
	b := newOriginBed(t)
	obs := &countingObserver{}
	url := b.edgeGateway(t, nil, b.origin.URL, 0, obs)

	// A file name spares the sniffing of the first bytes, so the stream
	// fetches the first leaf itself.
	resp, body := do(t, "GET", url+"?filename=film.mp4")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
		t.Fatalf("full GET: status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, b.data))
	}
	if st := resp.Header.Get("Server-Timing"); !strings.Contains(st, `origin;dur=`) {
		t.Errorf("Server-Timing %q does not name the origin as the first leaf's source", st)
	}
	if n := b.requests.Load(); n != 17 {
		t.Errorf("origin answered %d requests, want one per leaf (17)", n)
	}
	if n := b.kept(t); n != 17 {
		t.Errorf("edge kept %d of 17 leaves", n)
	}
	checkRandomRanges(t, url, b.data, 40)
	if n := b.requests.Load(); n != 17 {
		t.Errorf("origin asked %d times after every leaf was kept", n-17)
	}
	resp, body = do(t, "GET", url, "Cache-Control", "only-if-cached")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
		t.Fatalf("only-if-cached after the origin filled the store: status %d", resp.StatusCode)
	}
	if obs.rejected.Load() != 0 || obs.stalls.Load() != 0 {
		t.Errorf("rejected %d, stalls %d; want none", obs.rejected.Load(), obs.stalls.Load())
	}
}

// TestOriginFillsSlowPeers races peers that take 4 s per leaf against the
// origin asked after 150 ms: the viewer gets every byte right, and far
// sooner than the peers alone could deliver.
func TestOriginFillsSlowPeers(t *testing.T) {
	b := newOriginBed(t)
	peers := &slowPeers{full: b.full, delay: 4 * time.Second}
	url := b.edgeGateway(t, peers, b.origin.URL, 150*time.Millisecond, nil)

	start := time.Now()
	resp, body := do(t, "GET", url, "Range", "bytes=1000000-3999999")
	took := time.Since(start)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, b.data[1000000:4000000]) {
		t.Fatalf("range: status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, b.data[1000000:4000000]))
	}
	if peers.asked.Load() == 0 {
		t.Error("peers were never asked")
	}
	if b.requests.Load() == 0 {
		t.Error("the origin was never asked")
	}
	// The peers' delay is 4 s per leaf; the origin's deadline is 150 ms.
	if took > 3*time.Second {
		t.Errorf("range took %v: the origin did not fill in for the slow peers", took)
	}
	t.Logf("3 MB range with peers at 4 s per leaf and the origin after 150 ms: %v", took)
}

// TestCorruptOrigin: an origin serving wrong bytes is caught by the leaf
// hashes; not one wrong byte reaches the viewer or the store, the honest
// (slow) peers deliver, and every rejection is counted.
func TestCorruptOrigin(t *testing.T) {
	b := newOriginBed(t)
	b.corrupt.Store(true)
	obs := &countingObserver{}
	peers := &slowPeers{full: b.full, delay: 300 * time.Millisecond}
	url := b.edgeGateway(t, peers, b.origin.URL, 0, obs)

	resp, body := do(t, "GET", url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
		t.Fatalf("full GET: status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, b.data))
	}
	if obs.rejected.Load() == 0 {
		t.Error("no origin answer was rejected")
	}
	for c := range b.leaves {
		blk, err := b.edge.Get(context.Background(), c)
		if err != nil {
			continue
		}
		if sum, _ := c.Prefix().Sum(blk.RawData()); !bytes.Equal(sum.Hash(), c.Hash()) {
			t.Fatalf("the edge stored corrupt bytes for %s", c)
		}
	}

	// With no peers at all, a corrupt origin yields an error, never bytes.
	b2 := newOriginBed(t)
	b2.corrupt.Store(true)
	url = b2.edgeGateway(t, nil, b2.origin.URL, 0, nil)
	resp, body = do(t, "GET", url, "Range", "bytes=300000-400000")
	if resp.StatusCode < 500 || bytes.Contains(body, b2.data[300000:300100]) {
		t.Fatalf("corrupt origin alone: status %d, want a 5xx and no content", resp.StatusCode)
	}
}

// TestOriginDown: an origin that refuses connections costs nothing; the
// peers serve every byte.
func TestOriginDown(t *testing.T) {
	b := newOriginBed(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	peers := &slowPeers{full: b.full, delay: 20 * time.Millisecond}
	url := b.edgeGateway(t, peers, deadURL, 0, nil)
	resp, body := do(t, "GET", url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
		t.Fatalf("full GET: status %d, equal=%v", resp.StatusCode, bytes.Equal(body, b.data))
	}
	checkRandomRanges(t, url, b.data, 20)
}

// TestOriginAnswersChecked covers origins that answer the wrong thing:
// a 200 with the whole file for a mid-file leaf, a 206 for another span,
// and errors. None is used; the peers deliver.
func TestOriginAnswersChecked(t *testing.T) {
	b := newOriginBed(t)
	var mu sync.Mutex
	seen := map[string]int{}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Range")]++
		n := len(seen)
		mu.Unlock()
		switch n % 3 {
		case 0: // ignore Range
			_, _ = w.Write(b.data)
		case 1: // claim the span asked for, send the file's first bytes
			first, last, ok := parseRange(r.Header.Get("Range"))
			if !ok {
				t.Errorf("origin asked for %q", r.Header.Get("Range"))
				return
			}
			w.Header().Set("Content-Range", "bytes "+r.Header.Get("Range")[len("bytes="):]+"/"+strconv.Itoa(len(b.data)))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(b.data[:last-first+1])
		default:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(bad.Close)
	obs := &countingObserver{}
	// Peers hand over each leaf only after the origin was asked for it.
	spans := map[cid.Cid]string{}
	ix, err := dag.NewIndex(16)
	if err != nil {
		t.Fatal(err)
	}
	for leaf, err := range ix.Leaves(context.Background(), blockservice.New(b.full, nil), b.root, 0, int64(len(b.data))) {
		if err != nil {
			t.Fatal(err)
		}
		spans[leaf.Cid] = fmt.Sprintf("bytes=%d-%d", leaf.Offset, leaf.Offset+leaf.Size-1)
	}
	peers := afterOrigin{full: b.full, spans: spans, asked: func(rng string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[rng] > 0
	}}
	url := b.edgeGateway(t, peers, bad.URL, 0, obs)
	resp, body := do(t, "GET", url, "Range", "bytes=262144-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, b.data[262144:]) {
		t.Fatalf("range: status %d, equal=%v", resp.StatusCode, bytes.Equal(body, b.data[262144:]))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 3 {
		t.Fatalf("the origin was asked for %d spans, want every leaf's", len(seen))
	}
	if obs.rejected.Load() == 0 {
		t.Error("the origin's bytes for another span were not rejected")
	}
}

// parseRange parses "bytes=first-last".
func parseRange(s string) (first, last int, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(s, "bytes="), "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	return first, last, err1 == nil && err2 == nil && last >= first
}
