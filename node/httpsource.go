package node

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/httpurl"
)

// gatewayPeer turns the URL of a trustless gateway (one that answers
// GET /ipfs/{cid}?format=raw) into the peer bitswap's HTTP network asks:
// the peer ID is derived from the URL, as gateways have none, and never
// needs proving since every block is checked against its CID.
func gatewayPeer(rawURL string) (peer.AddrInfo, error) {
	u, err := httpurl.Parse(rawURL)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("HTTP gateway %w", err)
	}
	if u.Path != "" && u.Path != "/" {
		return peer.AddrInfo{}, fmt.Errorf("HTTP gateway %q: serve it at the root of its host (/ipfs/...), not under a path", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := "/dns/" + u.Hostname()
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		host = "/ip4/" + ip.String()
		if ip.To4() == nil {
			host = "/ip6/" + ip.String()
		}
	}
	ma, err := multiaddr.NewMultiaddr(host + "/tcp/" + port + "/" + u.Scheme)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("HTTP gateway %q: %w", rawURL, err)
	}
	sum, err := mh.Sum([]byte(u.Scheme+"://"+u.Host), mh.SHA2_256, -1)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return peer.AddrInfo{ID: peer.ID(sum), Addrs: []multiaddr.Multiaddr{ma}}, nil
}

// keepGatewayConnected connects bitswap's HTTP network to the gateway p
// now and again whenever it is not connected, until ctx ends. A gateway
// that fails its probe is retried after the HTTP network's cool-down.
func (n *Node) keepGatewayConnected(ctx context.Context, p peer.AddrInfo) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		if !n.net.IsConnectedToPeer(ctx, p.ID) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := n.net.Connect(cctx, p); err != nil && ctx.Err() == nil {
				n.log.Debug("HTTP gateway not reachable yet")
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
