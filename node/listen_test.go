package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/multiformats/go-multiaddr"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestSecondNodeOnTheSamePorts: a second node on a running one's TCP and
// QUIC ports is refused with a reason, whatever its data directory. Before,
// libp2p's SO_REUSEPORT let it start: the two shared the port's
// connections and the second dropped its QUIC listener without a word.
func TestSecondNodeOnTheSamePorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tcp := multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	quic := multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))
	first := testutil.NewNodeConfig(t, node.Config{ListenAddrs: []multiaddr.Multiaddr{tcp, quic}})
	if len(first.Host().Addrs()) < 2 {
		t.Fatalf("the first node listens on %v, want TCP and QUIC", first.Host().Addrs())
	}
	for _, addrs := range [][]multiaddr.Multiaddr{{tcp}, {quic}} {
		second, err := node.New(context.Background(), node.Config{DataDir: t.TempDir(), ListenAddrs: addrs})
		if err == nil {
			second.Close()
			t.Errorf("a second node on %v started beside the first", addrs)
			continue
		}
		if !errors.Is(err, node.ErrListenInUse) {
			t.Errorf("a second node on %v: %v, want ErrListenInUse", addrs, err)
		}
		t.Logf("refused: %v", err)
	}
	// Port 0 is never in use.
	testutil.NewNodeConfig(t, node.Config{ListenAddrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}})
}
