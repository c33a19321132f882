package node

import (
	"cmp"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// PeerInfo is one connected peer as the node sees it.
type PeerInfo struct {
	ID peer.ID
	// Addr is the remote address of the connection in use: a direct one
	// when there is one.
	Addr multiaddr.Multiaddr
	// Limited is set when the only connection goes through a relay
	// (circuit relay v2: limited in time and bytes, and not used for
	// blocks) and no hole punch has made a direct one yet.
	Limited bool
	// RateIn and RateOut are the bytes per second received from and sent
	// to the peer, averaged over the last seconds; TotalIn and TotalOut
	// are the bytes since the node started.
	RateIn, RateOut   float64
	TotalIn, TotalOut int64
}

// Peers returns the connected peers, by peer ID.
func (n *Node) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range n.host.Network().Peers() {
		conns := n.host.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue // gone since the list was taken
		}
		best := conns[0]
		for _, c := range conns[1:] {
			if best.Stat().Limited && !c.Stat().Limited {
				best = c
			}
		}
		bw := n.bw.GetBandwidthForPeer(p)
		out = append(out, PeerInfo{
			ID: p, Addr: best.RemoteMultiaddr(), Limited: best.Stat().Limited,
			RateIn: bw.RateIn, RateOut: bw.RateOut, TotalIn: bw.TotalIn, TotalOut: bw.TotalOut,
		})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
