package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	pacedge "github.com/pacman-cdn/pacman/edge"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
	"go.uber.org/zap"
)

// swarmFigures are one fan-out run's figures: completion times over the
// physical bound S/U, and bytes over what had to cross the wire.
type swarmFigures struct {
	p50, p99, slowest float64 // completion ÷ S/U
	sentRatio         float64 // every node's upload ÷ N×S
	seederRatio       float64 // the seeder's upload ÷ S
}

// runSwarm is issue 22's software-distribution scenario: one seeder and n
// edges, each capped at upload bytes a second and peered with every other
// (every peer a fleet member, as a Caddyfile's peer lines make them), all
// GET the same file at the same moment. The seeder is either a swarm node
// the edges are connected to (as a Kubo node or a registry would be) or,
// with member, one more edge of the fleet (the edge the file was added
// to).
func runSwarm(out io.Writer, size int, ns []int, upload int, runs int) {
	tmp, err := os.MkdirTemp("", "pacman-swarm-")
	check(err)
	defer os.RemoveAll(tmp)
	data := make([]byte, size)
	fill(data, "pacman swarm")
	bound := float64(size) / float64(upload)
	// Warnings (a stream cut short) go to stderr with the breakdown of
	// each run: who sent what, and the duplicates bitswap received.
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	check(err)
	fmt.Fprintf(out, "## Swarm fan-out: one seeder, N edges, %s each, every edge capped at %s/s (S/U = %.2f s)\n\n",
		humanize.IBytes(uint64(size)), humanize.Bytes(uint64(upload)), bound)
	fmt.Fprintln(out, "| N | seeder | run | p50 ÷ S/U | p99 ÷ S/U | slowest ÷ S/U | bytes sent ÷ bytes needed | seeder upload ÷ S |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	for _, n := range ns {
		for _, member := range []bool{false, true} {
			shape := "in the swarm"
			if member {
				shape = "a fleet member"
			}
			for r := range runs {
				f := swarmOnce(tmp, data, n, upload, member, log)
				fmt.Fprintf(out, "| %d | %s | %d | %.2f | %.2f | %.2f | %.2f× | %.2f× |\n", n, shape, r+1, f.p50/bound, f.p99/bound, f.slowest/bound, f.sentRatio, f.seederRatio)
			}
		}
	}
}

// swarmOnce runs the scenario once on fresh edges; figures are in seconds
// and ratios.
func swarmOnce(tmp string, data []byte, n, upload int, member bool, log *zap.Logger) swarmFigures {
	ctx := context.Background()
	k := n + 1 // edge 0 is the seeder
	dirs := make([]string, k)
	infos := make([]peer.AddrInfo, k)
	for i := range k {
		dir, err := os.MkdirTemp(tmp, "edge")
		check(err)
		dirs[i] = dir
		id, err := node.Identity(dir)
		check(err)
		infos[i] = peer.AddrInfo{ID: id} // addresses once it listens
	}
	edges := make([]*pacedge.Edge, k)
	urls := make([]string, k)
	var stops []func()
	defer func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}()
	obs := &fetches{}
	for i := range k {
		// The fleet is the edges' peer lines (named before they listen,
		// dialled once they do); a seeder outside it is a swarm peer.
		var peers []peer.AddrInfo
		for j, p := range infos {
			if j != i && (member || (i > 0 && j > 0)) {
				peers = append(peers, p)
			}
		}
		e, err := pacedge.New(ctx, pacedge.Config{
			Node: node.Config{
				DataDir:     dirs[i],
				ListenAddrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")},
				Peers:       peers,
				Upload:      node.UploadLimits{Total: int64(upload)},
			},
			Observer: obs,
			Logger:   log,
		})
		check(err)
		edges[i] = e
		stops = append(stops, func() { _ = e.Close() })
		gw, err := testutil.OpenGateway(e.Node(), gateway.Config{Fleet: e.Fleet(), Flights: e.Flights(), Blocks: obs, Logger: log})
		check(err)
		routes := &pacedge.Routes{}
		routes.Add(gw)
		e.Serve(routes)
		srv := httptest.NewServer(gw)
		stops = append(stops, srv.Close)
		urls[i] = srv.URL
	}
	for i, e := range edges {
		infos[i] = e.Node().AddrInfo()
	}
	for i, e := range edges {
		for j, p := range infos {
			if j != i && (i > 0 || member) {
				e.Node().AddPeer(p)
			}
		}
	}
	root, err := ingest.Import(ctx, edges[0].Node().DAG(), bytes.NewReader(data))
	check(err)
	// Every edge sees every other before the crowd starts, as a fleet up
	// for more than a moment does.
	deadline := time.Now().Add(20 * time.Second)
	for i, e := range edges {
		want := k - 1
		if !member {
			want = n - 1
			if i == 0 {
				want = 0
			}
		}
		for (len(e.Fleet().Members()) < want || len(e.Node().Host().Network().Peers()) < k-1 && i > 0) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	sentBefore := make([]int64, k)
	for i, e := range edges {
		sentBefore[i] = uploaded(e)
	}
	times := make([]float64, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		wg.Go(func() {
			fetch(urls[i]+"/ipfs/"+root.String(), "", data)
			times[i-1] = time.Since(start).Seconds()
		})
	}
	wg.Wait()
	var sent int64
	for i, e := range edges {
		sent += uploaded(e) - sentBefore[i]
	}
	slices.Sort(times)
	fmt.Fprintf(os.Stderr, "N=%d, seeder a member %v: fetched by source/reason (all edges) %v\n", n, member, obs.bySource)
	for i, e := range edges {
		st, err := e.Node().Stats(ctx)
		check(err)
		from, to := e.Fleet().Counts()
		fmt.Fprintf(os.Stderr, "  edge %d: sent %d MiB over bitswap, %d MiB to members; received %d MiB from members, %d MiB of bitswap duplicates; %d answers dropped\n",
			i, st.BytesSeeded>>20, to>>20, from>>20, st.DuplicateBytes>>20, st.SeedDropped)
	}
	size := float64(len(data))
	return swarmFigures{
		p50:         times[(n-1)/2],
		p99:         times[min(n-1, int(float64(n)*0.99))],
		slowest:     times[n-1],
		sentRatio:   float64(sent) / (float64(n) * size),
		seederRatio: float64(uploaded(edges[0])-sentBefore[0]) / size,
	}
}

// uploaded is the block bytes e has written to peers: bitswap's answers
// and the fleet's.
func uploaded(e *pacedge.Edge) int64 {
	st, err := e.Node().Stats(context.Background())
	check(err)
	_, to := e.Fleet().Counts()
	return int64(st.BytesSeeded) + to
}

// fetches is an edge observer that counts the bytes fetched from each
// source.
type fetches struct {
	mu       sync.Mutex
	bySource map[string]int64
}

func (f *fetches) Fetched(source string, reason hedge.Reason, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bySource == nil {
		f.bySource = map[string]int64{}
	}
	f.bySource[fmt.Sprint(source, "/", reason)] += int64(n)
}

func (*fetches) Delivered(string, int, time.Duration) {}
func (*fetches) Held(string, time.Duration)           {}
func (*fetches) Dropped(string)                       {}
func (*fetches) Rejected(string)                      {}
