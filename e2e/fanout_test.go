package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestFleetTakesEachBlockFromKuboOnce: two `caddy run` edges that peer
// with each other (one fleet) and with a Kubo seeder, under `access
// open`, GET one file at the same moment. Between them they take it from
// the swarm once: each block's owner fetches it from Kubo for the other
// edge, which asks the owner first. Before, an owner answered a member
// only from its store and origin, and the pair took about 1.4 times the
// file from the swarm.
func TestFleetTakesEachBlockFromKuboOnce(t *testing.T) {
	notShort(t)
	k := startKubo(t)
	data := testutil.Bytes("fan-out", 24<<20)
	file := filepath.Join(t.TempDir(), "fan-out.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := k.ipfs(t, "add", "-Q", file)

	urls, admins := startEdges(t, 2, nil, "pacman /ipfs/* {\n\t\taccess open\n\t}", "/", k.P2P)

	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Go(func() {
			resp, err := http.Get(u + "/ipfs/" + c)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Errorf("%s: %s, %d bytes (%v); want the file's %d", u, resp.Status, len(body), err, len(data))
			}
		})
	}
	wg.Wait()
	var fromSwarm float64
	var figures []string
	for _, a := range admins {
		fromSwarm += metricSum(t, a, "pacman_fetched_bytes_total{", `source="peers"`)
		figures = append(figures, fetchedFigures(a))
	}
	if ratio := fromSwarm / float64(len(data)); ratio > 1.1 || ratio < 0.9 {
		t.Errorf("the fleet of two took %.2f times the file from the swarm; want each block once\n%s", ratio, strings.Join(figures, "\n"))
	}
}

// metricSum adds up the samples whose line starts with prefix and
// contains label.
func metricSum(t *testing.T, admin, prefix, label string) float64 {
	t.Helper()
	text, err := adminMetrics(admin)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for l := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(l, prefix) || !strings.Contains(l, label) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}
