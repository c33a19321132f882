package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/zap"
)

// Reach says how the node reaches peers behind NATs and firewalls and is
// reached from behind one. The zero value does none of it: the node is
// reached at its listen addresses only. A node without listen addresses
// is not reached at all: it uses no relays and relays for no one.
type Reach struct {
	// PortMap asks the router for a port mapping (UPnP IGD; libp2p's
	// NAT-PMP client never finds its gateway on Linux, see README).
	PortMap bool
	// AutoNAT finds out whether the node is reachable from outside by
	// asking peers to dial it back (AutoNAT v2), and answers their asks.
	AutoNAT bool
	// HolePunching turns a connection through a relay into a direct one
	// (DCUtR) when both ends are behind NATs.
	HolePunching bool
	// RelayClient, when the node is not reachable, reserves a slot with
	// relays and advertises its addresses through them (circuit relay
	// v2): the StaticRelays, or else relays found among connected peers.
	RelayClient  bool
	StaticRelays []peer.AddrInfo
	// RelayService relays connections for peers behind NATs, within
	// libp2p's default limits (2 min and 128 KiB per relayed connection,
	// enough to set up a hole punch), once the node knows it is reachable.
	RelayService bool
	// Announce, if set, replaces the node's direct addresses in what it
	// tells peers (an edge behind a load balancer announces the balancer);
	// its relay addresses are still told.
	Announce []multiaddr.Multiaddr
	// NoAnnounce are addresses never told to peers: exact addresses, or
	// networks as /ip4/{net}/ipcidr/{bits} (or /ip6/...).
	NoAnnounce []multiaddr.Multiaddr
	// Reachability, if not unknown, is taken as given instead of being
	// found out: public (relay for others) or private (use relays).
	Reachability network.Reachability
}

// options returns the libp2p options that make r so. h is filled in with
// the host once it is built, for relays found among its peers.
func (r Reach) options(h *atomic.Pointer[host.Host]) ([]libp2p.Option, error) {
	var opts []libp2p.Option
	if r.PortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if r.AutoNAT {
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableAutoNATv2())
	}
	if r.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	switch {
	case !r.RelayClient:
	case len(r.StaticRelays) > 0:
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(r.StaticRelays))
	default:
		// The peer source is the connected peers, a cheap local list:
		// asked every 2 s rather than autorelay's 30, a node finds its
		// relay seconds after connecting to it, not half a minute.
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(connectedPeers(h), autorelay.WithMinCandidates(1), autorelay.WithMinInterval(relaySearch)))
	}
	if r.RelayService {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayv2.DefaultResources())))
	}
	switch r.Reachability {
	case network.ReachabilityUnknown:
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	default:
		return nil, fmt.Errorf("reachability %v is not public, private or unknown", r.Reachability)
	}
	if len(r.Announce) > 0 || len(r.NoAnnounce) > 0 {
		told, err := r.told()
		if err != nil {
			return nil, err
		}
		opts = append(opts, libp2p.AddrsFactory(told))
	}
	return opts, nil
}

// told returns what the node tells peers of its addresses, from those it
// has: Announce for the direct ones, less NoAnnounce.
func (r Reach) told() (func([]multiaddr.Multiaddr) []multiaddr.Multiaddr, error) {
	var exact []multiaddr.Multiaddr
	nets := multiaddr.NewFilters()
	for _, a := range r.NoAnnounce {
		if _, err := a.ValueForProtocol(multiaddr.P_IPCIDR); err != nil {
			exact = append(exact, a)
			continue
		}
		n, err := manet.MultiaddrToIPNet(a)
		if err != nil {
			return nil, fmt.Errorf("no_announce %s: %w", a, err)
		}
		nets.AddFilter(*n, multiaddr.ActionDeny)
	}
	announce := slices.Clone(r.Announce)
	return func(addrs []multiaddr.Multiaddr) []multiaddr.Multiaddr {
		if len(announce) > 0 {
			relayed := slices.DeleteFunc(slices.Clone(addrs), func(a multiaddr.Multiaddr) bool { return !isRelayed(a) })
			addrs = append(slices.Clone(announce), relayed...)
		}
		return slices.DeleteFunc(addrs, func(a multiaddr.Multiaddr) bool {
			return slices.ContainsFunc(exact, a.Equal) || nets.AddrBlocked(a)
		})
	}, nil
}

// isRelayed reports whether a is an address through a relay.
func isRelayed(a multiaddr.Multiaddr) bool {
	_, err := a.ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}

// relaySearch is how often a node without a relay looks for one among its
// peers.
const relaySearch = 2 * time.Second

// connectedPeers offers the host's connected peers as relay candidates;
// autorelay keeps those that speak the relay protocol.
func connectedPeers(h *atomic.Pointer[host.Host]) autorelay.PeerSource {
	return func(_ context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, num)
		defer close(out)
		hp := h.Load()
		if hp == nil {
			return out
		}
		for _, p := range (*hp).Network().Peers() {
			if len(out) == num {
				break
			}
			out <- peer.AddrInfo{ID: p, Addrs: (*hp).Peerstore().Addrs(p)}
		}
		return out
	}
}

// Hole punches happen when a relayed connection opens, and only once the
// node knows a public address of its own: a connection that opened before
// (at start, say) stays relayed for good, and blocks never cross a relayed
// connection. A relayed-only peer is therefore cut after punchGrace, at
// most once per punchRetry, so that its next connection (the peering
// service redials static peers) is punched afresh.
const (
	punchGrace = 5 * time.Second
	punchRetry = time.Minute
)

// retryPunches watches relayed connections until ctx ends: a peer still
// reached only through a relay punchGrace after one opened is cut, at most
// once per punchRetry.
func (n *Node) retryPunches(ctx context.Context) {
	var mu sync.Mutex
	cut := make(map[peer.ID]time.Time) // last cut
	var check func(p peer.ID)
	check = func(p peer.ID) {
		if ctx.Err() != nil {
			return
		}
		conns := n.host.Network().ConnsToPeer(p)
		if _, limited := bestConn(conns); !limited {
			return
		}
		now := time.Now()
		mu.Lock()
		maps.DeleteFunc(cut, func(_ peer.ID, at time.Time) bool { return now.Sub(at) >= punchRetry })
		last, recent := cut[p]
		if !recent {
			cut[p] = now
		}
		mu.Unlock()
		if recent {
			time.AfterFunc(last.Add(punchRetry).Sub(now), func() { check(p) })
			return
		}
		n.log.Debug("cutting a relayed connection no hole punch replaced", zap.Stringer("peer", p))
		for _, c := range conns {
			_ = c.Close()
		}
	}
	notify := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Limited {
			p := c.RemotePeer()
			time.AfterFunc(punchGrace, func() { check(p) })
		}
	}}
	n.host.Network().Notify(notify)
	<-ctx.Done()
	n.host.Network().StopNotify(notify)
}
