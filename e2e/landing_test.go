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
// rendition (through the vendored hls.js) both play; the panel shows
// bytes from more than one seeder; the videos play on while two of the
// three seeders are stopped from the page; and once the second edge is
// started, the gateway seeds back. The screenshot goes to
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
	out := run(t, 120*time.Second, node, "player/landing.mjs", "http://"+listen+"/", shot)
	var res struct {
		Errors []string
		Videos []struct {
			Src         string
			CurrentTime float64
			Error       *int
		}
		BeforeStops, AfterStops []float64
		Peers                   map[string]float64
		Said                    []string
		Offload, Seeded         string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("player output %q: %v", out, err)
	}
	t.Logf("%+v; screenshot %s", res, shot)
	if len(res.Errors) > 0 {
		t.Errorf("page errors: %v", res.Errors)
	}
	if len(res.Videos) != 2 || len(res.BeforeStops) != 2 || len(res.AfterStops) != 2 {
		t.Fatalf("%d videos on the landing page, want the MP4 and the HLS rendition", len(res.Videos))
	}
	for i, v := range res.Videos {
		if res.BeforeStops[i] <= 2 || v.Error != nil {
			t.Errorf("%s played %.1f s (error %v)", v.Src, res.BeforeStops[i], v.Error)
		}
		if res.AfterStops[i] < res.BeforeStops[i]+2 {
			t.Errorf("%s played %.1f s → %.1f s across the seeders' stops: it stalled", v.Src, res.BeforeStops[i], res.AfterStops[i])
		}
	}
	from := 0
	for name, n := range res.Peers {
		if strings.HasPrefix(name, "seeder") && n >= 128<<10 { // a block at least
			from++
		}
	}
	if from < 2 {
		t.Errorf("bytes by peer %v: want blocks of the clip from more than one seeder", res.Peers)
	}
	if res.Peers["second edge"] <= 0 || res.Seeded == "0 B" {
		t.Errorf("after the second edge started: peers %v, seeded back %q", res.Peers, res.Seeded)
	}
	if len(res.Said) != 2 || !strings.Contains(res.Said[0], "seeder 1 stopped") {
		t.Errorf("the page said %q on stopping seeders", res.Said)
	}
}
