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
	"github.com/ipfs/go-cid"
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
		// The store keeps what the fleet and the swarm send, as the
		// edge's does: without it a block taken from a member was not
		// kept, and the segment's walk and other members asked again.
		cfg := hedge.Config{Local: n.Store(), Sources: []hedge.Source{peers}, Store: n}
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
	segs, parts latencies // from the publisher's announcement to every edge listing it
	upload      float64   // the publisher's upload (bitswap and fleet) over the segments' bytes
}

// latencies collects listing delays from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

// wait records how long after published edge lists segment seq, or its
// part part (−1: the segment whole), within 30 s.
func (l *latencies) wait(ctx context.Context, wg *sync.WaitGroup, e *liveNode, stream string, seq uint64, part int, published time.Time) {
	wg.Go(func() {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if e.relay.Streams().Wait(wctx, stream, seq, part) == nil {
			l.mu.Lock()
			l.all = append(l.all, time.Since(published))
			l.mu.Unlock()
		}
	})
}

// quantiles returns the p50 and p99 of what was recorded, in ms, or "–".
func (l *latencies) quantiles() (p50, p99 string) {
	if len(l.all) == 0 {
		return "–", "–"
	}
	slices.Sort(l.all)
	q := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", ms(d)) }
	return q(l.all[len(l.all)/2]), q(l.all[min(len(l.all)-1, len(l.all)*99/100)])
}

// liveRun publishes segments of segSize every interval from a publisher to
// k edges and measures them; with parts > 0, each segment is announced
// first as that many parts, one every interval/parts, as a low-latency
// publisher cuts them, and then whole. With renditions > 1 it publishes a
// ladder: rendition r's segments have segSize/2^r bytes.
func liveRun(tmp string, k, segments, segSize, parts, renditions int, interval, rtt time.Duration, fleetOn bool) *liveFigures {
	nodes := make([]*liveNode, k+1)
	for i := range nodes {
		nodes[i] = startLiveNode(tmp)
	}
	stop := wireLive(nodes, rtt, fleetOn)
	defer stop()
	pub := nodes[0]
	ctx := context.Background()
	names := make([]string, renditions)
	for r := range names {
		names[r] = live.RenditionName("bench", r)
		for _, e := range nodes[1:] {
			check(e.relay.Join(names[r]))
		}
	}
	time.Sleep(2 * time.Second) // let the gossip meshes form
	before, err := pub.n.Stats(ctx)
	check(err)
	_, fleetBefore := pub.f.Counts()

	fig := &liveFigures{}
	var wg sync.WaitGroup
	var initSeg cid.Cid
	partTarget := 0.0
	if parts > 0 {
		initSeg, err = ingest.Import(ctx, pub.n.DAG(), bytes.NewReader([]byte("the live bench's init segment")))
		check(err)
		partTarget = interval.Seconds() / float64(parts)
	}
	// publish announces a, imported now, and measures every edge's
	// listing of it into l.
	publish := func(a live.Announcement, l *latencies) {
		check(pub.relay.Publish(ctx, a))
		published, part := time.Now(), -1
		if a.IsPart {
			part = a.Part
		}
		for _, e := range nodes[1:] {
			l.wait(ctx, &wg, e, a.Stream, a.Seq, part, published)
		}
	}
	streamBytes := 0
	next := time.Now()
	for seq := range segments {
		// Pseudo-random, as coded video is: bytes that repeat would
		// make parts alike, one block sent for several.
		data := make([][]byte, renditions)
		for r := range data {
			data[r] = make([]byte, segSize>>r)
			fill(data[r], fmt.Sprintf("segment %d of rendition %d of the live bench", seq, r))
			streamBytes += len(data[r])
		}
		pieces := make([][]ingest.Piece, renditions)
		for i := range parts {
			for r, name := range names {
				n := len(data[r])
				piece := data[r][i*n/parts : (i+1)*n/parts]
				c, err := ingest.Import(ctx, pub.n.DAG(), bytes.NewReader(piece))
				check(err)
				publish(live.Announcement{Stream: name, Seq: uint64(seq), IsPart: true, Part: i, CID: c,
					Duration: partTarget, Ext: ".m4s", Independent: i == 0, PartTarget: partTarget, Map: initSeg}, &fig.parts)
				pieces[r] = append(pieces[r], ingest.Piece{CID: c, Size: uint64(len(piece))})
			}
			next = next.Add(interval / time.Duration(parts))
			time.Sleep(time.Until(next))
		}
		for r, name := range names {
			seg := live.Announcement{Stream: name, Seq: uint64(seq), Duration: interval.Seconds(), Ext: ".ts", Size: uint64(len(data[r]))}
			if parts == 0 {
				seg.CID, err = ingest.Import(ctx, pub.n.DAG(), bytes.NewReader(data[r]))
			} else {
				seg.CID, err = ingest.Concat(ctx, pub.n.DAG(), pieces[r])
				seg.Ext, seg.PartTarget, seg.Map = ".m4s", partTarget, initSeg
			}
			check(err)
			publish(seg, &fig.segs)
		}
		if parts == 0 {
			next = next.Add(interval)
			time.Sleep(time.Until(next))
		}
	}
	wg.Wait()
	after, err := pub.n.Stats(ctx)
	check(err)
	_, fleetAfter := pub.f.Counts()
	if len(fig.segs.all) == 0 {
		check(fmt.Errorf("no edge listed any segment"))
	}
	fig.upload = float64(after.BytesSeeded-before.BytesSeeded+uint64(fleetAfter-fleetBefore)) / float64(streamBytes)
	return fig
}

// runLive prints the live scenario: with the fleet and, side by side, each
// edge fetching from the swarm alone.
func runLive(w io.Writer, k, segments, segSize, parts, renditions int, interval time.Duration, rtts []time.Duration) {
	tmp, err := os.MkdirTemp("", "pacman-live-bench")
	check(err)
	defer os.RemoveAll(tmp)
	fmt.Fprintf(w, "live: 1 publisher, %d edges, %d segments of %s every %v, %d parts each, %d renditions\n\n", k, segments, fmtSize(segSize), interval, parts, renditions)
	fmt.Fprintln(w, "| RTT | edges | part announced → listed p50 | p99 | segment p50 | p99 | publisher upload / stream bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, rtt := range rtts {
		for _, fleetOn := range []bool{false, true} {
			f := liveRun(tmp, k, segments, segSize, parts, renditions, interval, rtt, fleetOn)
			mode := "alone (baseline)"
			if fleetOn {
				mode = "fleet"
			}
			p50, p99 := f.parts.quantiles()
			s50, s99 := f.segs.quantiles()
			fmt.Fprintf(w, "| %v | %s | %s | %s | %s | %s | %.2f× |\n", rtt, mode, p50, p99, s50, s99, f.upload)
		}
	}
}
