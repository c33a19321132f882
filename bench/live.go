package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/shaper"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/node"
	"go.uber.org/zap"
)

// liveNode is one node of the live bed: its node, fleet and relay.
type liveNode struct {
	n     *node.Node
	f     *fleet.Fleet
	relay *live.Relay
	stop  func()
}

// quietObserver is a live.Observer that keeps nothing.
type quietObserver struct{}

func (quietObserver) Held(string, time.Duration) {}
func (quietObserver) Dropped(string)             {}

// startLiveNode starts a node on loopback; wireLive gives it its relay.
func startLiveNode(tmp string) *liveNode {
	ctx := context.Background()
	dir, err := os.MkdirTemp(tmp, "live")
	check(err)
	n, err := node.New(ctx, node.Config{DataDir: dir, ListenAddrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}})
	check(err)
	return &liveNode{n: n}
}

// wireLive peers the edges with the publisher, nodes[0], and with each
// other through shaping proxies (every pair rtt apart), and starts their
// fleets and relays as caddymodule sets them up: segments fetched through
// a hedge, with the fleet when fleetOn. Edges trust the publisher.
func wireLive(nodes []*liveNode, rtt time.Duration, fleetOn bool) (stop func()) {
	var proxies []*shaper.Shaper
	for i, ln := range nodes {
		var members []peer.ID
		for j, m := range nodes {
			if j == i || i == 0 {
				continue // the publisher dials nobody
			}
			members = append(members, m.n.Host().ID())
			var target string
			for _, a := range m.n.Host().Addrs() {
				if port, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
					target = "127.0.0.1:" + port
				}
			}
			p, err := shaper.New(target, rtt, 0)
			check(err)
			proxies = append(proxies, p)
			ln.n.AddPeer(peer.AddrInfo{ID: m.n.Host().ID(), Addrs: []multiaddr.Multiaddr{multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.Addr().Port))}})
		}
		f, err := fleet.New(fleet.Config{Host: ln.n.Host(), Members: members})
		check(err)
		n := ln.n
		peers := live.PeerSessions(func(ctx context.Context) hedge.Getter { return n.NewSession(ctx) })
		cfg := hedge.Config{Local: n.Store(), Sources: []hedge.Source{peers}}
		if fleetOn {
			cfg.Fleet = f
		}
		h, err := hedge.New(cfg)
		check(err)
		f.SetServe(func(ctx context.Context, w hedge.Want) (blocks.Block, error) {
			req, err := h.Open(hedge.Target{}, false, nil)
			if err != nil {
				return nil, err
			}
			defer req.Release()
			return req.Get(ctx, w)
		})
		key := n.Host().Peerstore().PrivKey(n.Host().ID())
		ln.relay, err = live.NewRelay(n.Host(), key, live.HedgeFetcher(h), quietObserver{}, zap.NewNop())
		check(err)
		ln.relay.SetTrusted([]peer.ID{nodes[0].n.Host().ID()})
		ln.f = f
		ln.stop = func() {
			_ = ln.relay.Close()
			peers.Close()
			f.Close()
			_ = n.Close()
		}
	}
	// Wait for every edge to see its fleet.
	deadline := time.Now().Add(10 * time.Second)
	for _, ln := range nodes[1:] {
		for fleetOn && len(ln.f.Members()) < len(nodes)-1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return func() {
		for _, ln := range nodes {
			ln.stop()
		}
		for _, p := range proxies {
			p.Close()
		}
	}
}

// liveFigures are one run's figures.
type liveFigures struct {
	p50, p99 time.Duration // from the publisher's announcement to every edge listing it
	upload   float64       // the publisher's upload (bitswap and fleet) over the segments' bytes
}

// liveRun publishes segments of segSize every interval from a publisher to
// k edges and measures them.
func liveRun(tmp string, k, segments, segSize int, interval, rtt time.Duration, fleetOn bool) liveFigures {
	nodes := make([]*liveNode, k+1)
	for i := range nodes {
		nodes[i] = startLiveNode(tmp)
	}
	stop := wireLive(nodes, rtt, fleetOn)
	defer stop()
	pub := nodes[0]
	ctx := context.Background()
	const stream = "bench"
	for _, e := range nodes[1:] {
		check(e.relay.Join(stream))
	}
	time.Sleep(2 * time.Second) // let the gossip meshes form
	before, err := pub.n.Stats(ctx)
	check(err)
	_, fleetBefore := pub.f.Counts()

	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := time.Now()
	for seq := range segments {
		data := bytes.Repeat([]byte{byte(seq)}, segSize)
		copy(data, fmt.Sprintf("segment %d of the live bench", seq))
		c, err := ingest.Import(ctx, pub.n.DAG(), bytes.NewReader(data))
		check(err)
		check(pub.relay.Publish(ctx, live.Announcement{Stream: stream, Seq: uint64(seq), CID: c, Duration: interval.Seconds(), Ext: ".ts"}))
		published := time.Now()
		for _, e := range nodes[1:] {
			wg.Go(func() {
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if e.relay.Streams().Wait(wctx, stream, uint64(seq), -1) == nil {
					mu.Lock()
					lat = append(lat, time.Since(published))
					mu.Unlock()
				}
			})
		}
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
	wg.Wait()
	after, err := pub.n.Stats(ctx)
	check(err)
	_, fleetAfter := pub.f.Counts()
	slices.Sort(lat)
	if len(lat) == 0 {
		check(fmt.Errorf("no edge listed any segment"))
	}
	return liveFigures{
		p50:    lat[len(lat)/2],
		p99:    lat[min(len(lat)-1, len(lat)*99/100)],
		upload: float64(after.BytesSeeded-before.BytesSeeded+uint64(fleetAfter-fleetBefore)) / float64(segments*segSize),
	}
}

// runLive prints the live scenario: with the fleet and, side by side, each
// edge fetching from the swarm alone.
func runLive(w io.Writer, k, segments, segSize int, interval time.Duration, rtts []time.Duration) {
	tmp, err := os.MkdirTemp("", "pacman-live-bench")
	check(err)
	defer os.RemoveAll(tmp)
	fmt.Fprintf(w, "live: 1 publisher, %d edges, %d segments of %s every %v\n\n", k, segments, fmtSize(segSize), interval)
	fmt.Fprintln(w, "| RTT | edges | announce → listed p50 | p99 | publisher upload / segment bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, rtt := range rtts {
		for _, fleetOn := range []bool{false, true} {
			f := liveRun(tmp, k, segments, segSize, interval, rtt, fleetOn)
			mode := "alone (baseline)"
			if fleetOn {
				mode = "fleet"
			}
			fmt.Fprintf(w, "| %v | %s | %.0f ms | %.0f ms | %.2f× |\n", rtt, mode, ms(f.p50), ms(f.p99), f.upload)
		}
	}
}
