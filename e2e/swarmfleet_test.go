package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// swarmEdge is one `caddy run` edge of a private swarm.
type swarmEdge struct {
	id, url, admin string
	p2p            int
	cmd            *exec.Cmd
}

// addr is the edge's libp2p address, as a `peer` line names it.
func (e swarmEdge) addr() string { return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", e.p2p, e.id) }

// swarmKeyFile writes a private swarm's key where a Caddyfile can name it.
func swarmKeyFile(t *testing.T) string {
	keyFile, _ := testutil.SwarmKey(t)
	key := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(key, []byte(keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// startSwarmEdge runs an edge of the swarm whose key is in key, naming
// the peers given (its one way in), whose site serves route.
func startSwarmEdge(t *testing.T, key, route string, peers ...string) swarmEdge {
	t.Helper()
	dir, id := newDataDir(t)
	e := swarmEdge{id: id.String(), p2p: freePort(t), admin: fmt.Sprintf("localhost:%d", freePort(t))}
	port := freePort(t)
	e.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	var lines strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&lines, "\t\tpeer %s\n", p)
	}
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(caddyfile, fmt.Appendf(nil, `{
	admin %s
	metrics
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/%d
		swarm_key %s
%s	}
}

http://127.0.0.1:%d {
	%s
}
`, e.admin, dir, e.p2p, key, lines.String(), port, route), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command(caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	startProcess(t, e.cmd)
	return e
}

// waitMembers waits until every edge counts want live fleet members.
func waitMembers(t *testing.T, want int, edges ...swarmEdge) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i, e := range edges {
		for {
			metrics, _ := adminMetrics(e.admin)
			if strings.Contains(metrics, fmt.Sprintf("\npacman_fleet_members %d\n", want)) {
				break
			}
			if time.Now().After(deadline) {
				line := ""
				for l := range strings.SplitSeq(metrics, "\n") {
					if strings.HasPrefix(l, "pacman_fleet_members") {
						line = l
					}
				}
				t.Fatalf("edge %d: %q after 60 s, want %d members", i, line, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestSwarmFleetThroughCaddyfiles: three `caddy run` edges of one private
// swarm (swarm_key), the second and third naming only the first, become
// one fleet: each says it has two members, so the two that were never
// told of each other found each other through the first.
func TestSwarmFleetThroughCaddyfiles(t *testing.T) {
	notShort(t)
	key := swarmKeyFile(t)
	a := startSwarmEdge(t, key, "pacman /ipfs/*")
	b := startSwarmEdge(t, key, "pacman /ipfs/*", a.addr())
	c := startSwarmEdge(t, key, "pacman /ipfs/*", a.addr())
	waitMembers(t, 2, a, b, c)
}

// TestFleetChurnThroughCaddyfiles: viewers read random ranges of eight
// files through the edges of a private swarm in front of one origin
// (`resolve origin_pull`, nothing imported) while one edge is killed
// (SIGKILL) and a new one joins, naming only one of the others. Every
// response is byte-exact; the origin sends each file about once, plus
// the leaves only the dead edge held; and afterwards the fleet serves
// every file from what it holds, on every edge, the new one included.
func TestFleetChurnThroughCaddyfiles(t *testing.T) {
	notShort(t)
	const files = 8
	datas := make([][]byte, files)
	total := 0
	for i := range datas {
		datas[i] = testutil.Bytes(fmt.Sprint("churn ", i), 3<<20+i*77)
		total += len(datas[i])
	}
	var sent atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/v/%d.mp4", &i); err != nil || i < 0 || i >= files {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"churn-%d"`, i))
		http.ServeContent(countingResponse{w, &sent}, r, "f.mp4", time.Time{}, bytes.NewReader(datas[i]))
	}))
	t.Cleanup(origin.Close)
	key, route := swarmKeyFile(t), "pacman /v/* {\n\t\tresolve origin_pull "+origin.URL+"\n\t}"
	a := startSwarmEdge(t, key, route)
	b := startSwarmEdge(t, key, route, a.addr())
	c := startSwarmEdge(t, key, route, a.addr())
	waitMembers(t, 2, a, b, c)

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		served   atomic.Int64
		failedMu sync.Mutex
		failed   []string
	)
	view := func(url string, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 1))
		for range 1000 { // a player's pace: at most 20 s
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			i := rng.IntN(files)
			start := rng.IntN(len(datas[i]) - 1)
			end := min(start+rng.IntN(1<<20)+1, len(datas[i]))
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v/%d.mp4", url, i), nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end-1))
			code, body, err := doBody(req)
			if err != nil || code != http.StatusPartialContent || !bytes.Equal(body, datas[i][start:end]) {
				failedMu.Lock()
				failed = append(failed, fmt.Sprintf("%s file %d bytes %d-%d: %d, %d bytes, %v", url, i, start, end-1, code, len(body), err))
				failedMu.Unlock()
				continue
			}
			served.Add(1)
		}
	}
	for k, e := range []swarmEdge{a, a, b, b} {
		wg.Go(func() { view(e.url, uint64(k)) })
	}
	time.Sleep(1500 * time.Millisecond)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	atKill := served.Load()
	d := startSwarmEdge(t, key, route, b.addr())
	waitMembers(t, 2, a, b, d)
	atJoin := served.Load()
	for k := range 2 {
		wg.Go(func() { view(d.url, uint64(10+k)) })
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("ranges served: %d before the kill, %d until the new edge was a member, %d after; the origin sent %.2f× the files",
		atKill, atJoin-atKill, served.Load()-atJoin, float64(sent.Load())/float64(total))
	if atJoin-atKill == 0 || served.Load()-atJoin == 0 {
		t.Error("the viewers did not read through the churn")
	}
	for _, f := range failed {
		t.Error(f)
	}

	// Once every edge has served every file, the fleet holds them: a
	// second round costs the origin nothing.
	for round := range 2 {
		before := sent.Load()
		for _, e := range []swarmEdge{a, b, d} {
			for i, data := range datas {
				code, body, err := getBody(fmt.Sprintf("%s/v/%d.mp4", e.url, i))
				if err != nil || code != 200 || !bytes.Equal(body, data) {
					t.Errorf("round %d, file %d through %s: %d, %d bytes, %v", round, i, e.url, code, len(body), err)
				}
			}
		}
		if round == 1 {
			if extra := sent.Load() - before; extra > int64(total)/20 {
				t.Errorf("a second round took %.2f× the files from the origin, want none", float64(extra)/float64(total))
			}
		}
	}
	ratio := float64(sent.Load()) / float64(total)
	t.Logf("in all, the origin sent %.2f× the files", ratio)
	if ratio > 2 {
		t.Errorf("the origin sent %.2f× the files, want each about once, plus what only the dead edge held", ratio)
	}
}
