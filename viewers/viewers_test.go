package viewers

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/multiformats/go-multiaddr"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// newEdge starts the service on a host of its own.
func newEdge(t *testing.T, cfg Config) (host.Host, *Service) {
	t.Helper()
	h := newHost(t)
	s, err := Start(h, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return h, s
}

func connect(t *testing.T, h, to host.Host) {
	t.Helper()
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// ask sends raw as the tracker request and returns the answer.
func ask(t *testing.T, h host.Host, edge peer.ID, raw []byte) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, edge, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(raw); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	body, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(body)
	if k <= 0 || int(n) != len(body)-k {
		t.Fatalf("answer %q is not one length-prefixed frame", body)
	}
	var a answer
	if err := json.Unmarshal(body[k:], &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func request(swarm string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(swarm))), swarm...)
}

func ids(hs ...host.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID().String()
	}
	return out
}

// TestTrackerIntroducesTheSwarm: each viewer hears of the other viewers of
// its swarm still connected, newest first, and of no other swarm's.
func TestTrackerIntroducesTheSwarm(t *testing.T) {
	edge, svc := newEdge(t, Config{})
	v1, v2, v3, v4 := newHost(t), newHost(t), newHost(t), newHost(t)
	for _, v := range []host.Host{v1, v2, v3, v4} {
		connect(t, v, edge)
	}
	if a := ask(t, v1, edge.ID(), request("site/live/a/")); a.Error != "" || len(a.Peers) != 0 {
		t.Fatalf("the first viewer was told %+v; want nobody", a)
	}
	if a := ask(t, v2, edge.ID(), request("site/live/a/")); !slices.Equal(a.Peers, ids(v1)) {
		t.Fatalf("the second viewer was told %v; want %v", a.Peers, ids(v1))
	}
	if a := ask(t, v3, edge.ID(), request("site/live/b/")); len(a.Peers) != 0 {
		t.Fatalf("a viewer of another swarm was told %v", a.Peers)
	}
	if a := ask(t, v4, edge.ID(), request("site/live/a/")); !slices.Equal(a.Peers, ids(v2, v1)) {
		t.Fatalf("the third viewer of a was told %v; want %v, newest first", a.Peers, ids(v2, v1))
	}
	// A viewer that leaves is named no more, and counted no more.
	_ = v1.Network().ClosePeer(edge.ID())
	deadline := time.Now().Add(5 * time.Second)
	for svc.Viewers() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d viewers tracked after one left; want 3", svc.Viewers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := ask(t, v4, edge.ID(), request("site/live/a/")); !slices.Equal(a.Peers, ids(v2)) {
		t.Fatalf("after the first left, a viewer was told %v; want %v", a.Peers, ids(v2))
	}
	// Moving to another swarm leaves the first.
	if a := ask(t, v2, edge.ID(), request("site/live/b/")); !slices.Equal(a.Peers, ids(v3)) {
		t.Fatalf("a viewer moving to b was told %v; want %v", a.Peers, ids(v3))
	}
	if a := ask(t, v4, edge.ID(), request("site/live/a/")); len(a.Peers) != 0 {
		t.Fatalf("a was still said to hold %v after its viewer moved", a.Peers)
	}
}

// TestTrackerRefusesBadRequestsAndTooMany: a bad name gets an error that
// says what is wrong, and past max_viewers a new viewer is refused while
// one already tracked may still ask.
func TestTrackerRefusesBadRequestsAndTooMany(t *testing.T) {
	edge, _ := newEdge(t, Config{MaxViewers: 2})
	v := newHost(t)
	connect(t, v, edge)
	for _, c := range []struct {
		raw  []byte
		want string
	}{
		{request(""), "1 to 256 bytes, not 0"},
		{request(strings.Repeat("x", MaxSwarm+1)), "not 257"},
		{request("\xff\xfe"), "UTF-8"},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "reading the swarm's name"},
		{append(binary.AppendUvarint(nil, 10), "short"...), "reading the swarm's name"},
	} {
		if a := ask(t, v, edge.ID(), c.raw); !strings.Contains(a.Error, c.want) || a.Peers != nil {
			t.Errorf("request %q: answer %+v; want an error saying %q", c.raw, a, c.want)
		}
	}
	v1, v2, v3 := newHost(t), newHost(t), newHost(t)
	for _, h := range []host.Host{v1, v2, v3} {
		connect(t, h, edge)
	}
	ask(t, v1, edge.ID(), request("s"))
	ask(t, v2, edge.ID(), request("s"))
	if a := ask(t, v3, edge.ID(), request("s")); a.Error != ErrFull.Error() {
		t.Fatalf("the third of max_viewers 2 was answered %+v; want %q", a, ErrFull)
	}
	if a := ask(t, v1, edge.ID(), request("s")); a.Error != "" || !slices.Equal(a.Peers, ids(v2)) {
		t.Fatalf("a tracked viewer asking again was answered %+v", a)
	}
}

// TestTrackerDropsASilentViewer: a viewer that opens a stream and says
// nothing holds it for handleTimeout, not for ever.
func TestTrackerDropsASilentViewer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the tracker's timeout")
	}
	edge, _ := newEdge(t, Config{})
	v := newHost(t)
	connect(t, v, edge)
	s, err := v.NewStream(context.Background(), edge.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	// The test's own deadline: a tracker that never drops the stream fails
	// the test then, rather than hanging it.
	start, limit := time.Now(), handleTimeout+2*time.Second
	if err := s.SetReadDeadline(start.Add(limit)); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(s)
	if took := time.Since(start); took >= limit {
		t.Fatalf("a silent viewer held its stream %v (err %v)", took, err)
	}
}

// TestRelayCarriesSignallingNotMedia: two viewers connected through the
// edge's relay can exchange what WebRTC's signalling needs, and the edge
// cuts the connection once it has relayed relay_data bytes: media cannot
// go through it.
func TestRelayCarriesSignallingNotMedia(t *testing.T) {
	const limit = 64 << 10
	edge, _ := newEdge(t, Config{RelayData: limit})
	a, b := newHost(t), newHost(t)
	connect(t, a, edge)
	connect(t, b, edge)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Reserve(ctx, a, peer.AddrInfo{ID: edge.ID(), Addrs: edge.Addrs()}); err != nil {
		t.Fatalf("reserving a slot on the edge's relay: %v", err)
	}
	got := make(chan int64, 1)
	a.SetStreamHandler("/test/sink", func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		got <- n
	})
	circuit := multiaddr.StringCast(edge.Addrs()[0].String() + "/p2p/" + edge.ID().String() + "/p2p-circuit")
	b.Peerstore().AddAddrs(a.ID(), []multiaddr.Multiaddr{circuit}, time.Minute)
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []multiaddr.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connecting through the relay: %v", err)
	}
	s, err := b.NewStream(network.WithAllowLimitedConn(ctx, "test"), a.ID(), "/test/sink")
	if err != nil {
		t.Fatal(err)
	}
	offer := bytes.Repeat([]byte("v=0 o=- sdp "), 400) // about 5 KiB, an SDP offer's size
	if _, err := s.Write(offer); err != nil {
		t.Fatalf("a signalling-sized message did not cross the relay: %v", err)
	}
	media := make([]byte, 1<<20)
	var sent int
	for sent < len(media) {
		n, err := s.Write(media[sent:min(sent+16<<10, len(media))])
		sent += n
		if err != nil {
			break
		}
	}
	_ = s.Close()
	select {
	case n := <-got:
		if n < int64(len(offer)) || n > limit {
			t.Fatalf("the relay carried %d bytes between viewers; want the %d of the offer and at most %d", n, len(offer), limit)
		}
	case <-ctx.Done():
		t.Fatal("the relayed stream never ended")
	}
}
