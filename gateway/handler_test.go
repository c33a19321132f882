package gateway_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	boxochunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"go.uber.org/goleak"
)

// fixture is a gateway over an in-memory store holding one directory:
//
//	video.mp4        3 MiB + 5 bytes, random
//	noext            2 MiB + 3 bytes starting with an HTML document
//	empty.txt        0 bytes
//	page/index.html  a small HTML page
//	bare/            a directory without index.html
type fixture struct {
	url      string // /ipfs/{dir}
	dir      cid.Cid
	video    []byte
	noext    []byte
	videoCID cid.Cid
	store    blockservice.BlockService
	getter   *faultyGetter
}

func newFixture(t testing.TB, cfg gateway.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	bserv := blockservice.New(bs, nil)
	ds := merkledag.NewDAGService(bserv)

	f := &fixture{
		video: testutil.Bytes("video", 3<<20+5),
		noext: append([]byte("<!DOCTYPE html><html><body>hi</body></html>"), testutil.Bytes("noext", 2<<20+3)...),
		store: bserv,
	}
	src := t.TempDir()
	write := func(name string, b []byte) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("video.mp4", f.video)
	write("noext", f.noext)
	write("empty.txt", nil)
	write("page/index.html", []byte("<html>page</html>"))
	write("bare/x", []byte("x"))
	var err error
	if f.dir, err = ingest.ImportDir(ctx, ds, src); err != nil {
		t.Fatal(err)
	}
	if f.videoCID, err = ingest.Import(ctx, ds, bytes.NewReader(f.video)); err != nil {
		t.Fatal(err)
	}
	f.getter = &faultyGetter{g: bserv}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return f.getter }, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/ipfs/" + f.dir.String()
	return f
}

// faultyGetter wraps a block getter with injectable faults and counts.
type faultyGetter struct {
	g        dag.BlockGetter
	mu       sync.Mutex
	block    map[cid.Cid]bool // blocks whose fetch hangs until ctx ends
	fetched  map[cid.Cid]int
	inFlight atomic.Int64
}

func (f *faultyGetter) hang(c cid.Cid) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block == nil {
		f.block = map[cid.Cid]bool{}
	}
	f.block[c] = true
}

func (f *faultyGetter) count(c cid.Cid) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched[c]
}

func (f *faultyGetter) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	f.mu.Lock()
	if f.fetched == nil {
		f.fetched = map[cid.Cid]int{}
	}
	f.fetched[c]++
	hang := f.block[c]
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.g.GetBlock(ctx, c)
}

func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, body
}

func wantHeader(t *testing.T, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}

// TestFullGet checks a 200 response and its representation metadata
// (RFC 9110 §8.3 Content-Type, §8.6 Content-Length, §8.8.3 ETag, §14.3
// Accept-Ranges) and immutable caching (RFC 9111 §5.2.2, RFC 8246).
func TestFullGet(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	resp, body := do(t, "GET", f.url+"/video.mp4")
	if resp.StatusCode != 200 || !bytes.Equal(body, f.video) {
		t.Fatalf("status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, f.video))
	}
	wantHeader(t, resp, "Content-Type", "video/mp4")
	wantHeader(t, resp, "Content-Length", strconv.Itoa(len(f.video)))
	wantHeader(t, resp, "Accept-Ranges", "bytes")
	wantHeader(t, resp, "Cache-Control", "public, max-age=29030400, immutable")
	wantHeader(t, resp, "Etag", `"`+f.videoCID.String()+`"`)
	if st := resp.Header.Get("Server-Timing"); !strings.HasPrefix(st, "resolve;dur=") || !strings.Contains(st, ", first-byte;dur=") {
		t.Errorf("Server-Timing %q", st)
	}
}

// TestHead checks RFC 9110 §9.3.2: HEAD sends the GET headers, no body.
func TestHead(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	get, _ := do(t, "GET", f.url+"/video.mp4", "Range", "bytes=10-19")
	head, body := do(t, "HEAD", f.url+"/video.mp4", "Range", "bytes=10-19")
	if head.StatusCode != 206 || len(body) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes", head.StatusCode, len(body))
	}
	for _, h := range []string{"Content-Length", "Content-Range", "Content-Type", "Etag", "Cache-Control", "Accept-Ranges"} {
		if head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
}

// TestRanges checks single-range responses (RFC 9110 §14.4, §15.3.7) and
// unsatisfiable ones (§15.5.17).
func TestRanges(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	n := int64(len(f.video))
	cases := []struct {
		rng        string
		start, end int64 // expected bytes [start, end)
	}{
		{"bytes=0-0", 0, 1},
		{"bytes=1048575-1048576", 1048575, 1048577}, // across the first leaf boundary
		{"bytes=-5", n - 5, n},
		{"bytes=3145728-", 3145728, n},
		{"bytes=100-99999999", 100, n},
	}
	for _, tc := range cases {
		resp, body := do(t, "GET", f.url+"/video.mp4", "Range", tc.rng)
		if resp.StatusCode != 206 {
			t.Fatalf("%s: status %d", tc.rng, resp.StatusCode)
		}
		wantHeader(t, resp, "Content-Range", fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end-1, n))
		if !bytes.Equal(body, f.video[tc.start:tc.end]) {
			t.Errorf("%s: body differs from the source", tc.rng)
		}
	}
	for _, rng := range []string{"bytes=99999999-", "bytes=-0", "bytes=x", "bytes=" + string(bytes.Repeat([]byte("1-2,"), 40))} {
		resp, _ := do(t, "GET", f.url+"/video.mp4", "Range", rng)
		if resp.StatusCode != 416 {
			t.Errorf("%.40s: status %d, want 416", rng, resp.StatusCode)
		}
		wantHeader(t, resp, "Content-Range", fmt.Sprintf("bytes */%d", n))
	}
	// §14.2: a unit the server does not know is ignored.
	if resp, body := do(t, "GET", f.url+"/video.mp4", "Range", "pages=1-2"); resp.StatusCode != 200 || len(body) != len(f.video) {
		t.Errorf("unknown unit: status %d, %d bytes", resp.StatusCode, len(body))
	}
	// Many ranges adding up to more than the content are served as a whole.
	if resp, _ := do(t, "GET", f.url+"/video.mp4", "Range", "bytes=0-,0-,0-"); resp.StatusCode != 200 {
		t.Errorf("ranges summing past the size: status %d, want 200", resp.StatusCode)
	}
	// §14.1.1: a zero-length file satisfies no range.
	if resp, _ := do(t, "GET", f.url+"/empty.txt", "Range", "bytes=0-"); resp.StatusCode != 416 {
		t.Errorf("range of an empty file: status %d, want 416", resp.StatusCode)
	}
	if resp, body := do(t, "GET", f.url+"/empty.txt"); resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("empty file: status %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestMultipart checks RFC 9110 §14.6: multipart/byteranges with one part
// per range, each with its Content-Range, and an exact Content-Length.
func TestMultipart(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	n := int64(len(f.video))
	resp, body := do(t, "GET", f.url+"/video.mp4", "Range", "bytes=0-9, 2097150-2097160, -3")
	if resp.StatusCode != 206 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	parts := readMultipart(t, resp, body)
	want := [][2]int64{{0, 10}, {2097150, 2097161}, {n - 3, n}}
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(parts), len(want))
	}
	for i, p := range parts {
		w := want[i]
		if p.contentRange != fmt.Sprintf("bytes %d-%d/%d", w[0], w[1]-1, n) || !bytes.Equal(p.body, f.video[w[0]:w[1]]) {
			t.Errorf("part %d: %q, %d bytes", i, p.contentRange, len(p.body))
		}
	}
}

// TestConditionalRequests checks the preconditions of RFC 9110 §13 in the
// order of §13.2.2.
func TestConditionalRequests(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	etag := `"` + f.videoCID.String() + `"`
	url := f.url + "/video.mp4"
	cases := []struct {
		rfc    string
		hdr    []string
		status int
	}{
		{"§13.1.2 If-None-Match match → 304", []string{"If-None-Match", etag}, 304},
		{"§13.1.2 weak comparison → 304", []string{"If-None-Match", "W/" + etag}, 304},
		{"§13.1.2 * → 304", []string{"If-None-Match", "*"}, 304},
		{"§13.1.2 no match → 200", []string{"If-None-Match", `"other"`}, 200},
		{"§13.1.1 If-Match mismatch → 412", []string{"If-Match", `"other"`}, 412},
		{"§13.1.1 If-Match weak tag fails strong comparison → 412", []string{"If-Match", "W/" + etag}, 412},
		{"§13.1.1 If-Match match → 200", []string{"If-Match", etag}, 200},
		{"§13.2.2 If-Match is evaluated before If-None-Match", []string{"If-Match", `"other"`, "If-None-Match", etag}, 412},
		{"§13.1.5 If-Range match → 206", []string{"Range", "bytes=0-1", "If-Range", etag}, 206},
		{"§13.1.5 If-Range mismatch → 200 full", []string{"Range", "bytes=0-1", "If-Range", `"other"`}, 200},
		{"§13.1.5 If-Range weak → 200 full", []string{"Range", "bytes=0-1", "If-Range", "W/" + etag}, 200},
		{"§13.1.5 If-Range date without Last-Modified → 200 full", []string{"Range", "bytes=0-1", "If-Range", "Wed, 21 Oct 2015 07:28:00 GMT"}, 200},
		{"§13.2.2 If-None-Match before Range → 304", []string{"Range", "bytes=0-1", "If-None-Match", etag}, 304},
	}
	for _, tc := range cases {
		resp, body := do(t, "GET", url, tc.hdr...)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.rfc, resp.StatusCode, tc.status)
			continue
		}
		switch tc.status {
		case 304:
			// §15.4.5: a 304 carries the ETag and Cache-Control a 200 would.
			wantHeader(t, resp, "Etag", etag)
			wantHeader(t, resp, "Cache-Control", "public, max-age=29030400, immutable")
			if len(body) != 0 {
				t.Errorf("%s: 304 with a body", tc.rfc)
			}
		case 200:
			if !bytes.Equal(body, f.video) {
				t.Errorf("%s: 200 body differs from the source", tc.rfc)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	base := f.url[:len(f.url)-len(f.dir.String())]
	md5CID, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.MD5, MhLength: -1}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	cbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte{0xa0})
	if err := f.store.AddBlock(context.Background(), mustBlock(t, []byte{0xa0}, cbor)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, url string
		status            int
	}{
		{"POST is not allowed", "POST", f.url + "/video.mp4", 405},
		{"not a CID", "GET", base + "not-a-cid", 400},
		{"not under /ipfs/", "GET", base[:len(base)-len("/ipfs/")] + "/ipns/x", 404},
		{"dot-dot segment", "GET", f.url + "/page/../video.mp4", 400},
		{"encoded dot-dot segment", "GET", f.url + "/page/%2E%2E/video.mp4", 400},
		{"empty segment", "GET", f.url + "//video.mp4", 400},
		{"insecure hash", "GET", base + md5CID.String(), 400},
		{"missing file", "GET", f.url + "/nope.mp4", 404},
		{"encoded slash stays in the name", "GET", f.url + "/page%2Findex.html", 404},
		{"path inside a file", "GET", f.url + "/video.mp4/x", 404},
		{"a path inside a DAG-CBOR block", "GET", base + cbor.String() + "/x", 404},
		{"a DAG-CBOR block as JSON", "GET", base + cbor.String() + "?format=dag-json", 406},
		{"a UnixFS file as DAG-JSON", "GET", f.url + "/video.mp4?format=dag-json", 406},
	}
	for _, tc := range cases {
		resp, body := do(t, tc.method, tc.url)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d (%q), want %d", tc.name, resp.StatusCode, body, tc.status)
		}
		if len(body) == 0 || len(body) > 200 {
			t.Errorf("%s: body of %d bytes, want a short message", tc.name, len(body))
		}
	}
	if resp, _ := do(t, "POST", f.url+"/video.mp4"); resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("405 without Allow: GET, HEAD, OPTIONS (RFC 9110 §15.5.6)")
	}
}

func mustBlock(t *testing.T, data []byte, c cid.Cid) blocks.Block {
	t.Helper()
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDirectories(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(f.url + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/ipfs/"+f.dir.String()+"/page/" {
		t.Errorf("directory without slash: %d to %q, want 301 to .../page/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := do(t, "GET", f.url+"/page/")
	if resp.StatusCode != 200 || string(body) != "<html>page</html>" {
		t.Errorf("index.html: status %d, %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Content-Type", "text/html; charset=utf-8")

	// A directory without index.html is listed, with a revalidating
	// cache policy: the markup is generated, not content-addressed.
	resp, body = do(t, "GET", f.url+"/bare/")
	bare := childCID(t, f, "bare")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<a href="/ipfs/`+f.dir.String()+`/bare/x">x</a>`) {
		t.Errorf("listing: status %d, %q", resp.StatusCode, body)
	}
	etag := resp.Header.Get("Etag")
	if !strings.HasPrefix(etag, `"DirIndex-`) || !strings.HasSuffix(etag, "_CID-"+bare.String()+`"`) {
		t.Errorf("listing Etag %q", etag)
	}
	wantHeader(t, resp, "Cache-Control", "public, max-age=604800, stale-while-revalidate=2678400")
	if resp, _ := do(t, "GET", f.url+"/bare/", "If-None-Match", "W/"+etag); resp.StatusCode != 304 {
		t.Errorf("listing revalidation: status %d, want 304", resp.StatusCode)
	}
}

// TestContentType checks the extension first, then sniffing — but sniffing
// only when the response starts at byte 0, so a mid-file seek never fetches
// the first leaf.
func TestContentType(t *testing.T) {
	f := newFixture(t, gateway.Config{Readahead: -1})
	resp, _ := do(t, "GET", f.url+"/noext", "Range", "bytes=0-9")
	wantHeader(t, resp, "Content-Type", "text/html; charset=utf-8")

	f = newFixture(t, gateway.Config{Readahead: -1})
	first := firstLeaf(t, f, "noext")
	resp, body := do(t, "GET", f.url+"/noext", "Range", "bytes=1048576-1048580")
	wantHeader(t, resp, "Content-Type", "application/octet-stream")
	if !bytes.Equal(body, f.noext[1048576:1048581]) {
		t.Error("mid-file range differs from the source")
	}
	if n := f.getter.count(first); n != 0 {
		t.Errorf("a mid-file range fetched the first leaf %d times", n)
	}
	resp, _ = do(t, "GET", f.url[:len(f.url)-len(f.dir.String())]+f.videoCID.String()+"?filename=clip.webm", "Range", "bytes=5-6")
	wantHeader(t, resp, "Content-Type", "video/webm")
	wantHeader(t, resp, "Content-Disposition", `inline; filename="clip.webm"`)
	// ?download=true asks browsers to save it, as on boxo's gateway.
	resp, _ = do(t, "GET", f.url[:len(f.url)-len(f.dir.String())]+f.videoCID.String()+"?filename=clip.webm&download=true", "Range", "bytes=5-6")
	wantHeader(t, resp, "Content-Disposition", `attachment; filename="clip.webm"`)
}

// firstLeaf returns the CID of the first leaf of the file name in f's
// directory, found without going through the gateway's getter.
func firstLeaf(t *testing.T, f *fixture, name string) cid.Cid {
	t.Helper()
	ctx := context.Background()
	nd, err := merkledag.NewDAGService(f.store).Get(ctx, f.dir)
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := nd.ResolveLink([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := dag.NewIndex(16)
	for leaf, err := range ix.Leaves(ctx, f.store, l.Cid, 0, 1) {
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Cid
	}
	t.Fatal("no leaf")
	return cid.Undef
}

// TestResolveTimeout: content no peer delivers gets 504 within the timeout.
func TestResolveTimeout(t *testing.T) {
	f := newFixture(t, gateway.Config{ResolveTimeout: 200 * time.Millisecond})
	f.getter.hang(f.dir)
	start := time.Now()
	resp, _ := do(t, "GET", f.url+"/video.mp4")
	if resp.StatusCode != 504 {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("504 after %v, want about 200ms", d)
	}
}

// TestStallCutsResponseShort: a leaf that never arrives mid-stream ends the
// response early; the client sees fewer bytes than Content-Length and every
// byte it got is right.
func TestStallCutsResponseShort(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, gateway.Config{StallTimeout: 200 * time.Millisecond, Readahead: -1})
	ctx := context.Background()
	ix, _ := dag.NewIndex(16)
	var third cid.Cid
	i := 0
	for leaf, err := range ix.Leaves(ctx, f.store, f.videoCID, 0, int64(len(f.video))) {
		if err != nil {
			t.Fatal(err)
		}
		if i++; i == 3 {
			third = leaf.Cid
		}
	}
	f.getter.hang(third)
	resp, err := http.Get(f.url + "/video.mp4")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", err)
	}
	if len(body) != 2<<20 || !bytes.Equal(body, f.video[:len(body)]) {
		t.Errorf("got %d bytes before the stall, want the first 2 MiB intact", len(body))
	}
	waitIdle(t, f.getter)
}

// TestClientGoneStopsFetching: when the client disconnects mid-stream,
// every fetch ends and no goroutine is left behind.
func TestClientGoneStopsFetching(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, gateway.Config{Readahead: -1})
	ix, _ := dag.NewIndex(16)
	for leaf, err := range ix.Leaves(context.Background(), f.store, f.videoCID, 2<<20, 2<<20+1) {
		if err != nil {
			t.Fatal(err)
		}
		f.getter.hang(leaf.Cid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/video.mp4", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.getter.inFlight.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the hanging leaf is being fetched
	}
	cancel()
	resp.Body.Close()
	waitIdle(t, f.getter)
}

func waitIdle(t *testing.T, g *faultyGetter) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches still running", g.inFlight.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifyNoLeaks checks, after the test and its cleanups, that no goroutine
// it started is still running.
func verifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
}

// videoLeaves returns the CIDs of the fixture video's leaves, in order.
func videoLeaves(t *testing.T, f *fixture) []cid.Cid {
	t.Helper()
	ix, _ := dag.NewIndex(16)
	var leaves []cid.Cid
	for leaf, err := range ix.Leaves(context.Background(), f.store, f.videoCID, 0, int64(len(f.video))) {
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf.Cid)
	}
	return leaves
}

// TestReadahead: after a range is served, the next Readahead leaves are
// fetched in the background, and no more.
func TestReadahead(t *testing.T) {
	f := newFixture(t, gateway.Config{Readahead: 2})
	leaves := videoLeaves(t, f)
	if len(leaves) != 4 {
		t.Fatalf("%d leaves, want 4", len(leaves))
	}
	resp, _ := do(t, "GET", f.url+"/video.mp4", "Range", "bytes=0-99")
	if resp.StatusCode != 206 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.getter.count(leaves[1]) == 0 || f.getter.count(leaves[2]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the two leaves after the range were not read ahead")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitIdle(t, f.getter)
	if n := f.getter.count(leaves[3]); n != 0 {
		t.Errorf("readahead went past its budget: the fourth leaf was fetched %d times", n)
	}
}

// localStore is an edge's store holding the given blocks of the fixture.
type localStore struct {
	dag.BlockGetter                 // its reads
	index           dag.BlockGetter // where its sizes are looked up, unread
	held            map[cid.Cid]bool
}

func (l localStore) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if !l.held[c] {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return l.BlockGetter.GetBlock(ctx, c)
}

// Size answers from the index, without reading the block.
func (l localStore) Size(ctx context.Context, c cid.Cid) (int, error) {
	if !l.held[c] {
		return 0, ipld.ErrNotFound{Cid: c}
	}
	blk, err := l.index.GetBlock(ctx, c)
	if err != nil {
		return 0, err
	}
	return len(blk.RawData()), nil
}

func (l localStore) ReadAt(ctx context.Context, c cid.Cid, p []byte, off int64) (int, error) {
	blk, err := l.GetBlock(ctx, c)
	if err != nil {
		return 0, err
	}
	if data := blk.RawData(); off < int64(len(data)) {
		return copy(p, data[off:]), nil
	}
	return 0, nil
}

// TestReadaheadSkipsLocalLeaves: readahead does not read the leaves the
// edge stores already (on a warm edge, reading them would take the cores
// from the requests being served); it fetches the others.
func TestReadaheadSkipsLocalLeaves(t *testing.T) {
	f := newFixture(t, gateway.Config{Readahead: -1})
	leaves := videoLeaves(t, f)
	g := &faultyGetter{g: f.store}
	local := localStore{countingGetter{f.store, g}, f.store, map[cid.Cid]bool{leaves[1]: true}}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return g }, gateway.Config{Readahead: 2, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", httptestServer(t, h)+"/ipfs/"+f.videoCID.String(), "Range", "bytes=0-99")
	if resp.StatusCode != 206 || !bytes.Equal(body, f.video[:100]) {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.count(leaves[2]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the leaf after the local one was not read ahead")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitIdle(t, g)
	if n := g.count(leaves[1]); n != 0 {
		t.Errorf("the local leaf was read %d times by readahead", n)
	}
	if n := g.count(leaves[3]); n != 0 {
		t.Errorf("readahead went past its budget of two leaves (one local): the fourth was fetched %d times", n)
	}
}

// countingGetter reads blocks from g, counting each read in counts.
type countingGetter struct {
	g      dag.BlockGetter
	counts *faultyGetter
}

func (c countingGetter) GetBlock(ctx context.Context, k cid.Cid) (blocks.Block, error) {
	c.counts.mu.Lock()
	if c.counts.fetched == nil {
		c.counts.fetched = map[cid.Cid]int{}
	}
	c.counts.fetched[k]++
	c.counts.mu.Unlock()
	return c.g.GetBlock(ctx, k)
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newSessionHandler returns an open path gateway whose blocks come from
// the sessions open returns, over an empty
// store unless cfg names one.
func newSessionHandler(open func(context.Context) dag.BlockGetter, cfg gateway.Config) (*gateway.Handler, error) {
	if cfg.Local == nil {
		cfg.Local = emptyStore()
	}
	if cfg.Sources == nil {
		cfg.Sources = []hedge.Source{testutil.PeerSessions(func(ctx context.Context) hedge.Getter { return open(ctx) })}
	}
	if cfg.Resolvers == nil {
		cfg.Resolvers = []gateway.Resolver{gateway.IPFSPaths{}}
	}
	if cfg.Policies == nil {
		cfg.Policies = []gateway.Policy{testutil.OpenPolicy{}}
	}
	return gateway.NewHandler(cfg)
}

// TestReadaheadDagPbLeaves: with dag-pb leaves (CIDv0, Kubo's classic
// layout), whose bytes the index reads to find, readahead still stops
// after its budget of leaves instead of reading the rest of the file.
func TestReadaheadDagPbLeaves(t *testing.T) {
	data := testutil.Bytes("dagpb", 2<<20)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	ds := merkledag.NewDAGService(blockservice.New(bs, nil))
	db, err := (&helpers.DagBuilderParams{Dagserv: ds, Maxlinks: 174}).New(boxochunker.NewSizeSplitter(bytes.NewReader(data), 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	g := &faultyGetter{g: blockservice.New(bs, nil)}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return g }, gateway.Config{Readahead: 2})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", httptestServer(t, h)+"/ipfs/"+nd.Cid().String(), "Range", "bytes=0-99")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[:100]) {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	time.Sleep(300 * time.Millisecond) // readahead runs after the response
	waitIdle(t, g)
	g.mu.Lock()
	fetched := len(g.fetched)
	g.mu.Unlock()
	// The root and its 1 interior level, the range's leaf, and 2 leaves
	// of readahead: the file has 128 leaves.
	if fetched > 8 {
		t.Errorf("%d blocks fetched for a 100-byte range with readahead 2 (the file has 128 leaves)", fetched)
	}
}

// TestScriptableContentSandboxed: HTML and SVG served on the gateway's
// shared origin carry a Content-Security-Policy sandbox (scripts run, in
// an opaque origin); media does not.
func TestScriptableContentSandboxed(t *testing.T) {
	f := newFixture(t, gateway.Config{Readahead: -1})
	cases := []struct {
		url     string
		sandbox bool
	}{
		{f.url + "/page/", true},
		{f.url + "/video.mp4?filename=evil.html", false}, // a name inside a directory keeps its own type
		{f.url[:len(f.url)-len(f.dir.String())] + f.videoCID.String() + "?filename=evil.html", true},
		{f.url[:len(f.url)-len(f.dir.String())] + f.videoCID.String() + "?filename=a.svg", true},
		{f.url + "/video.mp4", false},
	}
	for _, tc := range cases {
		resp, _ := do(t, "GET", tc.url, "Range", "bytes=0-9")
		csp := resp.Header.Get("Content-Security-Policy")
		if got := strings.HasPrefix(csp, "sandbox"); got != tc.sandbox {
			t.Errorf("%s (%s): Content-Security-Policy %q, want sandboxed %v", tc.url, resp.Header.Get("Content-Type"), csp, tc.sandbox)
		}
		if tc.sandbox && strings.Contains(csp, "allow-same-origin") {
			t.Errorf("%s: the sandbox keeps the gateway's origin: %q", tc.url, csp)
		}
	}
}

// TestDocuments: blocks of the document codecs are served as they are
// stored (IPIP-0524), under their own media type or the plain one asked
// for, with ranges, their own ETag and a file name; a browser gets an HTML
// preview; a UnixFS file of JSON with no name is sniffed as JSON.
func TestDocuments(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	data := []byte(`{"hello":"world","n":[1,2,3]}`)
	djson, _ := cid.Prefix{Version: 1, Codec: cid.DagJSON, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	if err := f.store.AddBlock(context.Background(), mustBlock(t, data, djson)); err != nil {
		t.Fatal(err)
	}
	base := f.url[:len(f.url)-len(f.dir.String())]
	for _, c := range []struct {
		name, query, accept, ctype, disposition string
	}{
		{"no format", "", "", "application/vnd.ipld.dag-json", `inline; filename="` + djson.String() + `.json"`},
		{"format=dag-json", "?format=dag-json", "", "application/vnd.ipld.dag-json", ""},
		{"format=json", "?format=json", "", "application/json", ""},
		{"Accept: application/json", "", "application/json", "application/json", ""},
		{"download", "?filename=x.json&download=true", "", "application/vnd.ipld.dag-json", `attachment; filename="x.json"`},
	} {
		resp, body := do(t, "GET", base+djson.String()+c.query, "Accept", c.accept)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: status %d, Content-Type %q, body %q; want 200, %q, the block", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.ctype)
		}
		if c.disposition != "" && resp.Header.Get("Content-Disposition") != c.disposition {
			t.Errorf("%s: Content-Disposition %q, want %q", c.name, resp.Header.Get("Content-Disposition"), c.disposition)
		}
	}
	resp, body := do(t, "GET", base+djson.String(), "Range", "bytes=1-7")
	if resp.StatusCode != 206 || string(body) != string(data[1:8]) {
		t.Errorf("a range of a document: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", base+djson.String()+"?format=dag-json"); !strings.Contains(resp.Header.Get("Etag"), djson.String()+".dag-json") {
		t.Errorf("ETag %q, want it to name the CID and dag-json", resp.Header.Get("Etag"))
	}
	resp, body = do(t, "GET", base+djson.String()+"/", "Accept", "text/html")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("</html>")) || !bytes.Contains(body, []byte("hello")) {
		t.Errorf("a browser's preview: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	jsonFile, err := ingest.Import(context.Background(), merkledag.NewDAGService(f.store), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, "GET", base+jsonFile.String()); resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("a UnixFS file of JSON: Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
}

// TestTAR: ?format=tar and Accept: application/x-tar give the tree under
// the CID's name, every file byte-exact, with a weak ETag and attachment;
// a subpath is archived alone.
func TestTAR(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	for _, req := range []struct{ url, accept string }{
		{f.url + "?format=tar", ""},
		{f.url, "application/x-tar"},
	} {
		resp, body := do(t, "GET", req.url, "Accept", req.accept)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" {
			t.Fatalf("%s (Accept %q): status %d, %q", req.url, req.accept, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		wantHeader(t, resp, "Etag", `W/"`+f.dir.String()+`.x-tar"`)
		wantHeader(t, resp, "Content-Disposition", `attachment; filename="`+f.dir.String()+`.tar"`)
		got := map[string][]byte{}
		tr := tar.NewReader(bytes.NewReader(body))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			got[h.Name] = data
		}
		root := f.dir.String()
		for name, want := range map[string][]byte{"video.mp4": f.video, "noext": f.noext, "page/index.html": []byte("<html>page</html>"), "bare/x": []byte("x")} {
			if !bytes.Equal(got[root+"/"+name], want) {
				t.Errorf("%s in the TAR: %d bytes, want %d", name, len(got[root+"/"+name]), len(want))
			}
		}
		if _, ok := got[root]; !ok {
			t.Errorf("no root directory entry among %d", len(got))
		}
	}
	resp, _ := do(t, "GET", f.url+"?format=tar&filename="+url.QueryEscape("testтест.tar"))
	wantHeader(t, resp, "Content-Disposition", `attachment; filename="test____.tar"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.tar`)
	resp, body := do(t, "GET", f.url+"/page?format=tar")
	tr := tar.NewReader(bytes.NewReader(body))
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if resp.StatusCode != 200 || len(names) != 2 {
		t.Errorf("a subpath's TAR: status %d, entries %v; want the directory and its index.html", resp.StatusCode, names)
	}
}

// TestSymlink: a UnixFS symbolic link is served as itself, its target as
// the body, never followed (the path gateway spec); a path through it
// does not exist.
func TestSymlink(t *testing.T) {
	ctx := context.Background()
	bs := blockservice.New(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), nil)
	ds := merkledag.NewDAGService(bs)
	data, err := unixfs.SymlinkData("foo")
	if err != nil {
		t.Fatal(err)
	}
	link := merkledag.NodeWithData(data)
	if err := link.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}); err != nil {
		t.Fatal(err)
	}
	if err := ds.Add(ctx, link); err != nil {
		t.Fatal(err)
	}
	file, err := ingest.Import(ctx, ds, strings.NewReader("the file"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := ingest.Directory(ctx, ds, map[string]cid.Cid{"foo": file, "bar": link.Cid()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return bs }, gateway.Config{})
	if err != nil {
		t.Fatal(err)
	}
	base := httptestServer(t, h) + "/ipfs/" + dir.String()
	resp, body := do(t, "GET", base+"/bar")
	if resp.StatusCode != 200 || string(body) != "foo" {
		t.Errorf("the link: %d %q, want 200 with its target", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Content-Type", "inode/symlink")
	wantHeader(t, resp, "Etag", `"`+link.Cid().String()+`"`)
	if resp, _ := do(t, "GET", base+"/bar/x"); resp.StatusCode != 404 {
		t.Errorf("a path through the link: %d, want 404", resp.StatusCode)
	}
}

// readCounter is an edge's store holding every block, counting the blocks
// read whole and the bytes read in place.
type readCounter struct {
	hedge.Local
	mu      sync.Mutex
	whole   map[cid.Cid]int
	inPlace int64
}

func (r *readCounter) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	r.mu.Lock()
	r.whole[c]++
	r.mu.Unlock()
	return r.Local.GetBlock(ctx, c)
}

func (r *readCounter) ReadAt(ctx context.Context, c cid.Cid, p []byte, off int64) (int, error) {
	n, err := r.Local.ReadAt(ctx, c, p, off)
	r.mu.Lock()
	r.inPlace += int64(n)
	r.mu.Unlock()
	return n, err
}

// TestWarmRangesReadOnlyTheirBytes: on an edge that holds a file, a range
// request reads the range's bytes in place and no leaf whole, and once the
// file's root is decoded, the next request does not read it again. Before,
// each 100-byte range read its whole 1 MiB leaf and decoded the root,
// and then the last byte of each leaf it touched.
func TestWarmRangesReadOnlyTheirBytes(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	leaves := videoLeaves(t, f)
	local := &readCounter{Local: hedge.LocalBlockstore(f.store.Blockstore()), whole: map[cid.Cid]int{}}
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return f.getter }, gateway.Config{Readahead: -1, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, h) + "/ipfs/" + f.videoCID.String()
	for i, r := range [][2]int{{1000, 1099}, {2<<20 + 7, 2<<20 + 106}, {3<<20 - 95, 3<<20 + 4}} {
		local.mu.Lock()
		clear(local.whole)
		local.inPlace = 0
		local.mu.Unlock()
		resp, body := do(t, "GET", url, "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		if resp.StatusCode != 206 || !bytes.Equal(body, f.video[r[0]:r[1]+1]) {
			t.Fatalf("range %d-%d: status %d, %d bytes, equal %v", r[0], r[1], resp.StatusCode, len(body), bytes.Equal(body, f.video[r[0]:r[1]+1]))
		}
		local.mu.Lock()
		for _, l := range leaves {
			if n := local.whole[l]; n > 0 {
				t.Errorf("range %d-%d: leaf %s read whole %d times", r[0], r[1], l, n)
			}
		}
		if n := local.whole[f.videoCID]; i > 0 && n > 0 {
			t.Errorf("range %d-%d: the file's root, decoded before, was read %d more times", r[0], r[1], n)
		}
		// 100 bytes, and nothing more: that a leaf is held, and as long
		// as its parent says, is told by its size in the index. (It was
		// told by reading its last byte, which reads a whole blob value
		// in pebble.)
		if local.inPlace != 100 {
			t.Errorf("range %d-%d: %d bytes read in place for 100", r[0], r[1], local.inPlace)
		}
		local.mu.Unlock()
	}
}
