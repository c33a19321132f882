package caddymodule_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestCatalogThroughCaddy: a friendly name from a catalog is served by a
// real Caddy with full Range support and no CID in the URL; editing the
// catalog changes the content and its ETag within a second, so a client
// revalidating with the old ETag gets the new file whole; responses carry
// the catalog's max-age, not immutable; unknown names are 404.
func TestCatalogThroughCaddy(t *testing.T) {
	v1, v2 := testutil.Bytes("catalog-v1", 3<<20+7), testutil.Bytes("catalog-v2", 2<<20+3)
	seeders1, root1 := testutil.Seeders(t, 1, v1)
	seeders2, root2 := testutil.Seeders(t, 1, v2)
	catalog := filepath.Join(t.TempDir(), "catalog.txt")
	if err := os.WriteFile(catalog, []byte("videos/movie.mp4 /ipfs/"+root1.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
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
	pacman {
		resolve catalog %s {
			ttl 30s
		}
		resolve ipfs
		policy open
	}
}
`, caddyDataDir(t), strings.Join(append(peerAddrs(seeders1), peerAddrs(seeders2)...), " "), catalog), "caddyfile")
	url := "http://localhost:9080/videos/movie.mp4"

	resp, body := fetch(t, url)
	if resp.StatusCode != 200 || !bytes.Equal(body, v1) {
		t.Fatalf("GET %s: status %d, %d bytes, equal %v", url, resp.StatusCode, len(body), bytes.Equal(body, v1))
	}
	etag1 := `"` + root1.String() + `"`
	for h, want := range map[string]string{
		"Etag":          etag1,
		"Cache-Control": "public, max-age=30",
		"X-Ipfs-Path":   "/ipfs/" + root1.String(),
		"Content-Type":  "video/mp4",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	resp, body = fetch(t, url, "Range", "bytes=1048570-1048600")
	if resp.StatusCode != 206 || !bytes.Equal(body, v1[1048570:1048601]) {
		t.Errorf("range across a leaf boundary: status %d, equal %v", resp.StatusCode, bytes.Equal(body, v1[1048570:1048601]))
	}
	resp, body = fetch(t, url, "Range", "bytes=0-9,2000000-2000009")
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, want := range [][]byte{v1[:10], v1[2000000:2000010]} {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("multi-range part %d: %v (status %d)", i, err, resp.StatusCode)
		}
		got, _ := io.ReadAll(part)
		if !bytes.Equal(got, want) {
			t.Errorf("multi-range part %d: %q, want %q", i, got, want)
		}
	}
	resp, body = fetch(t, "http://localhost:9080/videos/unknown.mp4")
	if resp.StatusCode != 404 || len(body) == 0 || bytes.Count(body, []byte("\n")) != 1 {
		t.Errorf("unknown name: status %d %q, want 404 with a one-line reason", resp.StatusCode, body)
	}
	// The CID path still works beside the catalog, immutable.
	resp, _ = fetch(t, "http://localhost:9080/ipfs/"+root1.String(), "Range", "bytes=0-0")
	if resp.StatusCode != 206 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("/ipfs/ beside the catalog: status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}

	// The operator points the name at a new file.
	if err := os.WriteFile(catalog, []byte("videos/movie.mp4 "+root2.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		resp, _ = fetch(t, url, "Range", "bytes=0-0")
		if resp.Header.Get("Etag") == `"`+root2.String()+`"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ETag still %s 1.5 s after the catalog changed", resp.Header.Get("Etag"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// RFC 9110 §13.1.5: a range conditional on the old ETag gets the new
	// representation whole.
	resp, body = fetch(t, url, "Range", "bytes=0-99", "If-Range", etag1)
	if resp.StatusCode != 200 || !bytes.Equal(body, v2) {
		t.Errorf("If-Range with the old ETag: status %d, %d bytes, equal to the new file %v", resp.StatusCode, len(body), bytes.Equal(body, v2))
	}
	// RFC 9110 §13.1.2: revalidating with the old ETag is not a 304.
	resp, _ = fetch(t, url, "If-None-Match", etag1)
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match with the old ETag: status %d, want 200", resp.StatusCode)
	}
}

// fetch GETs url with the header pairs given and reads the whole body.
func fetch(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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
