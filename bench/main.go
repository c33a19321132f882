// Command bench is pacman's benchmark bed: K seeder nodes on loopback hold
// one file; gateways under test start with an empty blockstore, peered
// with every seeder through shaping proxies (added round-trip time, a
// per-seeder upload cap), and fetch it cold and warm. pacman runs side by
// side with boxo/gateway (the path Kubo and rainbow serve with) on the same
// seeders and file, and local baselines (net/http ServeContent from disk,
// which Caddy's file_server uses, and sha256 in memory), so every figure is
// a ratio taken in one run.
//
//	go run ./bench -size 1GiB -seeders 4 -rtt 0,40ms -cap 25MB -runs 3
//
// With -fleet K it runs the fleet scenarios instead: K edges in front of
// one origin, with their fleet and alone, measured by the origin's bytes.
//
//	go run ./bench -fleet 3 -size 200MiB -rtt 0,40ms -runs 3
//
// With -seeders-kind kubo the seeders are Kubo daemons (the public
// network's nodes), and pacman's gateway is measured against a Kubo
// daemon's own gateway on them.
//
//	go run ./bench -seeders-kind kubo -size 256MiB -seeders 3 -rtt 0,40ms -cap 25MB -runs 1
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/blockservice"
	bgw "github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/shaper"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/node"
)

func main() {
	var (
		sizeFlag  = flag.String("size", "1GiB", "file size")
		seeders   = flag.Int("seeders", 4, "seeder nodes")
		kind      = flag.String("seeders-kind", "pacman", "the seeders: pacman nodes, or kubo daemons (then pacman's gateway is measured against a Kubo gateway)")
		kuboBin   = flag.String("kubo", defaultKubo(), "with -seeders-kind kubo: the ipfs binary")
		kuboOut   = flag.String("kubo-outstanding", "0", "with -seeders-kind kubo: the seeders' bitswap bytes in flight per peer (0: Kubo's default, 1 MiB)")
		rtts      = flag.String("rtt", "0,40ms", "comma-separated added round-trip times")
		capFlag   = flag.String("cap", "0", "upload cap per seeder per second, e.g. 25MB (0: none)")
		runs      = flag.Int("runs", 3, "repetitions of each scenario (the median is reported)")
		jsonOut   = flag.String("json", "", "also write the results as JSON to this file")
		window    = flag.Int("window", 0, "pacman window in leaves (0: default)")
		only      = flag.String("only", "", "run only the gateway of this kind: pacman or boxo (for profiles)")
		cpuProf   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		memProf   = flag.String("memprofile", "", "write an allocation profile at the end of the run to this file")
		swarmNs   = flag.String("swarm", "", "run the swarm fan-out instead: one seeder and N edges (comma-separated Ns, e.g. 4,12,16) fetching one file at once")
		upload    = flag.String("upload", "20MB", "with -swarm: every edge's upload_limit per second")
		fleetK    = flag.Int("fleet", 0, "run the fleet scenarios with this many edges in front of one origin instead")
		after     = flag.Duration("origin-after", 300*time.Millisecond, "with -fleet: how long an edge waits for its fleet before asking the origin itself")
		scens     = flag.String("scenarios", "together,one after another,players,edge killed", "with -fleet: the scenarios to run")
		liveK     = flag.Int("live", 0, "run the live scenario with this many edges behind one publisher instead")
		liveSegs  = flag.Int("segments", 60, "with -live: segments published")
		liveSize  = flag.String("segment-size", "1MiB", "with -live: bytes per segment")
		liveInt   = flag.Duration("interval", 2*time.Second, "with -live: time between segments")
		liveParts = flag.Int("parts", 0, "with -live: announce each segment first as this many low-latency parts")
		liveRends = flag.Int("renditions", 1, "with -live: publish a ladder of this many renditions, each half the last's bytes")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	if *memProf != "" {
		defer func() {
			f, err := os.Create(*memProf)
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			check(f.Close())
		}()
	}
	size, err := humanize.ParseBytes(*sizeFlag)
	check(err)
	capBytes, err := humanize.ParseBytes(*capFlag)
	check(err)

	switch *kind {
	case "pacman":
	case "kubo":
		out, err := humanize.ParseBytes(*kuboOut)
		check(err)
		runKuboSeeders(os.Stdout, *kuboBin, int(size), *seeders, parseRTTs(*rtts), int(capBytes), *runs, int(out))
		return
	default:
		check(fmt.Errorf("-seeders-kind: pacman or kubo, not %q", *kind))
	}
	if *swarmNs != "" {
		up, err := humanize.ParseBytes(*upload)
		check(err)
		var ns []int
		for _, f := range strings.Split(*swarmNs, ",") {
			n, err := strconv.Atoi(f)
			check(err)
			ns = append(ns, n)
		}
		runSwarm(os.Stdout, int(size), ns, int(up), *runs)
		return
	}
	if *liveK > 0 {
		segSize, err := humanize.ParseBytes(*liveSize)
		check(err)
		if *liveRends < 1 || *liveRends > live.MaxRenditions {
			check(fmt.Errorf("-renditions must be 1 to %d", live.MaxRenditions))
		}
		runLive(os.Stdout, *liveK, *liveSegs, int(segSize), *liveParts, *liveRends, *liveInt, parseRTTs(*rtts))
		return
	}
	if *fleetK > 0 {
		var list []time.Duration
		for _, r := range strings.Split(*rtts, ",") {
			rtt, err := time.ParseDuration(r)
			if r == "0" {
				rtt, err = 0, nil
			}
			check(err)
			list = append(list, rtt)
		}
		runFleet(os.Stdout, int(size), *fleetK, list, *after, *runs, strings.Split(*scens, ","))
		return
	}
	b, err := newBed(int(size), *seeders)
	check(err)
	defer b.close()
	var results []result
	for _, r := range strings.Split(*rtts, ",") {
		rtt, err := time.ParseDuration(r)
		if r == "0" {
			rtt, err = 0, nil
		}
		check(err)
		results = append(results, b.run(rtt, int(capBytes), *runs, *window, *only)...)
	}
	results = append(results, b.local(*runs)...)
	printTable(os.Stdout, results, *seeders, int(size), *capFlag)
	if *jsonOut != "" {
		out, err := json.MarshalIndent(results, "", "  ")
		check(err)
		check(os.WriteFile(*jsonOut, out, 0o644))
	}
}

// parseRTTs parses a comma-separated list of round-trip times.
func parseRTTs(s string) []time.Duration {
	var list []time.Duration
	for _, r := range strings.Split(s, ",") {
		rtt, err := time.ParseDuration(r)
		if r == "0" {
			rtt, err = 0, nil
		}
		check(err)
		list = append(list, rtt)
	}
	return list
}

// fill fills data with pseudo-random bytes fixed by seed: each scenario's
// file is the same on every run.
func fill(data []byte, seed string) {
	var key [32]byte
	copy(key[:], seed)
	_, _ = rand.NewChaCha8(key).Read(data)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// result is one scenario's median figures for pacman and its baseline.
type result struct {
	Scenario string  `json:"scenario"`
	RTT      string  `json:"rtt"`
	Unit     string  `json:"unit"`
	Pacman   float64 `json:"pacman"`
	Baseline float64 `json:"baseline"`
	Against  string  `json:"against"`
	// HigherIsBetter says which way the ratio reads.
	HigherIsBetter bool `json:"higher_is_better"`
}

// bed holds the seeders and the file.
type bed struct {
	tmp     string
	data    []byte
	root    cid.Cid
	seeders []*node.Node
}

func newBed(size, k int) (*bed, error) {
	tmp, err := os.MkdirTemp("", "pacman-bench-")
	if err != nil {
		return nil, err
	}
	b := &bed{tmp: tmp, data: make([]byte, size)}
	fill(b.data, "pacman bench")
	ctx := context.Background()
	loopback := multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")
	for i := range k {
		n, err := node.New(ctx, node.Config{DataDir: filepath.Join(tmp, fmt.Sprint("seeder", i)), ListenAddrs: []multiaddr.Multiaddr{loopback}})
		if err != nil {
			return nil, err
		}
		b.seeders = append(b.seeders, n)
		if i == 0 {
			if b.root, err = ingest.Import(ctx, n.DAG(), bytes.NewReader(b.data)); err != nil {
				return nil, err
			}
			continue
		}
		// The other seeders get seeder 0's blocks directly: same DAG,
		// without hashing the file again.
		keys, err := b.seeders[0].Blockstore().AllKeysChan(ctx)
		if err != nil {
			return nil, err
		}
		for k := range keys {
			blk, err := b.seeders[0].Blockstore().Get(ctx, k)
			if err != nil {
				return nil, err
			}
			if err := n.Blockstore().Put(ctx, blk); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func (b *bed) close() {
	for _, s := range b.seeders {
		_ = s.Close()
	}
	_ = os.RemoveAll(b.tmp)
}

// shaped starts a shaping proxy per seeder and returns the addresses a
// gateway dials, and a function stopping the proxies.
func (b *bed) shaped(rtt time.Duration, capBytes int) ([]peer.AddrInfo, func()) {
	var infos []peer.AddrInfo
	var proxies []*shaper.Shaper
	for _, s := range b.seeders {
		var target string
		for _, a := range s.Host().Addrs() {
			if port, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
				target = "127.0.0.1:" + port
			}
		}
		p, err := shaper.New(target, rtt, capBytes)
		check(err)
		proxies = append(proxies, p)
		infos = append(infos, peer.AddrInfo{ID: s.Host().ID(), Addrs: []multiaddr.Multiaddr{
			multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.Addr().Port)),
		}})
	}
	return infos, func() {
		for _, p := range proxies {
			p.Close()
		}
	}
}

// server is a gateway under test on a fresh, empty node.
type server struct {
	url  string
	stop func()
}

// startGateway starts kind ("pacman" or "boxo") on a new empty node peered
// with peers.
func (b *bed) startGateway(kind string, peers []peer.AddrInfo, window int) server {
	dir, err := os.MkdirTemp(b.tmp, kind)
	check(err)
	n, err := node.New(context.Background(), node.Config{DataDir: dir, Peers: peers})
	check(err)
	// Wait until identify has told the node every seeder speaks bitswap,
	// as it has on a gateway that has been up for more than a moment.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range peers {
		for time.Now().Before(deadline) {
			if protos, _ := n.Host().Peerstore().SupportsProtocols(p.ID, "/ipfs/bitswap/1.2.0"); len(protos) > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var h http.Handler
	switch kind {
	case "pacman":
		h, err = testutil.OpenGateway(n, gateway.Config{Window: window})
		check(err)
	case "boxo":
		backend, err := bgw.NewBlocksBackend(n.BlockService())
		check(err)
		h = bgw.NewHandler(bgw.Config{DeserializedResponses: true}, backend)
	}
	srv := httptest.NewServer(h)
	return server{url: srv.URL + "/ipfs/" + b.root.String(), stop: func() {
		srv.Close()
		_ = n.Close()
		_ = os.RemoveAll(dir)
	}}
}

// fetch GETs url (with a Range header when rng is set), checks the bytes
// against want, and returns the time to first byte and to last byte. Any
// failure ends the run.
func fetch(url, rng string, want []byte) (ttfb, total time.Duration) {
	ttfb, total, err := tryFetch(url, rng, want)
	if err != nil {
		log.Fatal(err)
	}
	return ttfb, total
}

// tryFetch is fetch returning its failure.
func tryFetch(url, rng string, want []byte) (ttfb, total time.Duration, err error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		return 0, 0, fmt.Errorf("GET %s %s: %w", url, rng, err)
	}
	ttfb = time.Since(start)
	h := sha256.New()
	h.Write(first)
	if _, err := io.Copy(h, resp.Body); err != nil {
		return ttfb, 0, fmt.Errorf("GET %s %s: %w", url, rng, err)
	}
	total = time.Since(start)
	if !bytes.Equal(h.Sum(nil), sha(want)) {
		return ttfb, total, fmt.Errorf("GET %s %s: wrong bytes", url, rng)
	}
	return ttfb, total, nil
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mbps(n int, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// run measures the network scenarios at one RTT for pacman and boxo.
// With only set, only that kind runs, and its figures stand in for the
// other's: a run for profiles, not for ratios.
func (b *bed) run(rtt time.Duration, capBytes, runs, window int, only string) []result {
	peers, stop := b.shaped(rtt, capBytes)
	defer stop()
	size := len(b.data)
	label := rtt.String()
	type figures struct {
		full, fullCPU, seekTTFB, seekTotal, player, warmFull []float64
		warmSeek                                             []float64
		streams, streamsP50, streamsP99, streamsRSS          []float64
		streamErrors                                         int
	}
	measure := func(kind string) figures {
		var f figures
		for r := range runs {
			// Cold full GET, then warm on the same node.
			s := b.startGateway(kind, peers, window)
			cpu := cpuTime()
			_, total := fetch(s.url, "", b.data)
			f.full = append(f.full, mbps(size, total))
			f.fullCPU = append(f.fullCPU, (cpuTime()-cpu).Seconds()/(float64(size)/(1<<30)))
			_, total = fetch(s.url, "", b.data)
			f.warmFull = append(f.warmFull, mbps(size, total))
			off := size / 2
			ttfb, _ := fetch(s.url, fmt.Sprintf("bytes=%d-%d", off, off+2<<20-1), b.data[off:off+2<<20])
			f.warmSeek = append(f.warmSeek, ms(ttfb))
			s.stop()

			// Cold 2 MiB seeks at 37 %, 73 %, 99 %: a fresh node each.
			for _, pct := range []int{37, 73, 99} {
				s := b.startGateway(kind, peers, window)
				off := min(size*pct/100, size-2<<20)
				ttfb, total := fetch(s.url, fmt.Sprintf("bytes=%d-%d", off, off+2<<20-1), b.data[off:off+2<<20])
				f.seekTTFB = append(f.seekTTFB, ms(ttfb))
				f.seekTotal = append(f.seekTotal, ms(total))
				s.stop()
			}

			// Player: sequential 2 MiB ranges from a random offset.
			s = b.startGateway(kind, peers, window)
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			off = rng.IntN(size / 2)
			start, n := time.Now(), 0
			for i := 0; i < 16 && off < size; i++ {
				end := min(off+2<<20, size)
				fetch(s.url, fmt.Sprintf("bytes=%d-%d", off, end-1), b.data[off:end])
				n += end - off
				off = end
			}
			f.player = append(f.player, mbps(n, time.Since(start)))
			s.stop()

			// 64 concurrent cold streams of 4 MiB at different offsets.
			s = b.startGateway(kind, peers, window)
			sf := b.concurrentStreams(s, 64, 4<<20)
			s.stop()
			f.streams = append(f.streams, sf.throughput)
			f.streamsP50 = append(f.streamsP50, sf.p50)
			f.streamsP99 = append(f.streamsP99, sf.p99)
			f.streamsRSS = append(f.streamsRSS, sf.peakRSS)
			f.streamErrors += sf.errors
		}
		return f
	}
	var p, x figures
	switch only {
	case "pacman":
		p = measure("pacman")
		x = p
	case "boxo":
		x = measure("boxo")
		p = x
	default:
		p, x = measure("pacman"), measure("boxo")
	}
	return []result{
		{"cold full GET", label, "MB/s", median(p.full), median(x.full), "boxo/gateway", true},
		{"cold full GET, CPU seconds per GiB (the whole bed: seeders, gateway, client)", label, "s", median(p.fullCPU), median(x.fullCPU), "boxo/gateway", false},
		{"cold 2 MiB seek, time to first byte", label, "ms", median(p.seekTTFB), median(x.seekTTFB), "boxo/gateway", false},
		{"cold 2 MiB seek, time to last byte", label, "ms", median(p.seekTotal), median(x.seekTotal), "boxo/gateway", false},
		{"player: sequential 2 MiB ranges", label, "MB/s", median(p.player), median(x.player), "boxo/gateway", true},
		{"warm full GET", label, "MB/s", median(p.warmFull), median(x.warmFull), "boxo/gateway", true},
		{"warm 2 MiB seek, time to first byte", label, "ms", median(p.warmSeek), median(x.warmSeek), "boxo/gateway", false},
		{"64 streams × 4 MiB, cold: throughput", label, "MB/s", median(p.streams), median(x.streams), "boxo/gateway", true},
		{"64 streams: p50 time to first byte", label, "ms", median(p.streamsP50), median(x.streamsP50), "boxo/gateway", false},
		{"64 streams: p99 time to first byte", label, "ms", median(p.streamsP99), median(x.streamsP99), "boxo/gateway", false},
		{"64 streams: peak RSS above the start (MiB)", label, "MiB", median(p.streamsRSS), median(x.streamsRSS), "boxo/gateway", false},
		{"64 streams: failed streams (all runs)", label, "", float64(p.streamErrors), float64(x.streamErrors), "boxo/gateway", false},
	}
}

// local measures pacman warm and import against local baselines.
func (b *bed) local(runs int) []result {
	size := len(b.data)
	file := filepath.Join(b.tmp, "file.bin")
	check(os.WriteFile(file, b.data, 0o644))
	fs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "file.bin", time.Time{}, f)
	}))
	defer fs.Close()
	// pacman serving from its own store: a seeder's, where all blocks are.
	pm := httptest.NewServer(mustHandler(b.seeders[0]))
	defer pm.Close()
	pmURL := pm.URL + "/ipfs/" + b.root.String()

	var pFull, fFull, pSeek, fSeek, imp, hash []float64
	off := size * 37 / 100
	rng := fmt.Sprintf("bytes=%d-%d", off, off+2<<20-1)
	for range runs {
		_, t := fetch(pmURL, "", b.data)
		pFull = append(pFull, mbps(size, t))
		_, t = fetch(fs.URL, "", b.data)
		fFull = append(fFull, mbps(size, t))
		tt, _ := fetch(pmURL, rng, b.data[off:off+2<<20])
		pSeek = append(pSeek, ms(tt))
		tt, _ = fetch(fs.URL, rng, b.data[off:off+2<<20])
		fSeek = append(fSeek, ms(tt))

		start := time.Now()
		_ = sha256.Sum256(b.data)
		hash = append(hash, mbps(size, time.Since(start)))
		store, err := node.OpenStore(filepath.Join(b.tmp, fmt.Sprint("import", len(imp))))
		check(err)
		dag := storeDAG(store)
		start = time.Now()
		_, err = ingest.Import(context.Background(), dag, bytes.NewReader(b.data))
		check(err)
		check(store.Sync(context.Background()))
		imp = append(imp, mbps(size, time.Since(start)))
		check(store.Close())
	}
	return []result{
		{"warm full GET (local blocks)", "-", "MB/s", median(pFull), median(fFull), "ServeContent from disk", true},
		{"warm 2 MiB seek, time to first byte (local blocks)", "-", "ms", median(pSeek), median(fSeek), "ServeContent from disk", false},
		{"import into the blockstore", "-", "MB/s", median(imp), median(hash), "sha256 in memory", true},
	}
}

func printTable(w io.Writer, rs []result, seeders, size int, capStr string) {
	fmt.Fprintf(w, "%d seeders, %s file, upload cap per seeder %s\n\n", seeders, humanize.IBytes(uint64(size)), capStr)
	fmt.Fprintln(w, "| scenario | added RTT | pacman | baseline | baseline is | pacman's advantage (>1 is better) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rs {
		// Throughputs compare as pacman/baseline, times as baseline/pacman.
		ratio := r.Pacman / r.Baseline
		if !r.HigherIsBetter {
			ratio = r.Baseline / r.Pacman
		}
		shown := fmt.Sprintf("%.2f×", ratio)
		if r.Pacman == 0 || r.Baseline == 0 {
			shown = "-" // counts of failures: no ratio
		}
		fmt.Fprintf(w, "| %s | %s | %.1f %s | %.1f %s | %s | %s |\n", r.Scenario, r.RTT, r.Pacman, r.Unit, r.Baseline, r.Unit, r.Against, shown)
	}
}

// mustHandler is a pacman gateway over n.
func mustHandler(n *node.Node) http.Handler {
	h, err := testutil.OpenGateway(n, gateway.Config{})
	check(err)
	return h
}

// storeDAG is a DAG service writing to s only.
func storeDAG(s *node.Store) ipld.DAGService {
	return merkledag.NewDAGService(blockservice.New(s.Blockstore, nil))
}
