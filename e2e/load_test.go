package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestLoad runs concurrent clients of mixed whole-file and range GETs over
// 10 files through an empty gateway peered with a seeder — cold at first,
// warm as the cache fills — and checks: zero errors and zero wrong bytes,
// the gateway's peak RSS within a bound, and its goroutines back to their
// baseline afterwards. CI runs a short load; the soak is
//
//	PACMAN_LOAD_CLIENTS=500 PACMAN_LOAD_SECONDS=60 go test ./e2e -run TestLoad -v
func TestLoad(t *testing.T) {
	notShort(t)
	clients := envInt("PACMAN_LOAD_CLIENTS", 100)
	duration := time.Duration(envInt("PACMAN_LOAD_SECONDS", 5)) * time.Second

	src := t.TempDir()
	seedDir, seedID := newDataDir(t)
	var files [][]byte
	var cids []string
	for i := range 10 {
		data := testutil.Bytes(fmt.Sprint("load", i), (1+i%4)<<20+i*1000)
		path := filepath.Join(src, fmt.Sprint(i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
		cids = append(cids, addContent(t, seedDir, path))
	}
	seeder := startPacman(t, seedDir, seedID)
	gwDir, gwID := newDataDir(t)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw := startPacmanAdmin(t, admin, gwDir, gwID, seeder.P2P)
	baseline := goroutines(t, admin)

	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  []string
		bytesIn   int64
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) {
				i := rng.IntN(len(files))
				data := files[i]
				req, _ := http.NewRequest("GET", gw.URL+"/ipfs/"+cids[i], nil)
				want := data
				if rng.IntN(2) == 0 {
					start := rng.IntN(len(data))
					end := min(start+rng.IntN(2<<20), len(data)-1)
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
					want = data[start : end+1]
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				lat := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case sha256.Sum256(body) != sha256.Sum256(want):
					failures = append(failures, fmt.Sprintf("%s %s: status %d, %d bytes differ", cids[i], req.Header.Get("Range"), resp.StatusCode, len(body)))
				default:
					latencies = append(latencies, lat)
					bytesIn += int64(len(body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	transport.CloseIdleConnections()

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(int(p*float64(len(latencies))), len(latencies)-1)]
	}
	rss := peakRSS(t, gw.cmd.Process.Pid)
	t.Logf("%d clients for %v: %d requests, %d errors, %.0f MB/s, p50 %v, p99 %v, gateway peak RSS %d MiB",
		clients, duration, len(latencies)+len(failures), len(failures), float64(bytesIn)/duration.Seconds()/1e6, pct(0.5), pct(0.99), rss>>20)
	if len(failures) > 0 {
		t.Errorf("%d failed requests, first: %s", len(failures), failures[0])
	}
	// The window bounds each stream: 16 leaves of 1 MiB, plus the runtime.
	if bound := int64(clients)*16<<20 + 256<<20; rss > bound {
		t.Errorf("peak RSS %d MiB over the bound %d MiB", rss>>20, bound>>20)
	}
	deadlineG := time.Now().Add(15 * time.Second)
	for {
		n := goroutines(t, admin)
		if n <= baseline+20 {
			t.Logf("goroutines: %d before, %d after", baseline, n)
			break
		}
		if time.Now().After(deadlineG) {
			t.Errorf("goroutines: %d before, still %d after", baseline, n)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// goroutines reads go_goroutines from Caddy's admin /metrics.
func goroutines(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// peakRSS reads the peak resident set size of a process from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
