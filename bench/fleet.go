package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/shaper"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

// fleetBed is k edges in front of one origin, each holding only the file's
// index, peered with each other through shaping proxies: the fleet
// scenarios of issue #11, measured by the origin's own byte count.
type fleetBed struct {
	data        []byte
	root        cid.Cid
	index       []blocks.Block // the DAG's internal nodes
	tmp         string
	originAfter time.Duration
	origin      *httptest.Server
	sent        atomic.Int64 // body bytes the origin wrote
}

func newFleetBed(tmp string, data []byte, originAfter time.Duration) *fleetBed {
	b := &fleetBed{data: data, tmp: tmp, originAfter: originAfter}
	ctx := context.Background()
	dir, err := os.MkdirTemp(tmp, "ingest")
	check(err)
	n, err := node.New(ctx, node.Config{DataDir: dir})
	check(err)
	defer n.Close()
	b.root, err = ingest.Import(ctx, merkledag.NewDAGService(blockservice.New(n.Blockstore(), nil)), bytes.NewReader(data))
	check(err)
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		blk, err := n.Blockstore().Get(ctx, c)
		check(err)
		b.index = append(b.index, blk)
		nd, err := merkledag.DecodeProtobufBlock(blk)
		check(err)
		for _, l := range nd.Links() {
			if l.Cid.Prefix().Codec == cid.DagProtobuf {
				walk(l.Cid)
			}
		}
	}
	walk(b.root)
	b.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(countingWriter{w, &b.sent}, r, "", time.Time{}, bytes.NewReader(b.data))
	}))
	return b
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// edge is one fleet member and its gateway.
type edge struct {
	url  string
	stop func()
}

// start starts k fresh edges peered through proxies adding rtt, as one
// fleet, or each alone when fleetOn is false (the baseline: every edge
// misses on its own). stop stops the edges still running, then the
// proxies.
func (b *fleetBed) start(k int, rtt time.Duration, fleetOn bool) (edges []*edge, stop func()) {
	ctx := context.Background()
	nodes := make([]*node.Node, k)
	loopback := multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")
	for i := range nodes {
		dir, err := os.MkdirTemp(b.tmp, "edge")
		check(err)
		nodes[i], err = node.New(ctx, node.Config{DataDir: dir, ListenAddrs: []multiaddr.Multiaddr{loopback}})
		check(err)
		for _, blk := range b.index {
			check(nodes[i].Blockstore().Put(ctx, blk))
		}
	}
	var proxies []*shaper.Shaper
	edges = make([]*edge, k)
	for i, n := range nodes {
		var members []peer.ID
		for j, m := range nodes {
			if j == i {
				continue
			}
			members = append(members, m.Host().ID())
			var target string
			for _, a := range m.Host().Addrs() {
				if port, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
					target = "127.0.0.1:" + port
				}
			}
			p, err := shaper.New(target, rtt, 0)
			check(err)
			proxies = append(proxies, p)
			n.AddPeer(peer.AddrInfo{ID: m.Host().ID(), Addrs: []multiaddr.Multiaddr{multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.Addr().Port))}})
		}
		f, err := fleet.New(fleet.Config{Host: n.Host(), Members: members})
		check(err)
		src := &origin.Source{URL: b.origin.URL, After: caddy.Duration(b.originAfter)}
		check(src.Init())
		cfg := gateway.Config{
			Resolvers: []gateway.Resolver{gateway.IPFSPaths{}},
			Sources:   []hedge.Source{src},
			Local:     n.Store(),
			Store:     n,
			Expander:  testutil.Placeholders,
		}
		if fleetOn {
			cfg.Fleet = f
		}
		gw, err := gateway.NewHandler(cfg)
		check(err)
		f.SetServe(func(ctx context.Context, w hedge.Want) (blocks.Block, error) {
			req, err := gw.Hedge().Open(hedge.Target{OriginURL: w.OriginURL}, false, nil)
			if err != nil {
				return nil, err
			}
			defer req.Release()
			return req.Get(ctx, w)
		})
		srv := httptest.NewServer(gw)
		edges[i] = &edge{url: srv.URL + "/ipfs/" + b.root.String(), stop: func() {
			srv.Close()
			f.Close()
			_ = n.Close()
		}}
		if fleetOn {
			deadline := time.Now().Add(10 * time.Second)
			for len(f.Members()) < k-1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return edges, func() {
		for _, e := range edges {
			e.stop()
		}
		for _, p := range proxies {
			p.Close()
		}
	}
}

// fleetFigures are one scenario's figures.
type fleetFigures struct {
	originRatio float64 // origin bytes over the bytes it had to send once
	ttfbP50     float64 // ms, players only
}

// scenario runs one fleet scenario on fresh edges.
func (b *fleetBed) scenario(name string, k int, rtt time.Duration, fleetOn bool) fleetFigures {
	b.sent.Store(0)
	edges, stop := b.start(k, rtt, fleetOn)
	defer stop()
	size := len(b.data)
	switch name {
	case "together":
		var wg sync.WaitGroup
		for _, e := range edges {
			wg.Go(func() { fetch(e.url, "", b.data) })
		}
		wg.Wait()
		return fleetFigures{originRatio: float64(b.sent.Load()) / float64(size)}
	case "one after another":
		for _, e := range edges {
			fetch(e.url, "", b.data)
		}
		return fleetFigures{originRatio: float64(b.sent.Load()) / float64(size)}
	case "edge killed":
		// The last edge dies a third of the way through; the others'
		// downloads must still arrive whole.
		var wg sync.WaitGroup
		for _, e := range edges[:k-1] {
			wg.Go(func() { fetch(e.url, "", b.data) })
		}
		victim := edges[k-1]
		wg.Go(func() { _, _, _ = tryFetch(victim.url, "", b.data) })
		for b.sent.Load() < int64(size/3) {
			time.Sleep(time.Millisecond)
		}
		victim.stop()
		victim.stop = func() {}
		wg.Wait()
		return fleetFigures{originRatio: float64(b.sent.Load()) / float64(size)}
	case "players":
		// 3 players per edge, each reading 2 MiB ranges in order from a
		// random offset, 8 ranges each.
		const rangeSize, ranges = 2 << 20, 8
		rng := rand.New(rand.NewPCG(1, 2))
		var (
			mu      sync.Mutex
			leaves  = map[int64]bool{}
			ttfbs   []float64
			wg      sync.WaitGroup
			players = 3 * k
		)
		for p := range players {
			e := edges[p%k]
			start := rng.Int64N(int64(size - rangeSize*ranges))
			wg.Go(func() {
				for i := range int64(ranges) {
					lo := start + i*rangeSize
					hi := lo + rangeSize - 1
					t, _ := fetch(e.url, fmt.Sprintf("bytes=%d-%d", lo, hi), b.data[lo:hi+1])
					mu.Lock()
					ttfbs = append(ttfbs, ms(t))
					for l := lo >> 20; l <= hi>>20; l++ {
						leaves[l] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		touched := 0
		for l := range leaves {
			touched += min(1<<20, size-int(l<<20))
		}
		return fleetFigures{originRatio: float64(b.sent.Load()) / float64(touched), ttfbP50: median(ttfbs)}
	}
	log.Fatalf("unknown scenario %q", name)
	return fleetFigures{}
}

// runFleet measures every fleet scenario at each RTT, with the fleet and
// with the edges alone side by side, and prints the table.
func runFleet(w io.Writer, size, k int, rtts []time.Duration, originAfter time.Duration, runs int, scenarios []string) {
	tmp, err := os.MkdirTemp("", "pacman-fleet-")
	check(err)
	defer os.RemoveAll(tmp)
	data := make([]byte, size)
	fill(data, "pacman fleet")
	b := newFleetBed(filepath.Join(tmp), data, originAfter)
	defer b.origin.Close()
	fmt.Fprintf(w, "%d edges, %s file, origin_after %s, median of %d\n\n", k, fmtSize(size), originAfter, runs)
	fmt.Fprintln(w, "| scenario | RTT between edges | origin egress, fleet | origin egress, edges alone | ratio | p50 first byte, fleet | p50 first byte, alone |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, rtt := range rtts {
		for _, sc := range scenarios {
			var withFleet, alone []fleetFigures
			for range runs {
				withFleet = append(withFleet, b.scenario(sc, k, rtt, true))
				alone = append(alone, b.scenario(sc, k, rtt, false))
			}
			f, a := medianFigures(withFleet), medianFigures(alone)
			ttfb := func(x float64) string {
				if x == 0 {
					return "-"
				}
				return fmt.Sprintf("%.1f ms", x)
			}
			fmt.Fprintf(w, "| %s | %s | %.2f× | %.2f× | %.2f | %s | %s |\n", sc, rtt, f.originRatio, a.originRatio, f.originRatio/a.originRatio, ttfb(f.ttfbP50), ttfb(a.ttfbP50))
		}
	}
}

func medianFigures(fs []fleetFigures) fleetFigures {
	var o, t []float64
	for _, f := range fs {
		o, t = append(o, f.originRatio), append(t, f.ttfbP50)
	}
	return fleetFigures{originRatio: median(o), ttfbP50: median(t)}
}

func fmtSize(n int) string { return fmt.Sprintf("%d MiB", n>>20) }
