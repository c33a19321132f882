package caddymodule

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/node"
)

// NAT says how the node gets through NATs and firewalls. Its zero value is
// the defaults: AutoNAT, hole punching and a relay client on (relays found
// among peers), port mapping and the relay service off.
type NAT struct {
	// PortMap asks the router for a port mapping (UPnP IGD; libp2p's
	// NAT-PMP never finds its gateway on Linux): for a seeder on a home
	// network. Default: off, as a data centre has
	// no such router and a host should not ask its network unbidden.
	PortMap bool `json:"port_map,omitempty"`
	// DisableAutoNAT stops the node finding out from peers whether it is
	// reachable (AutoNAT v2) and answering their asks.
	DisableAutoNAT bool `json:"disable_autonat,omitempty"`
	// DisableHolePunching stops the node turning relayed connections
	// into direct ones (DCUtR).
	DisableHolePunching bool `json:"disable_hole_punching,omitempty"`
	// DisableRelayClient stops the node, when unreachable, reserving a
	// slot with relays and advertising addresses through them.
	DisableRelayClient bool `json:"disable_relay_client,omitempty"`
	// StaticRelays are the relays (multiaddrs ending in /p2p/{peer-id})
	// the relay client uses. Default: relays found among the peers.
	StaticRelays []string `json:"static_relays,omitempty"`
	// RelayService relays for peers behind NATs once the node knows it
	// is publicly reachable, within libp2p's limits per relayed
	// connection (2 min, 128 KiB: enough to set up a hole punch).
	RelayService bool `json:"relay_service,omitempty"`
	// Announce replaces the node's direct addresses in what it tells
	// peers: an edge behind a load balancer or in a container announces
	// the address outside.
	Announce []string `json:"announce,omitempty"`
	// NoAnnounce are addresses never told to peers: exact multiaddrs, or
	// networks such as /ip4/10.0.0.0/ipcidr/8.
	NoAnnounce []string `json:"no_announce,omitempty"`
	// Reachability, "public" or "private", is taken as given instead of
	// found out by AutoNAT. Default: found out.
	Reachability string `json:"reachability,omitempty"`
}

// nodeReach parses n into the node's configuration.
func (n *NAT) nodeReach() (node.Reach, error) {
	if n == nil {
		n = new(NAT)
	}
	r := node.Reach{
		PortMap:      n.PortMap,
		AutoNAT:      !n.DisableAutoNAT,
		HolePunching: !n.DisableHolePunching,
		RelayClient:  !n.DisableRelayClient,
		RelayService: n.RelayService,
	}
	for _, s := range n.StaticRelays {
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return r, fmt.Errorf("static relay %q (want a multiaddr ending in /p2p/{peer-id}): %w", s, err)
		}
		r.StaticRelays = append(r.StaticRelays, *info)
	}
	var err error
	if r.Announce, err = multiaddrs("announce", n.Announce); err != nil {
		return r, err
	}
	if r.NoAnnounce, err = multiaddrs("no_announce", n.NoAnnounce); err != nil {
		return r, err
	}
	switch n.Reachability {
	case "":
	case "public":
		r.Reachability = network.ReachabilityPublic
	case "private":
		r.Reachability = network.ReachabilityPrivate
	default:
		return r, fmt.Errorf("reachability: want public or private, got %q", n.Reachability)
	}
	return r, nil
}

// multiaddrs parses the multiaddrs of an option.
func multiaddrs(option string, list []string) ([]multiaddr.Multiaddr, error) {
	var out []multiaddr.Multiaddr
	for _, s := range list {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", option, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}
