package caddymodule_test

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestLiveThroughCaddy: a Caddy that is both publisher and edge takes an
// encoder's PUTs on its ingest route (its token from the environment) and
// serves the stream it announced on /live/, byte-exact.
func TestLiveThroughCaddy(t *testing.T) {
	t.Setenv("PACMAN_TEST_LIVE_TOKEN", "a-token-of-16-chars-or-more")
	dataDir := caddyDataDir(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
	}
}
http://localhost:9080 {
	pacman_live_ingest /ingest/* {
		token {env.PACMAN_TEST_LIVE_TOKEN} show
		max_segment_size 1MiB
	}
	pacman {
		resolve live {
			window 4
		}
		resolve ipfs
	}
}
`, dataDir), "caddyfile")
	put := func(token, path string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPut, "http://localhost:9080/ingest/"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	seg := testutil.Bytes("caddy-live", 700<<10)
	if got := put("a-token-of-16-chars-or-more", "other/index0.ts", seg); got != http.StatusForbidden {
		t.Errorf("a token limited to one stream, PUT to another: %d, want 403", got)
	}
	if got := put("a-token-of-16-chars-or-more", "show/index0.ts", make([]byte, 1<<20+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a segment past max_segment_size: %d, want 413", got)
	}
	// An upload replaced before it is listed gives its storage back:
	// its blocks become evictable (counted in the cache), not kept for
	// good.
	replaced := testutil.Bytes("caddy-live-replaced", 600<<10)
	if got := put("a-token-of-16-chars-or-more", "show/index0.ts", replaced); got != http.StatusCreated {
		t.Fatalf("PUT segment: %d", got)
	}
	if got := put("a-token-of-16-chars-or-more", "show/index0.ts", seg); got != http.StatusCreated {
		t.Fatalf("PUT segment: %d", got)
	}
	if _, metrics := fetch(t, "http://localhost:2999/metrics"); !regexp.MustCompile(`(?m)^pacman_cache_bytes (6[0-9]{5}|[1-9][0-9]{6,})$`).Match(metrics) {
		m := regexp.MustCompile(`(?m)^pacman_cache_bytes .*$`).Find(metrics)
		t.Errorf("after an upload was replaced unlisted: %q, want its 600 KiB evictable", m)
	}
	playlist := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\nindex0.ts\n"
	if got := put("a-token-of-16-chars-or-more", "show/index.m3u8", []byte(playlist)); got != http.StatusNoContent {
		t.Fatalf("PUT playlist: %d", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body := fetch(t, "http://localhost:9080/live/show/index.m3u8")
		if resp.StatusCode == 200 && strings.Contains(string(body), "\n0.ts\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist never listed the segment: %d\n%s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body := fetch(t, "http://localhost:9080/live/show/0.ts")
	if resp.StatusCode != 200 || !bytes.Equal(body, seg) {
		t.Errorf("segment: status %d, equal %v", resp.StatusCode, bytes.Equal(body, seg))
	}
	var stat bytes.Buffer
	if err := testutil.Pacman(t, &stat, "stat", "--address", "localhost:2999"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stat.String(), "live stream   show: last segment 0, live\n") {
		t.Errorf("caddy pacman stat does not list the stream:\n%s", stat.String())
	}

	// The event ends: its recording is pinned, so an operator sees it in
	// ls and can unpin it to free the disk.
	var ls bytes.Buffer
	if err := testutil.Pacman(t, &ls, "ls", "--address", "localhost:2999", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	before := strings.Fields(ls.String())
	req, _ := http.NewRequest(http.MethodDelete, "http://localhost:9080/ingest/show/index.m3u8", nil)
	req.Header.Set("Authorization", "Bearer a-token-of-16-chars-or-more")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of the playlist: %v %v", resp, err)
	}
	ls.Reset()
	if err := testutil.Pacman(t, &ls, "ls", "--address", "localhost:2999", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	if after := strings.Fields(ls.String()); len(after) != len(before)+1 {
		t.Fatalf("pins before the event ended %q, after %q: want the recording added", before, after)
	}
}
