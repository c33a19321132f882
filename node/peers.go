package node

import (
	"cmp"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
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
		best, limited := bestConn(n.host.Network().ConnsToPeer(p))
		if best == nil {
			continue // gone since the list was taken
		}
		bw := n.bw.GetBandwidthForPeer(p)
		out = append(out, PeerInfo{
			ID: p, Addr: best.RemoteMultiaddr(), Limited: limited,
			RateIn: bw.RateIn, RateOut: bw.RateOut, TotalIn: bw.TotalIn, TotalOut: bw.TotalOut,
		})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// bestConn returns the connection blocks would use among conns, a direct
// one when there is one, and whether it is limited: the peer is reached
// only through a relay. It returns nil for no connections.
func bestConn(conns []network.Conn) (network.Conn, bool) {
	var best network.Conn
	for _, c := range conns {
		if best == nil || best.Stat().Limited && !c.Stat().Limited {
			best = c
		}
	}
	return best, best != nil && best.Stat().Limited
}
