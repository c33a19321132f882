package originpull

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

// webOrigin is a plain web server whose files can change, counting the
// body bytes it sends.
type webOrigin struct {
	mu    sync.Mutex
	files map[string]originFile
	sent  atomic.Int64
	asked atomic.Int64
	srv   *httptest.Server
}

type originFile struct {
	data []byte
	etag string
	// cacheControl, if set, is sent as Cache-Control; lie adds bytes to
	// the Content-Length; noRange answers ranges with the whole file.
	cacheControl string
	lie          int
	noRange      bool
	// rate, if set, is the bytes per second a whole-file answer is sent at.
	rate int
	// cutAfter, if set, ends every whole-file answer's connection after
	// that many bytes.
	cutAfter int
	// latency, if set, is how long every answer waits before its headers.
	latency time.Duration
}

func newOrigin(t *testing.T) *webOrigin {
	o := &webOrigin{files: map[string]originFile{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.asked.Add(1)
		o.mu.Lock()
		f, ok := o.files[r.URL.Path]
		o.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		time.Sleep(f.latency)
		cw := &countingWriter{ResponseWriter: w, n: &o.sent}
		w.Header().Set("ETag", f.etag)
		if f.cacheControl != "" {
			w.Header().Set("Cache-Control", f.cacheControl)
		}
		switch {
		case f.cutAfter > 0 && r.Header.Get("Range") == "":
			w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
			cw.Write(f.data[:f.cutAfter])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case f.lie > 0:
			w.Header().Set("Content-Length", fmt.Sprint(len(f.data)+f.lie))
			cw.Write(f.data)
		case f.noRange:
			w.Header().Set("Content-Type", "video/mp4")
			cw.Write(f.data)
		case f.rate > 0 && r.Header.Get("Range") == "":
			w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
			for off := 0; off < len(f.data); off += 64 << 10 {
				if _, err := cw.Write(f.data[off:min(off+64<<10, len(f.data))]); err != nil {
					return
				}
				time.Sleep(time.Second * time.Duration(64<<10) / time.Duration(f.rate))
			}
		default:
			http.ServeContent(cw, r, r.URL.Path, time.Time{}, bytes.NewReader(f.data))
		}
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *webOrigin) set(path string, f originFile) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f.data == nil {
		delete(o.files, path)
		return
	}
	o.files[path] = f
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// edge is a gateway over a node whose only resolver is a puller of o.
type edge struct {
	p   *Puller
	n   *node.Node
	url string
}

func newEdge(t *testing.T, o *webOrigin, dir string, revalidate time.Duration, maxPullSize int64) *edge {
	n := testutil.NewNode(t)
	p, err := New(Config{
		Origin:      o.srv.URL,
		Dir:         dir,
		Import:      func(ctx context.Context, r io.Reader) (cid.Cid, error) { return ingest.Import(ctx, n.DAG(), r) },
		Store:       n.Blockstore(),
		Revalidate:  revalidate,
		MaxPullSize: maxPullSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	gw, err := testutil.OpenGateway(n, gateway.Config{Resolvers: []gateway.Resolver{p}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &edge{p: p, n: n, url: srv.URL}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// cidOf is the CID `caddy pacman add` gives data.
func cidOf(t *testing.T, data []byte) cid.Cid {
	_, _, dag := testutil.MemStore()
	c, err := ingest.Import(context.Background(), dag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitWarm waits until path is served from the CID of data.
func (e *edge) waitWarm(t *testing.T, path string, data []byte) {
	t.Helper()
	want := `"` + cidOf(t, data).String() + `"`
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodHead, e.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get("ETag") == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not served from %s within 10 s", path, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestColdThenWarm: a URL no CID is known for is proxied from the origin
// at once, range and all, with the origin's headers; the file is pulled
// once meanwhile, and then served from its CID (the one `caddy pacman add`
// gives the same bytes) with no byte from the origin, the CID as its
// ETag and a max-age, never immutable.
func TestColdThenWarm(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("movie", 5<<20+12345)
	o.set("/v/movie.mp4", originFile{data: data, etag: `"v1"`})
	e := newEdge(t, o, t.TempDir(), time.Hour, 0)

	resp, body := get(t, e.url+"/v/movie.mp4", "Range", "bytes=1000-2999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1000:3000]) {
		t.Fatalf("cold range: status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, data[1000:3000]))
	}
	if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 1000-2999/%d", len(data)); got != want {
		t.Errorf("cold Content-Range %q, want %q", got, want)
	}
	if resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("ETag") != `"v1"` {
		t.Errorf("cold headers: Content-Type %q, ETag %q; want the origin's", resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
	}

	e.waitWarm(t, "/v/movie.mp4", data)
	if sent := o.sent.Load(); sent != int64(len(data)) {
		t.Errorf("the origin sent %d bytes, want one pull (%d): the cold range is read from the pull's body", sent, len(data))
	}
	before := o.sent.Load()
	resp, body = get(t, e.url+"/v/movie.mp4")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("warm GET: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data))
	}
	cc := resp.Header.Get("Cache-Control")
	if !strings.Contains(cc, "max-age=") || strings.Contains(cc, "immutable") {
		t.Errorf("warm Cache-Control %q: want a max-age, never immutable", cc)
	}
	resp, body = get(t, e.url+"/v/movie.mp4", "Range", "bytes=3000000-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[3000000:]) {
		t.Errorf("warm range: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data[3000000:]))
	}
	if sent := o.sent.Load() - before; sent != 0 {
		t.Errorf("warm requests took %d bytes from the origin, want 0", sent)
	}

	// A restarted edge remembers the URL: served warm at once.
	e2 := newEdge(t, o, e.p.cfg.Dir, time.Hour, 0)
	if err := copyBlocks(e.n, e2.n, cidOf(t, data)); err != nil {
		t.Fatal(err)
	}
	asked := o.asked.Load()
	resp, body = get(t, e2.url+"/v/movie.mp4")
	if resp.Header.Get("ETag") != `"`+cidOf(t, data).String()+`"` || !bytes.Equal(body, data) || o.asked.Load() != asked {
		t.Errorf("after a restart: ETag %q, equal %v, %d origin requests; want the CID, the bytes and none",
			resp.Header.Get("ETag"), bytes.Equal(body, data), o.asked.Load()-asked)
	}
}

// TestColdViewersShareOnePull: viewers who start a cold file together
// are served from the one pull's body as it arrives, whole files and
// ranges byte-exact, and the origin sends the file once; a seek further
// on than the origin takes to answer (50 ms here) is proxied at once
// instead of waiting for the pull.
// Before, every cold request was its own origin request: the origin sent
// the file once per viewer, plus the pull.
func TestColdViewersShareOnePull(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("premiere", 24<<20)
	o.set("/v/premiere.mp4", originFile{data: data, etag: `"p1"`, rate: 12 << 20, latency: 50 * time.Millisecond}) // the pull takes 2 s
	e := newEdge(t, o, t.TempDir(), time.Hour, 0)

	type result struct {
		name   string
		status int
		ok     bool
		took   time.Duration
	}
	ranges := map[string][2]int{"whole 1": {0, len(data)}, "whole 2": {0, len(data)}, "whole 3": {0, len(data)},
		"start": {0, 1 << 20}, "near": {100000, 3 << 20}, "seek": {20 << 20, len(data)}}
	results := make(chan result, len(ranges))
	start := time.Now()
	for name, rg := range ranges {
		go func() {
			var hdr []string
			if rg != [2]int{0, len(data)} {
				hdr = []string{"Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]-1)}
			}
			resp, body := get(t, e.url+"/v/premiere.mp4", hdr...)
			results <- result{name, resp.StatusCode, bytes.Equal(body, data[rg[0]:rg[1]]), time.Since(start)}
		}()
		if name == "whole 1" {
			time.Sleep(50 * time.Millisecond) // the first starts the pull
		}
	}
	var seek, firstWhole time.Duration
	for range ranges {
		r := <-results
		if !r.ok || (r.status != http.StatusOK && r.status != http.StatusPartialContent) {
			t.Errorf("%s: status %d, byte-exact %v", r.name, r.status, r.ok)
		}
		switch {
		case r.name == "seek":
			seek = r.took
		case strings.HasPrefix(r.name, "whole") && (firstWhole == 0 || r.took < firstWhole):
			firstWhole = r.took
		}
	}
	// A seek that waited for the pull would end with it, as the whole
	// files do; proxied, its 4 MiB take a sixth of the pull's 24. The
	// bound is relative because the race detector slows both alike.
	t.Logf("far seek %v, first whole file %v", seek, firstWhole)
	if seek > firstWhole/2 {
		t.Errorf("the far seek took %v and the first whole file %v: it waited for the pull instead of being proxied", seek, firstWhole)
	}
	e.waitWarm(t, "/v/premiere.mp4", data)
	tail := int64(len(data) - 20<<20)
	if sent := o.sent.Load(); sent != int64(len(data))+tail {
		t.Errorf("the origin sent %.2f× the file, want one pull and the far seek (%.2f×)",
			float64(sent)/float64(len(data)), float64(int64(len(data))+tail)/float64(len(data)))
	}
}

// TestPullResumesACutBody: a pull whose connection the origin cuts goes on
// with a Range request for the rest, conditional on the ETag it started
// with, and the viewer reading it meanwhile gets the whole file. Before, the
// pull failed, the viewer's body was cut, and the URL stayed cold.
func TestPullResumesACutBody(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("cut", 6<<20+7)
	o.set("/v/cut.mp4", originFile{data: data, etag: `"c1"`, cutAfter: 2 << 20})
	e := newEdge(t, o, t.TempDir(), time.Hour, 0)

	resp, body := get(t, e.url+"/v/cut.mp4")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("the viewer of a pull cut short: status %d, %d bytes of %d, equal %v", resp.StatusCode, len(body), len(data), bytes.Equal(body, data))
	}
	e.waitWarm(t, "/v/cut.mp4", data)
	if sent := o.sent.Load(); sent > int64(len(data))+(1<<20) {
		t.Errorf("the origin sent %.2f× the file, want it once and what the cut lost", float64(sent)/float64(len(data)))
	}
}

// copyBlocks puts the DAG under root held by from into to's store, as a
// restarted edge finds its own store.
func copyBlocks(from, to *node.Node, root cid.Cid) error {
	ctx := context.Background()
	nd, err := from.DAG().Get(ctx, root)
	if err != nil {
		return err
	}
	if err := to.DAG().Add(ctx, nd); err != nil {
		return err
	}
	for _, l := range nd.Links() {
		if err := copyBlocks(from, to, l.Cid); err != nil {
			return err
		}
	}
	return nil
}

// TestChangedAndGone: a changed origin file is served new within
// revalidate, while a response begun on the old one ends with the old
// bytes only; a file gone from the origin is 404 within revalidate.
func TestChangedAndGone(t *testing.T) {
	o := newOrigin(t)
	v1, v2 := testutil.Bytes("v1", 3<<20), testutil.Bytes("v2", 3<<20+7)
	o.set("/a.bin", originFile{data: v1, etag: `"1"`})
	e := newEdge(t, o, t.TempDir(), 200*time.Millisecond, 0)
	get(t, e.url+"/a.bin")
	e.waitWarm(t, "/a.bin", v1)

	// A reader of the old version, part-way through.
	resp, err := http.Get(e.url + "/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1000)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	o.set("/a.bin", originFile{data: v2, etag: `"2"`})
	time.Sleep(300 * time.Millisecond)
	if r2, body := get(t, e.url+"/a.bin"); r2.StatusCode != 200 || !bytes.Equal(body, v2) {
		t.Errorf("after the change: status %d, equal to the new file %v", r2.StatusCode, bytes.Equal(body, v2))
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(first, rest...), v1) {
		t.Errorf("a response begun before the change: %v, equal to the old file %v", err, bytes.Equal(append(first, rest...), v1))
	}
	e.waitWarm(t, "/a.bin", v2)

	o.set("/a.bin", originFile{})
	time.Sleep(300 * time.Millisecond)
	if r3, _ := get(t, e.url+"/a.bin"); r3.StatusCode != http.StatusNotFound {
		t.Errorf("a file gone from the origin: status %d, want 404", r3.StatusCode)
	}
}

// TestHostileOrigins: an origin that announces more bytes than it sends
// never gets its file pulled, and no client gets other bytes than it
// sent; one that ignores Range is served whole (RFC 9110 §14.2 lets it)
// and pulled; a file marked no-store is only proxied.
func TestHostileOrigins(t *testing.T) {
	o := newOrigin(t)
	short := testutil.Bytes("short", 2<<20)
	whole := testutil.Bytes("whole", 2<<20+3)
	private := testutil.Bytes("private", 1<<20)
	o.set("/short", originFile{data: short, etag: `"s"`, lie: 4096})
	o.set("/whole", originFile{data: whole, etag: `"w"`, noRange: true})
	o.set("/private", originFile{data: private, etag: `"p"`, cacheControl: "private, max-age=60"})
	e := newEdge(t, o, t.TempDir(), time.Hour, 0)

	req, _ := http.NewRequest(http.MethodGet, e.url+"/short", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || !bytes.Equal(body, short[:len(body)]) {
			t.Errorf("a lying origin's body: read error %v, a prefix of its bytes %v; want a body cut short", rerr, bytes.Equal(body, short[:len(body)]))
		}
	}
	resp, body := get(t, e.url+"/whole", "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, whole) {
		t.Errorf("an origin that ignores Range: status %d, equal %v; want its 200 and the whole file", resp.StatusCode, bytes.Equal(body, whole))
	}
	e.waitWarm(t, "/whole", whole)
	if resp, body := get(t, e.url+"/whole", "Range", "bytes=10-19"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, whole[10:20]) {
		t.Errorf("pulled, then a range: status %d, equal %v", resp.StatusCode, bytes.Equal(body, whole[10:20]))
	}
	get(t, e.url+"/private")
	time.Sleep(500 * time.Millisecond) // the pulls have ended
	for _, u := range []string{"/short", "/private"} {
		if rec, ok := e.p.records.get(e.p.base + strings.TrimPrefix(u, "/")); ok {
			t.Errorf("%s was pulled as %s", u, rec.Root)
		}
	}
	if resp, body := get(t, e.url+"/private"); !bytes.Equal(body, private) || resp.Header.Get("Cache-Control") != "private, max-age=60" {
		t.Errorf("a private file: equal %v, Cache-Control %q; want it proxied as the origin says", bytes.Equal(body, private), resp.Header.Get("Cache-Control"))
	}
}

// TestPathOutsideOrigin: a path that would name another file on some
// origins is refused before the origin is asked.
func TestPathOutsideOrigin(t *testing.T) {
	o := newOrigin(t)
	e := newEdge(t, o, t.TempDir(), time.Hour, 0)
	for _, p := range []string{"/v/..%2fsecret", "/v/%2e%2e/secret", "/v/a%5cb"} {
		if resp, _ := get(t, e.url+p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", p, resp.StatusCode)
		}
	}
	if n := o.asked.Load(); n != 0 {
		t.Errorf("the origin was asked %d times", n)
	}
}

// TestClientLeavesProxy: a client that leaves a cold response ends the
// origin's: the origin sends what fits in the buffers, not the file.
func TestClientLeavesProxy(t *testing.T) {
	o := newOrigin(t)
	big := testutil.Bytes("big", 64<<20)
	o.set("/big", originFile{data: big, etag: `"b"`})
	e := newEdge(t, o, t.TempDir(), time.Hour, 1<<20) // too large to pull: only proxied
	resp, err := http.Get(e.url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || !bytes.Equal(buf, big[:1<<20]) {
		t.Fatalf("the first MiB: %v", err)
	}
	resp.Body.Close()
	time.Sleep(500 * time.Millisecond)
	if sent := o.sent.Load(); sent > 24<<20 {
		t.Errorf("the origin sent %d MiB after the client left at 1 MiB", sent>>20)
	}
}

// TestSameValidatorsOtherBytes: an origin that changes a pulled file's
// bytes but not its ETag is caught at the first leaf fetched from it by
// range: no byte of it is served under the old CID, the change is
// counted, and the URL is pulled again as it is now.
func TestSameValidatorsOtherBytes(t *testing.T) {
	o := newOrigin(t)
	v1 := testutil.Bytes("same etag 1", 4<<20)
	v2 := testutil.Bytes("same etag 2", 4<<20)
	o.set("/f.bin", originFile{data: v1, etag: `"same"`})
	n := testutil.NewNode(t)
	obs := &countingObserver{}
	p, err := New(Config{
		Origin: o.srv.URL, Dir: t.TempDir(), Revalidate: time.Hour, Observer: obs,
		Import: func(ctx context.Context, r io.Reader) (cid.Cid, error) { return ingest.Import(ctx, n.DAG(), r) },
		Store:  n.Blockstore(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	src := &origin.Source{URL: o.srv.URL}
	if err := src.Init(); err != nil {
		t.Fatal(err)
	}
	gw, err := testutil.OpenGateway(n, gateway.Config{Resolvers: []gateway.Resolver{p}, Sources: []hedge.Source{leafSource{src, p}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	e := &edge{p: p, n: n, url: srv.URL}
	get(t, e.url+"/f.bin")
	e.waitWarm(t, "/f.bin", v1)

	// The cache evicts the file's last leaf; the origin's bytes change
	// under the same ETag.
	root, err := n.DAG().Get(context.Background(), cidOf(t, v1))
	if err != nil {
		t.Fatal(err)
	}
	last := root.Links()[len(root.Links())-1].Cid
	if err := n.Blockstore().DeleteBlock(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	o.set("/f.bin", originFile{data: v2, etag: `"same"`})
	resp, err := http.Get(e.url + "/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, v1[:len(body)]) {
		t.Errorf("served bytes other than the CID's: %d bytes, first difference at %d", len(body), firstDiff(body, v1))
	}
	if len(body) == len(v1) {
		t.Errorf("the whole old file was served, with its last leaf evicted and the origin changed")
	}
	if obs.changes() != 1 {
		t.Errorf("%d changes counted, want 1", obs.changes())
	}
	if resp, body := get(t, e.url+"/f.bin"); resp.StatusCode != 200 || !bytes.Equal(body, v2) {
		t.Errorf("the next request: status %d, the new bytes %v", resp.StatusCode, bytes.Equal(body, v2))
	}
	e.waitWarm(t, "/f.bin", v2)
}

// countingObserver counts the files pulled and the changes pullers
// observe.
type countingObserver struct {
	mu              sync.Mutex
	pulled, changed int
}

func (*countingObserver) OriginBytes(string, int64) {}
func (c *countingObserver) Changed()                { c.mu.Lock(); c.changed++; c.mu.Unlock() }
func (c *countingObserver) changes() int            { c.mu.Lock(); defer c.mu.Unlock(); return c.changed }
func (c *countingObserver) pulls() int              { c.mu.Lock(); defer c.mu.Unlock(); return c.pulled }

func (c *countingObserver) Pulled(result string) {
	if result == "pulled" {
		c.mu.Lock()
		c.pulled++
		c.mu.Unlock()
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
