package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/caddymodule/cli"
	"github.com/pacman-cdn/pacman/internal/testutil"
	_ "github.com/pacman-cdn/pacman/plugins/all"
)

// TestDemo runs the demo with two files and checks that it prints the
// landing page's URL and one URL per file, in order, that serve the files
// byte-exact from the seeders, and that it stops cleanly.
func TestDemo(t *testing.T) {
	src := t.TempDir()
	a, b := filepath.Join(src, "a.webm"), filepath.Join(src, "b.bin")
	dataA, dataB := testutil.Bytes("a", 3<<20+1), testutil.Bytes("b", 1000)
	if err := os.WriteFile(a, dataA, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, dataB, 0o644); err != nil {
		t.Fatal(err)
	}
	listen, lines, pr, cancel, done := startDemo(t, []string{a, b})
	defer cancel()
	if !lines.Scan() || lines.Text() != "http://"+listen+"/" {
		t.Fatalf("the first line is %q, want the landing page (error: %v)", lines.Text(), lines.Err())
	}
	for i, want := range [][]byte{dataA, dataB} {
		if !lines.Scan() {
			t.Fatalf("demo printed %d URLs, want 2 (error: %v)", i, <-done)
		}
		url := lines.Text()
		if !strings.HasPrefix(url, "http://"+listen+"/ipfs/") {
			t.Fatalf("URL %q", url)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, want) {
			t.Fatalf("%s: %d bytes, err %v, equal %v", url, len(body), err, bytes.Equal(body, want))
		}
		if i == 0 && resp.Header.Get("Content-Type") != "video/webm" {
			t.Errorf("Content-Type %q, want video/webm from ?filename=", resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/favicon.ico", "/nothing/here"} {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("no content at this path")) {
			t.Errorf("GET %s: %d %q, want 404 with its reason", path, resp.StatusCode, body)
		}
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop")
	}
}

// TestDemoMedia runs the demo as a new user does, with no files: the
// landing page plays the embedded video as MP4 and as HLS (with the
// vendored hls.js, served by the demo itself), the files arrive byte-exact
// from the seeders, and the page's figures then show bytes from peers.
func TestDemoMedia(t *testing.T) {
	listen, lines, pr, cancel, done := startDemo(t, nil)
	defer cancel()
	var urls []string
	for range 3 {
		if !lines.Scan() {
			t.Fatalf("the demo printed %v (error: %v)", urls, <-done)
		}
		urls = append(urls, lines.Text())
	}
	// Then the dashboard, the data directory, and a line that adds a
	// file to the running demo as pasted.
	var told []string
	for range 4 {
		if !lines.Scan() {
			t.Fatalf("the demo printed %v after its URLs (error: %v)", told, <-done)
		}
		told = append(told, lines.Text())
	}
	go io.Copy(io.Discard, pr)
	if want := "dashboard: http://" + listen + "/pacman/stats"; told[0] != want {
		t.Errorf("the demo printed %q, want %q", told[0], want)
	}
	dataDir, ok := strings.CutPrefix(strings.TrimSuffix(told[1], " (removed when the demo stops)"), "data dir:  ")
	if fi, err := os.Stat(dataDir); !ok || err != nil || !fi.IsDir() {
		t.Errorf("the demo's data dir line %q: %v", told[1], err)
	}
	args := strings.Fields(told[3])
	if len(args) != 6 || args[1] != "pacman" || args[2] != "add" || args[3] != "--address" || args[5] != "FILE" {
		t.Fatalf("the line to paste is %q", told[3])
	}
	added := filepath.Join(t.TempDir(), "mine.bin")
	mine := testutil.Bytes("mine", 1<<20+3)
	if err := os.WriteFile(added, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := testutil.Pacman(t, &out, "add", "--address", args[4], added); err != nil {
		t.Fatal(err)
	}
	get := func(u string) (*http.Response, []byte) {
		t.Helper()
		return demoDo(t, http.MethodGet, u)
	}
	mineCID, _, _ := strings.Cut(out.String(), " ")
	if resp, body := get("http://" + listen + "/ipfs/" + mineCID); resp.StatusCode != 200 || !bytes.Equal(body, mine) {
		t.Errorf("the file added as the demo says: %d, equal %v", resp.StatusCode, bytes.Equal(body, mine))
	}
	resp, page := get(urls[0])
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("the landing page: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The page plays the files by the catalog's names, which the origin
	// holds too.
	mp4, hls := "/media/clip.mp4", "/media/hls/index.m3u8"
	for _, want := range []string{`<video controls muted playsinline preload="metadata" src="` + mp4 + `">`, `data-hls="` + hls + `"`, `<script src="/hls.light.min.js">`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the landing page lacks %s:\n%s", want, page)
		}
	}
	if resp, js := get("http://" + listen + "/hls.light.min.js"); resp.StatusCode != 200 || !bytes.Contains(js, []byte("Hls")) {
		t.Errorf("hls.js: %d, %d bytes", resp.StatusCode, len(js))
	}
	clip, err := os.ReadFile("demoassets/media/clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{urls[1], "http://" + listen + mp4} {
		if resp, body := get(u); resp.StatusCode != 200 || !bytes.Equal(body, clip) || resp.Header.Get("Content-Type") != "video/mp4" {
			t.Errorf("the MP4 at %s: %d %q, equal %v", u, resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(body, clip))
		}
	}
	segment, _ := os.ReadFile("demoassets/media/hls/segment1.ts")
	if resp, body := get("http://" + listen + strings.TrimSuffix(hls, "index.m3u8") + "segment1.ts"); resp.StatusCode != 200 || !bytes.Equal(body, segment) {
		t.Errorf("an HLS segment: %d, equal %v", resp.StatusCode, bytes.Equal(body, segment))
	}
	// The page's bars: what the gateway received from each seeder.
	var state struct {
		Peers []struct{ Name, ID string }
	}
	if _, body := get("http://" + listen + "/demo/state"); json.Unmarshal(body, &state) != nil || len(state.Peers) != 2 {
		t.Fatalf("the demo's state: %s", body)
	}
	// libp2p's byte counters move once a second.
	sent := map[string]int64{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var peers struct {
			Peers []struct {
				ID      string
				TotalIn int64 `json:"total_in"`
			}
		}
		_, body := get("http://" + listen + "/pacman/stats")
		if err := json.Unmarshal(body, &peers); err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, s := range state.Peers {
			for _, p := range peers.Peers {
				if p.ID == s.ID {
					sent[s.Name] = p.TotalIn
					total += p.TotalIn
				}
			}
		}
		if total >= int64(len(clip)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("bytes sent by each seeder: %v; want the clip's %d in all", sent, len(clip))
			break
		}
	}
	var stats struct {
		Figures struct {
			Fetched map[string]float64
			Peers   int
		}
	}
	_, body := get("http://" + listen + "/pacman/stats")
	if err := json.Unmarshal(body, &stats); err != nil || stats.Figures.Fetched["peers"] < float64(len(clip)+len(segment)) || stats.Figures.Peers < 2 {
		t.Errorf("the figures after the fetches: %s (%v); want the clip's bytes from peers, and 2 peers", body, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo stopped with %v", err)
	}
}

// demoDo sends a request with no body and returns the response and its
// whole body.
func demoDo(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// startDemo runs the demo with two seeders and files on a free port, and
// returns where it listens, its output's lines (and the pipe under them,
// to drain), how to stop it and its result.
func startDemo(t *testing.T, files []string) (string, *bufio.Scanner, io.Reader, context.CancelFunc, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	// The admin endpoint on a free port: the demo prints it in the line
	// to paste for adding a file.
	la, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := la.Addr().String()
	la.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- cli.RunDemo(ctx, files, 2, listen, admin, pw)
		pw.Close()
	}()
	return listen, bufio.NewScanner(pr), pr, cancel, done
}

// TestDemoControls: the page's buttons do what they say. A second edge
// started after a play fetches the clip from the gateway alone, so the
// gateway seeds back; with every seeder stopped, a segment never played
// still arrives byte-exact, from the origin, and a further stop says
// there is none left.
func TestDemoControls(t *testing.T) {
	listen, lines, pr, cancel, done := startDemo(t, nil)
	defer func() { cancel(); <-done }()
	if !lines.Scan() {
		t.Fatalf("the demo printed nothing (error: %v)", <-done)
	}
	go io.Copy(io.Discard, pr)
	base := "http://" + listen
	fetch := func(method, path string) (int, []byte) {
		t.Helper()
		resp, body := demoDo(t, method, base+path)
		return resp.StatusCode, body
	}
	var figures struct {
		Figures struct {
			Fetched     map[string]float64
			BytesSeeded float64 `json:"bytes_seeded"`
		}
	}
	stats := func() {
		t.Helper()
		if _, body := fetch("GET", "/pacman/stats"); json.Unmarshal(body, &figures) != nil {
			t.Fatalf("the figures: %s", body)
		}
	}
	clip, _ := os.ReadFile("demoassets/media/clip.mp4")
	if code, body := fetch("GET", "/media/clip.mp4"); code != 200 || !bytes.Equal(body, clip) {
		t.Fatalf("the clip: %d, equal %v", code, bytes.Equal(body, clip))
	}
	if code, body := fetch("POST", "/demo/second-edge"); code != 200 {
		t.Fatalf("starting the second edge: %d %s", code, body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if stats(); figures.Figures.BytesSeeded >= float64(len(clip)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway seeded back %.0f bytes, want the clip's %d to the second edge", figures.Figures.BytesSeeded, len(clip))
		}
	}
	for i := range 2 {
		if code, body := fetch("POST", "/demo/stop-seeder"); code != 200 || !strings.Contains(string(body), "stopped") {
			t.Fatalf("stopping seeder %d: %d %s", i+1, code, body)
		}
	}
	if code, body := fetch("POST", "/demo/stop-seeder"); code != http.StatusConflict {
		t.Errorf("stopping a seeder when none is left: %d %s", code, body)
	}
	segment, _ := os.ReadFile("demoassets/media/hls/segment3.ts")
	if code, body := fetch("GET", "/media/hls/segment3.ts"); code != 200 || !bytes.Equal(body, segment) {
		t.Fatalf("a segment after the seeders stopped: %d, equal %v", code, bytes.Equal(body, segment))
	}
	if stats(); figures.Figures.Fetched["origin"] < float64(len(segment)) {
		t.Errorf("fetched from the origin: %.0f bytes, want the segment's %d", figures.Figures.Fetched["origin"], len(segment))
	}
}
