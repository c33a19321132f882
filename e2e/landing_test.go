package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
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
	shot := artifact(t, "landing.png")
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

// demoLiveURL matches the line `demo --live` prints its edge's
// multivariant playlist URL on.
var demoLiveURL = regexp.MustCompile(`(?m)^(http://\S+/live/demo/master\.m3u8)$`)

// TestDemoLiveChromium runs `caddy pacman demo --live` as a new user does:
// it prints the edge's multivariant playlist URL on a line of its own,
// which lists the three renditions ffmpeg codes; the landing page plays
// the ladder in headless Chromium, says how far behind live it is, and
// switches to another rendition from its buttons, playing on.
func TestDemoLiveChromium(t *testing.T) {
	node := needPlayer(t)
	need(t, "ffmpeg")
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(caddyBin, "pacman", "demo", "--live", "--seeders", "1", "--listen", listen, "--address", "off")
	log := startProcess(t, cmd)
	var master string
	for deadline := time.Now().Add(60 * time.Second); master == ""; time.Sleep(100 * time.Millisecond) {
		if m := demoLiveURL.FindStringSubmatch(log.String()); m != nil {
			master = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no live URL:\n%s", log)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body, _ := getBody(master)
		if n := len(streamInf.FindAll(body, -1)); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listed three renditions:\n%s", master, body)
		}
	}
	shot := artifact(t, "landing-live.png")
	out := run(t, 120*time.Second, node, "player/landinglive.mjs", "http://"+listen+"/", shot)
	var res struct {
		Errors        []string
		Levels        []string
		Before, After string
		SwitchedTo    string
		PlayedAfter   float64
		Error         *int
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("player output %q: %v", out, err)
	}
	t.Logf("%+v; screenshot %s", res, shot)
	if len(res.Errors) > 0 || res.Error != nil {
		t.Errorf("page errors %v, video error %v", res.Errors, res.Error)
	}
	if want := []string{"auto", "90p", "180p", "360p"}; !slices.Equal(res.Levels, want) {
		t.Errorf("rendition buttons %q, want %q", res.Levels, want)
	}
	if !strings.Contains(res.Before, " s behind live, playing ") || !strings.HasSuffix(res.After, "playing "+res.SwitchedTo) {
		t.Errorf("the page said %q, then %q after switching to %q", res.Before, res.After, res.SwitchedTo)
	}
	if res.PlayedAfter < 2 {
		t.Errorf("played %.1f s in the 3 s after switching rendition", res.PlayedAfter)
	}
}

// TestDemoViewersChromium: with --viewers, two tabs of the demo's landing
// page are viewer peers: the second takes the HLS video's blocks from the
// first, and its panel says so.
func TestDemoViewersChromium(t *testing.T) {
	node := needPlayer(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(caddyBin, "pacman", "demo", "--viewers", "--seeders", "1", "--listen", listen, "--address", "off")
	startProcess(t, cmd)
	waitHTTP(t, "http://"+listen+"/pacman/viewers.json")
	shot := artifact(t, "landing-viewers.png")
	out := run(t, 120*time.Second, node, "player/demoviewers.mjs", "http://"+listen+"/", shot)
	var res struct {
		Errors []string
		A, B   struct{ FromPeers, FromEdge, Uploaded, Peers int64 }
		Panel  string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("player output %q: %v", out, err)
	}
	t.Logf("a %+v, b %+v; b's panel %q; screenshot %s", res.A, res.B, res.Panel, shot)
	if len(res.Errors) > 0 {
		t.Fatalf("page errors: %v", res.Errors)
	}
	if res.B.FromPeers == 0 || res.A.Uploaded == 0 || res.B.Peers < 1 {
		t.Errorf("the second tab took %d bytes from the first, which sent %d; %d tabs connected", res.B.FromPeers, res.A.Uploaded, res.B.Peers)
	}
	if !strings.Contains(res.Panel, "from other tabs") {
		t.Errorf("b's panel shows %q", res.Panel)
	}
}
