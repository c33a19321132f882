package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestOriginPullThroughCaddy: an edge whose Caddyfile names only an
// existing origin (README's "In front of an existing origin"), with no
// CID and no import. The first request, a range, is read byte-exact from the pull as it arrives;
// the file is pulled once meanwhile and then served under the CID
// `caddy pacman add` gives the same bytes, with nothing more from the
// origin; a file replaced at the origin is served new within revalidate.
func TestOriginPullThroughCaddy(t *testing.T) {
	notShort(t)
	v1, v2 := testutil.Bytes("pull-v1", 20<<20+77), testutil.Bytes("pull-v2", 9<<20+5)
	var (
		sent atomic.Int64
		mu   sync.Mutex
		file = v1
		etag = `"v1"`
	)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/videos/movie.mp4" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		data, tag := file, etag
		mu.Unlock()
		w.Header().Set("ETag", tag)
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(countingResponse{w, &sent}, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(origin.Close)
	cidOf := func(data []byte) string {
		src := filepath.Join(t.TempDir(), "movie.mp4")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return addContent(t, t.TempDir(), src)
	}

	dir, _ := newDataDir(t)
	port, admin := freePort(t), freePort(t)
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(caddyfile, fmt.Appendf(nil, `{
	admin localhost:%d
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
	}
}

http://127.0.0.1:%d {
	route /stats {
		pacman_stats
	}
	pacman /videos/* {
		resolve origin_pull %s {
			revalidate 1s
		}
	}
}
`, admin, dir, freePort(t), port, origin.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	startCaddy(t, nil, "run", "--config", caddyfile, "--adapter", "caddyfile")
	url := fmt.Sprintf("http://127.0.0.1:%d/videos/movie.mp4", port)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port)) // not the file: nothing asks the origin yet
	if sent.Load() != 0 {
		t.Fatalf("the origin sent %d bytes before any request", sent.Load())
	}

	get := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return resp, body.Bytes()
	}
	// The first megabyte: read from the pull as it arrives. (A seek the
	// pull would reach later than the origin's own answer is proxied; on
	// loopback the origin answers in well under a millisecond.)
	resp, body := get("bytes=0-999999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, v1[:1000000]) {
		t.Fatalf("the first request, cold: status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, v1[:1000000]))
	}
	waitETag := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodHead, url, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.Header.Get("ETag") == `"`+want+`"` {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("not served from %s within 30 s", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitETag(cidOf(v1))
	pulled := sent.Load()
	// The cold range is read from the pull's body as it arrives: the
	// origin sends the file once (before the spool, the range as well).
	if max := int64(len(v1)) + 4096; pulled > max {
		t.Errorf("cold range and pull took %d bytes from the origin, want at most one file (%d)", pulled, max)
	}
	for range 2 {
		if resp, body := get(""); resp.StatusCode != 200 || !bytes.Equal(body, v1) {
			t.Errorf("warm GET: status %d, equal %v", resp.StatusCode, bytes.Equal(body, v1))
		}
		if resp, body := get("bytes=-1000"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, v1[len(v1)-1000:]) {
			t.Errorf("warm suffix range: status %d, equal %v", resp.StatusCode, bytes.Equal(body, v1[len(v1)-1000:]))
		}
	}
	if extra := sent.Load() - pulled; extra > 0 {
		t.Errorf("warm requests took %d bytes from the origin, want none", extra)
	}
	// The metrics say what the origin sent, and why.
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The route's own offload: its cold range came from the origin, its
	// two warm rounds from the store (two files and two 1000-byte tails).
	for _, line := range []string{
		fmt.Sprintf(`pacman_origin_pull_bytes_total{reason="pull"} %g`, float64(len(v1))),
		`pacman_origin_pull_pulls_total{result="pulled"} 1`,
		`pacman_origin_pull_pulling 0`,
		`pacman_route_delivered_bytes_total{route="/videos/*",source="origin"} 1e+06`,
		fmt.Sprintf(`pacman_route_delivered_bytes_total{route="/videos/*",source="local"} %g`, float64(2*len(v1)+2000)),
	} {
		if !bytes.Contains(metrics, []byte(line+"\n")) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if bytes.Contains(metrics, []byte(`reason="proxy"`)) {
		t.Errorf("/metrics counts proxied bytes; the cold range was the pull's")
	}
	// So does the dashboard.
	var dash struct {
		Figures struct {
			OriginPull   map[string]float64 `json:"origin_pull"`
			RouteOffload map[string]float64 `json:"route_offload"`
		} `json:"figures"`
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats", port)); err != nil {
		t.Error(err)
	} else {
		err = json.NewDecoder(resp.Body).Decode(&dash)
		resp.Body.Close()
		if err != nil || dash.Figures.OriginPull["proxy"] != 0 || dash.Figures.OriginPull["pull"] != float64(len(v1)) {
			t.Errorf("the dashboard's origin_pull figures: %v, %v; want none proxied and the file pulled", dash.Figures.OriginPull, err)
		}
		delivered := float64(2*len(v1) + 2000)
		if got, want := dash.Figures.RouteOffload["/videos/*"], delivered/(delivered+1e6); got < want-1e-9 || got > want+1e-9 {
			t.Errorf("the dashboard's offload of /videos/*: %v, want %v", got, want)
		}
		// And `caddy pacman stat`, to the operator at a terminal.
		out := caddyCmd(t, "pacman", "stat", "--address", fmt.Sprintf("localhost:%d", admin))
		want := fmt.Sprintf("offload       %.1f %% on route \"/videos/*\"", delivered/(delivered+1e6)*100)
		if !strings.Contains(out, "origin URLs   1 known\n") || !strings.Contains(out, want) {
			t.Errorf("caddy pacman stat said:\n%s\nwant the URL known and %q", out, want)
		}
	}

	mu.Lock()
	file, etag = v2, `"v2"`
	mu.Unlock()
	time.Sleep(1100 * time.Millisecond)
	if resp, body := get(""); resp.StatusCode != 200 || !bytes.Equal(body, v2) {
		t.Errorf("after the origin's file changed: status %d, equal to the new file %v", resp.StatusCode, bytes.Equal(body, v2))
	}
	waitETag(cidOf(v2))
}

// TestFleetOriginPullThroughCaddyfiles: three peered edges, each with the
// one origin_pull line. A URL's first request, to any edge, is proxied;
// the member that owns the URL pulls it once for the fleet, every edge
// then serves it under its CID, and the origin sends the proxied response
// and the one pull, and nothing for the other edges' viewers or a second
// round.
func TestFleetOriginPullThroughCaddyfiles(t *testing.T) {
	notShort(t)
	data, v2 := testutil.Bytes("fleet-pull", 24<<20+11), testutil.Bytes("fleet-pull v2", 3<<20+1)
	var (
		sent atomic.Int64
		mu   sync.Mutex
		file = data
	)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/videos/film.mp4" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		f := file
		mu.Unlock()
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, len(f)))
		http.ServeContent(countingResponse{w, &sent}, r, "film.mp4", time.Time{}, bytes.NewReader(f))
	}))
	t.Cleanup(origin.Close)
	src := filepath.Join(t.TempDir(), "film.mp4")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := `"` + addContent(t, t.TempDir(), src) + `"`
	urls, admins := startEdges(t, 3, nil, "pacman /videos/* {\n\t\tresolve origin_pull "+origin.URL+"\n\t}", "/")

	code, body, err := getBody(urls[0] + "/videos/film.mp4")
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("the first GET, cold: %d, equal %v, %v", code, bytes.Equal(body, data), err)
	}
	// The member that pulled the file tells the others its record before
	// any viewer asks them: each edge knows the URL.
	for i, a := range admins {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			m, err := adminMetrics(a)
			if err == nil && strings.Contains(m, "\npacman_origin_pull_urls_known 1\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge %d never knew the URL: %v", i, err)
			}
		}
	}
	for _, u := range urls {
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodHead, u+"/videos/film.mp4", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.Header.Get("ETag") == want {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not serve the file under %s within 30 s", u, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for round := range 2 {
		for _, u := range urls {
			code, body, err := getBody(u + "/videos/film.mp4")
			if err != nil || code != 200 || !bytes.Equal(body, data) {
				t.Errorf("round %d through %s: %d, equal %v, %v", round, u, code, bytes.Equal(body, data), err)
			}
		}
	}
	ratio := float64(sent.Load()) / float64(len(data))
	t.Logf("the origin sent %.3f× the file", ratio)
	if ratio > 1.05 {
		t.Errorf("the origin sent %.2f× the file, want one pull (1×): the first viewer reads the owner's pull as it arrives", ratio)
	}

	// The file changes at the origin; revalidate is a minute, but the
	// operator purges the folder through one edge, and the whole fleet
	// serves the new file at once.
	mu.Lock()
	file = v2
	mu.Unlock()
	out := caddyCmd(t, "pacman", "purge", "--address", admins[1], origin.URL+"/videos/")
	if !strings.Contains(out, "purged 1 URLs here and 2 on 2 fleet members") {
		t.Errorf("caddy pacman purge said %q", out)
	}
	for _, u := range urls {
		code, body, err := getBody(u + "/videos/film.mp4")
		if err != nil || code != 200 || !bytes.Equal(body, v2) {
			t.Errorf("after the purge, through %s: %d, %d bytes, the new file %v, %v", u, code, len(body), bytes.Equal(body, v2), err)
		}
	}
}

// TestReloadKeepsPulls: `caddy reload` while a new file is pulled, with
// the route's origin_pull unchanged, leaves the pull running: the viewer
// reading it gets the whole file, and the origin sends it once. Before,
// the reload cancelled the pull and cut the viewer's body short.
func TestReloadKeepsPulls(t *testing.T) {
	notShort(t)
	data := testutil.Bytes("reload", 24<<20)
	var sent atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"r1"`)
		if r.Header.Get("Range") != "" {
			http.ServeContent(countingResponse{w, &sent}, r, "", time.Time{}, bytes.NewReader(data))
			return
		}
		// The whole file at 8 MiB/s: the pull takes 3 s.
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		cw := countingResponse{w, &sent}
		for off := 0; off < len(data); off += 256 << 10 {
			if _, err := cw.Write(data[off : off+256<<10]); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}))
	t.Cleanup(origin.Close)
	dir, _ := newDataDir(t)
	port, admin, p2p := freePort(t), freePort(t), freePort(t)
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	write := func(extra string) {
		if err := os.WriteFile(caddyfile, fmt.Appendf(nil, `{
	admin localhost:%d
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
	}
}

http://127.0.0.1:%d {
	%s
	pacman /videos/* {
		resolve origin_pull %s
	}
}
`, admin, dir, p2p, port, extra, origin.URL), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	startCaddy(t, nil, "run", "--config", caddyfile, "--adapter", "caddyfile")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port))

	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/videos/film.mp4", port))
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{body, err}
	}()
	time.Sleep(time.Second) // a third of the pull
	write("respond /health 200")
	caddyCmd(t, "reload", "--config", caddyfile, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", admin))
	r := <-done
	if r.err != nil || !bytes.Equal(r.body, data) {
		t.Fatalf("the viewer across the reload: %d bytes of %d, %v", len(r.body), len(data), r.err)
	}
	if ratio := float64(sent.Load()) / float64(len(data)); ratio > 1.05 {
		t.Errorf("the origin sent %.2f× the file, want one pull across the reload", ratio)
	}
}
