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

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestFleetShieldsOriginThroughCaddyfiles: three edges configured as an
// operator does, each with a Caddyfile that names the others as peers and
// one origin, each holding only the file's index (an --index-only CAR
// imported offline), under `access local` (the default) and under
// `access allowlist`. Three clients download the whole file at once, one
// per edge, and then again one after another on fresh edges; every byte
// is compared with the file, and the origin, which counts what it sends,
// sends it about once under either policy.
func TestFleetShieldsOriginThroughCaddyfiles(t *testing.T) {
	notShort(t)
	data := testutil.Bytes("shield", 48<<20+5)
	src := filepath.Join(t.TempDir(), "film.mp4")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(countingResponse{w, &sent}, r, "film.mp4", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(origin.Close)
	ingest := t.TempDir()
	root := addContent(t, ingest, src)
	index := filepath.Join(t.TempDir(), "film.idx.car")
	if err := os.WriteFile(index, []byte(caddyCmd(t, "pacman", "export", "--data-dir", ingest, "--index-only", root)), 0o644); err != nil {
		t.Fatal(err)
	}
	allow := filepath.Join(t.TempDir(), "allow.txt")
	if err := os.WriteFile(allow, []byte(root+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, access := range []string{"local", "allowlist"} {
		for _, order := range []string{"together", "one after another"} {
			t.Run(access+"/"+order, func(t *testing.T) {
				urls, admins := startFleet(t, 3, access, allow, origin.URL+"/film.mp4", index)
				sent.Store(0)
				get := func(u string) {
					code, body, err := getBody(u + "/ipfs/" + root)
					if err != nil || code != 200 || !bytes.Equal(body, data) {
						t.Errorf("GET through %s: %d, %d bytes, equal %v, %v", u, code, len(body), bytes.Equal(body, data), err)
					}
				}
				if order == "together" {
					var wg sync.WaitGroup
					for _, u := range urls {
						wg.Go(func() { get(u) })
					}
					wg.Wait()
				} else {
					for _, u := range urls {
						get(u)
					}
				}
				// What crossed between members shows in each edge's
				// status, as `caddy pacman stat` and the dashboard show
				// it (they said "seeded 0 B" for a fleet's traffic).
				var received, given int64
				for _, a := range admins {
					var st []struct {
						FleetReceived int64 `json:"fleet_received"`
						FleetSent     int64 `json:"fleet_sent"`
					}
					resp, err := http.Get("http://" + a + "/pacman/stat")
					if err != nil {
						t.Fatal(err)
					}
					err = json.NewDecoder(resp.Body).Decode(&st)
					resp.Body.Close()
					if err != nil || len(st) != 1 {
						t.Fatalf("the status of %s: %v %v", a, st, err)
					}
					received += st[0].FleetReceived
					given += st[0].FleetSent
				}
				// A member that gave up on an answer (another source won)
				// does not count what its owner had sent.
				if received == 0 || given < received {
					t.Errorf("the edges' status says %d bytes received from the fleet and %d sent to it; want some, and no more received than sent", received, given)
				}
				ratio := float64(sent.Load()) / float64(len(data))
				t.Logf("access %s, %s: the origin sent %.2f× the file", access, order, ratio)
				if ratio > 1.1 {
					t.Errorf("access %s, %s: the origin sent %.2f× the file, want ≤ 1.1×", access, order, ratio)
					for _, a := range admins {
						t.Logf("edge %s: %s", a, fetchedFigures(a))
					}
				}
			})
		}
	}
}

// countingResponse counts the body bytes written through it.
type countingResponse struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingResponse) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// startFleet runs k edges with `caddy run` on Caddyfiles written as the
// README's fleet section says, each peered with the others and holding the
// index CAR, and returns their base URLs.
func startFleet(t *testing.T, k int, access, allowFile, originURL, index string) (urls, admins []string) {
	t.Helper()
	policy := "access local"
	if access == "allowlist" {
		policy = "access allowlist\n\t\tallow_file " + allowFile
	}
	return startEdges(t, k, func(dir string) { caddyCmd(t, "pacman", "import", "--data-dir", dir, index) },
		fmt.Sprintf("pacman /ipfs/* {\n\t\t%s\n\t\torigin %s\n\t\torigin_after 300ms\n\t}", policy, originURL), "/ipfs/")
}

// startEdges runs k edges peered with each other and with swarm (peer
// multiaddrs of nodes outside the fleet), each with `caddy run` on a
// Caddyfile whose site holds route, after prepare has filled its data
// directory; it returns their base URLs and admin addresses once they
// answer at probe and each is connected to all the others.
func startEdges(t *testing.T, k int, prepare func(dataDir string), route, probe string, swarm ...string) (urls, admins []string) {
	t.Helper()
	type member struct {
		dir       string
		id        peer.ID
		p2p, http int
		admin     string
	}
	ms := make([]member, k)
	for i := range ms {
		dir, id := newDataDir(t)
		if prepare != nil {
			prepare(dir)
		}
		ms[i] = member{dir, id, freePort(t), freePort(t), fmt.Sprintf("localhost:%d", freePort(t))}
	}
	for i, m := range ms {
		var peers strings.Builder
		for _, p := range swarm {
			fmt.Fprintf(&peers, "\t\tpeer %s\n", p)
		}
		for j, o := range ms {
			if j != i {
				fmt.Fprintf(&peers, "\t\tpeer /ip4/127.0.0.1/tcp/%d/p2p/%s\n", o.p2p, o.id)
			}
		}
		caddyfile := fmt.Sprintf(`{
	admin %s
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
%s	}
}

http://127.0.0.1:%d {
	%s
}
`, m.admin, m.dir, m.p2p, peers.String(), m.http, route)
		path := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
			t.Fatal(err)
		}
		startCaddy(t, nil, "run", "--config", path, "--adapter", "caddyfile")
		u := fmt.Sprintf("http://127.0.0.1:%d", m.http)
		waitHTTP(t, u+probe)
		urls = append(urls, u)
		admins = append(admins, m.admin)
	}
	// An operator's edges have long found each other when viewers come:
	// wait until each is connected to all the others.
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range ms {
		for {
			var st []struct {
				Peers []string `json:"peers"`
			}
			resp, err := http.Get("http://" + m.admin + "/pacman/stat")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
			}
			if err == nil && len(st) == 1 && len(st[0].Peers) >= k-1+len(swarm) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the edge at %s is not connected to the other %d and the swarm's %d: %v %v", m.admin, k-1, len(swarm), st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return urls, admins
}

// fetchedFigures returns an edge's pacman_fetched_bytes_total and fleet
// lines from its metrics, to tell where an excess came from.
func fetchedFigures(admin string) string {
	text, err := adminMetrics(admin)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(l, "pacman_fetched_bytes_total") || strings.HasPrefix(l, "pacman_fleet_") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// adminMetrics returns the metrics text Caddy's admin endpoint at admin
// (host:port) serves.
func adminMetrics(admin string) (string, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
