// Package viewers lets the browsers that play an edge's content trade
// blocks with each other. The edge is their tracker and their signalling
// relay, nothing more:
//
//   - a viewer connects to the edge over WebTransport and reserves a slot
//     on its circuit relay (v2), whose limits leave room for WebRTC's
//     signalling and none for media;
//   - it asks the edge's tracker (Protocol) for the other viewers of its
//     swarm, the content it plays, and dials them over WebRTC through the
//     relay;
//   - viewers then trade blocks over bitswap on their direct WebRTC
//     connections (BitswapProtocol), each block checked against its CID.
//
// Media never crosses the edge between viewers. What no viewer has comes
// from the edge over HTTP, as it does for any player. The browser's side
// is the script the package serves (peer.js, built from ./js).
package viewers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"go.uber.org/zap"
)

// Protocol is the tracker's libp2p protocol: a viewer names its swarm and
// hears of the others in it (see handle).
const Protocol = "/pacman/viewers/1.0.0"

// BitswapProtocol is the bitswap protocol viewers trade blocks over. It is
// not the network's, so a viewer's wants never reach the edge, which
// serves viewers over HTTP only, nor any other bitswap peer.
const BitswapProtocol = "/pacman/viewers/bitswap/1.2.0"

// Config limits what the edge does for viewers. Zero values take the
// defaults.
type Config struct {
	// MaxViewers bounds the viewers the edge tracks and relays for at
	// once. Default: 1000.
	MaxViewers int
	// MaxPerAddress bounds the relay slots taken from one IP address.
	// Default: 8.
	MaxPerAddress int
	// RelayData bounds the bytes relayed each way on one connection
	// between two viewers: enough for WebRTC's offer, answer and
	// candidates, not for media. Default: 128 KiB.
	RelayData int64
	// RelayDuration bounds how long a relayed connection lasts; WebRTC's
	// direct connection replaces it within seconds. Default: 2 minutes.
	RelayDuration time.Duration
}

// Defaults.
const (
	DefaultMaxViewers    = 1000
	DefaultMaxPerAddress = 8
	DefaultRelayData     = 128 << 10
	DefaultRelayDuration = 2 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.MaxViewers <= 0 {
		c.MaxViewers = DefaultMaxViewers
	}
	if c.MaxPerAddress <= 0 {
		c.MaxPerAddress = DefaultMaxPerAddress
	}
	if c.RelayData <= 0 {
		c.RelayData = DefaultRelayData
	}
	if c.RelayDuration <= 0 {
		c.RelayDuration = DefaultRelayDuration
	}
	return c
}

// Service is an edge's service to viewers: its relay and its tracker.
type Service struct {
	host    host.Host
	relay   *relayv2.Relay
	tracker *tracker
	log     *zap.Logger
	notify  *network.NotifyBundle
	tags    etags
	once    sync.Once
}

// Start starts the relay and the tracker on h.
func Start(h host.Host, cfg Config, log *zap.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	res := relayv2.DefaultResources()
	res.MaxReservations = cfg.MaxViewers
	res.MaxReservationsPerIP = cfg.MaxPerAddress
	res.MaxReservationsPerASN = max(res.MaxReservationsPerASN, cfg.MaxPerAddress)
	res.Limit = &relayv2.RelayLimit{Duration: cfg.RelayDuration, Data: cfg.RelayData}
	relay, err := relayv2.New(h, relayv2.WithResources(res))
	if err != nil {
		return nil, fmt.Errorf("starting the viewers' relay: %w", err)
	}
	s := &Service{host: h, relay: relay, tracker: newTracker(cfg.MaxViewers), log: log, tags: newEtags()}
	// A viewer that leaves leaves its swarm.
	s.notify = &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		p := c.RemotePeer()
		if n.Connectedness(p) != network.Connected {
			s.tracker.leave(p)
		}
	}}
	h.Network().Notify(s.notify)
	h.SetStreamHandler(Protocol, s.handle)
	return s, nil
}

// Close stops the tracker and the relay.
func (s *Service) Close() error {
	var err error
	s.once.Do(func() {
		s.host.RemoveStreamHandler(Protocol)
		s.host.Network().StopNotify(s.notify)
		err = s.relay.Close()
	})
	return err
}

// Viewers returns the number of viewers tracked now.
func (s *Service) Viewers() int { return s.tracker.count() }

// connected reports whether p is connected to the edge now.
func (s *Service) connected(p peer.ID) bool {
	return s.host.Network().Connectedness(p) == network.Connected
}

// handleTimeout bounds one tracker exchange: a viewer that opens a stream
// and says nothing holds it no longer.
const handleTimeout = 10 * time.Second

// handle answers one viewer's tracker request.
func (s *Service) handle(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(handleTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), handleTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	from := st.Conn().RemotePeer()
	swarm, err := readRequest(st)
	if err != nil {
		_ = writeAnswer(st, answer{Error: err.Error()})
		return
	}
	others, err := s.tracker.join(from, swarm, s.connected)
	if err != nil {
		_ = writeAnswer(st, answer{Error: err.Error()})
		return
	}
	ids := make([]string, len(others))
	for i, p := range others {
		ids[i] = p.String()
	}
	if err := writeAnswer(st, answer{Peers: ids}); err != nil {
		s.log.Debug("answering a viewer", zap.Stringer("peer", from), zap.Error(err))
	}
}
