package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestDashboardChromium: after a gateway fetches a file from a seeder,
// the dashboard (pacman_stats on a site route), in headless Chromium,
// shows the bytes fetched from peers and charts them. The screenshot goes to
// $PACMAN_ARTIFACTS (default: the test's temp dir).
func TestDashboardChromium(t *testing.T) {
	node := needPlayer(t)
	seedDir, seedID := newDataDir(t)
	data := testutil.Bytes("dashboard", 6<<20+5)
	path := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := addContent(t, seedDir, path)
	seeder := startPacman(t, seedDir, seedID)
	gwDir, gwID := newDataDir(t)
	gw := startWith(t, "", gwDir, gwID, map[string]any{"peers": []string{seeder.P2P}}, []any{
		map[string]any{
			"match":  []any{map[string]any{"path": []string{"/pacman/stats"}}},
			"handle": []any{map[string]any{"handler": "pacman_stats"}},
		},
		map[string]any{
			"match":  []any{map[string]any{"path": []string{"/ipfs/*"}}},
			"handle": []any{map[string]any{"handler": "pacman", "policies": []any{map[string]any{"policy": "open"}}}},
		},
	})
	shot := artifact(t, "dashboard.png")
	page := exec.Command(node, "player/dashboard.mjs", gw.URL+"/pacman/stats", shot)
	var stderr bytes.Buffer
	page.Stderr = &stderr
	pipe, err := page.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(pipe)
	if !lines.Scan() || lines.Text() != "ready" {
		_ = page.Process.Kill()
		_ = page.Wait()
		t.Fatalf("the page never got ready: %q %v\n%s", lines.Text(), lines.Err(), stderr.String())
	}
	if code, body, err := getBody(gw.URL + "/ipfs/" + c); err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("the file through the gateway: %d, equal %v, %v", code, bytes.Equal(body, data), err)
	}
	var out string
	done := make(chan error, 1)
	go func() {
		for lines.Scan() {
			out += lines.Text()
		}
		done <- page.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the page: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = page.Process.Kill()
		t.Fatal("the page never finished")
	}
	var res struct {
		Errors           []string
		FetchedFromPeers float64
		Shown, Legend    string
		Painted          int
		PeakRate         float64
		PeerLines        []string
		Page             string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	t.Logf("%+v; screenshot %s", res, shot)
	if len(res.Errors) > 0 {
		t.Fatalf("page errors: %v", res.Errors)
	}
	if res.FetchedFromPeers < float64(len(data)) || res.Shown != "6.0 MiB" {
		t.Errorf("fetched from peers %.0f, shown %q; want the file's %d bytes, 6.0 MiB", res.FetchedFromPeers, res.Shown, len(data))
	}
	// The whole file arrived within a reading or two: the chart's peak
	// is at least half of it per second.
	if !strings.Contains(res.Legend, "peers") || res.Painted == 0 || res.PeakRate < float64(len(data))/2 {
		t.Errorf("the chart: legend %q, %d pixels painted, peak %.0f B/s", res.Legend, res.Painted, res.PeakRate)
	}
	if len(res.PeerLines) != 1 || !strings.HasPrefix(res.PeerLines[0], seedID.String()+" at /ip4/127.0.0.1/tcp/") {
		t.Errorf("the peers listed: %q, want the seeder and where it is", res.PeerLines)
	}
	var stats struct {
		Peers []struct {
			ID      string
			Relayed bool
			TotalIn int64 `json:"total_in"`
		}
		History []struct {
			T         time.Time
			Delivered map[string]float64
		}
	}
	if code, body, err := getBody(gw.URL + "/pacman/stats"); err != nil || code != 200 || json.Unmarshal(body, &stats) != nil {
		t.Fatalf("the figures as JSON: %d %v", code, err)
	}
	if len(stats.Peers) != 1 || stats.Peers[0].ID != seedID.String() || stats.Peers[0].Relayed || stats.Peers[0].TotalIn < int64(len(data)) {
		t.Errorf("the peers as JSON: %+v, want the seeder, direct, with at least the file's %d bytes in", stats.Peers, len(data))
	}
	// The edge keeps the history the chart draws, a sample a second, so a
	// tab opened later sees the transfer too: from before it (nothing
	// delivered) to after it (the file, most of it from peers).
	h := stats.History
	total := func(d map[string]float64) (n float64) {
		for _, v := range d {
			n += v
		}
		return n
	}
	if len(h) < 3 || total(h[0].Delivered) != 0 || total(h[len(h)-1].Delivered) < float64(len(data)) ||
		h[len(h)-1].Delivered["peers"] == 0 || !h[len(h)-1].T.After(h[0].T) {
		t.Errorf("the history as JSON: %d samples, %+v first, %+v last; want the transfer between them", len(h), h[0], h[len(h)-1])
	}
}
