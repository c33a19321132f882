package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLandingPageChromium runs `caddy pacman demo` as a new user does and
// opens its landing page in headless Chromium: the MP4 and the HLS
// rendition (through the vendored hls.js) both play, and the page's panel
// shows bytes fetched from peers. The screenshot goes to
// $PACMAN_ARTIFACTS (default: the test's temp dir).
func TestLandingPageChromium(t *testing.T) {
	node := needPlayer(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startCaddy(t, nil, "pacman", "demo", "--listen", listen, "--address", "off")
	waitHTTP(t, "http://"+listen+"/")
	artifacts := os.Getenv("PACMAN_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	shot := filepath.Join(artifacts, "landing.png")
	out := run(t, 90*time.Second, node, "player/landing.mjs", "http://"+listen+"/", shot)
	var res struct {
		Errors []string
		Videos []struct {
			Src         string
			CurrentTime float64
			Error       *int
		}
		FetchedFromPeers float64
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("player output %q: %v", out, err)
	}
	t.Logf("videos %+v; %.0f bytes fetched from peers; screenshot %s", res.Videos, res.FetchedFromPeers, shot)
	if len(res.Errors) > 0 {
		t.Errorf("page errors: %v", res.Errors)
	}
	if len(res.Videos) != 2 {
		t.Fatalf("%d videos on the landing page, want the MP4 and the HLS rendition", len(res.Videos))
	}
	for _, v := range res.Videos {
		if v.CurrentTime <= 2 || v.Error != nil {
			t.Errorf("%s played %.1f s (error %v)", v.Src, v.CurrentTime, v.Error)
		}
	}
	if res.FetchedFromPeers <= 0 {
		t.Error("the panel shows no bytes fetched from peers")
	}
}
