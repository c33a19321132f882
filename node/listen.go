package node

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/multiformats/go-multiaddr"
)

// ErrListenInUse says a libp2p listen address is taken, most likely by
// another pacman or Kubo on this machine.
var ErrListenInUse = errors.New("listen address in use")

// claimListen refuses listen addresses another process holds. libp2p binds
// TCP with SO_REUSEPORT (hole punching dials from the listen port), so a
// second node on the same port would start, take half of the port's
// connections and fail its QUIC listeners quietly; a plain bind, which the
// kernel refuses beside a socket that holds the port, finds the owner
// first. Port 0 is never taken.
func claimListen(addrs []multiaddr.Multiaddr) error {
	seen := map[string]bool{}
	for _, a := range addrs {
		network, hostport, ok := socketOf(a)
		if !ok || seen[network+hostport] {
			continue
		}
		seen[network+hostport] = true
		var err error
		switch network {
		case "tcp":
			var l net.Listener
			if l, err = net.Listen(network, hostport); err == nil {
				err = l.Close()
			}
		case "udp":
			var c net.PacketConn
			if c, err = net.ListenPacket(network, hostport); err == nil {
				err = c.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("%w: %s (%s %s): is another pacman or IPFS node running, or is this a reload that changes data_dir (which needs a restart)? Stop it, or give this one other listen addresses: %v",
				ErrListenInUse, a, network, hostport, err)
		}
	}
	return nil
}

// socketOf returns the socket a listen multiaddr binds: tcp or udp, and
// host:port; false for addresses with no IP or with port 0.
func socketOf(a multiaddr.Multiaddr) (network, hostport string, ok bool) {
	ip, err := a.ValueForProtocol(multiaddr.P_IP4)
	if err != nil {
		if ip, err = a.ValueForProtocol(multiaddr.P_IP6); err != nil {
			return "", "", false
		}
	}
	for _, p := range []struct {
		code    int
		network string
	}{{multiaddr.P_TCP, "tcp"}, {multiaddr.P_UDP, "udp"}} {
		if port, err := a.ValueForProtocol(p.code); err == nil {
			if port == "0" {
				return "", "", false
			}
			if _, err := strconv.Atoi(port); err != nil {
				return "", "", false
			}
			return p.network, net.JoinHostPort(ip, port), true
		}
	}
	return "", "", false
}
