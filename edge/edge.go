// Package edge is the running edge: the node, the fleet it shares its
// origin's work with, the fetches in flight, the live relay, the IPNS
// records it keeps and announces, and the routes (the gateway handlers
// of the running configuration) that decide what it serves and seeds.
// It knows neither Caddy nor HTTP: package caddymodule translates a
// configuration into an Edge and keeps one per data directory across
// reloads.
package edge

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/live"
	"github.com/pacman-cdn/pacman/names"
	"github.com/pacman-cdn/pacman/node"
	"github.com/pacman-cdn/pacman/viewers"
	"go.uber.org/zap"
)

// Observer is told of the edge's fetches and of its live segments.
type Observer interface {
	hedge.Observer
	live.Observer
}

// Config describes an edge.
type Config struct {
	// Node is the node's configuration; its DataDir also holds the live
	// journal and the IPNS records. Its Refuse is the edge's own.
	Node node.Config
	// Observer is told of fetches and live segments. Required.
	Observer Observer
	// Logger receives the edge's logs. Nil means none.
	Logger *zap.Logger
	// Viewers, if not nil, makes the edge the tracker and signalling
	// relay of the browsers that play its content (viewer peers).
	Viewers *viewers.Config
}

// Edge is one running edge. Its parts live as long as it does.
type Edge struct {
	node    *node.Node
	fleet   *fleet.Fleet
	flights *hedge.Flights
	// live follows the live streams; livePeers are the bitswap sessions
	// it fetches segments through.
	live      *live.Relay
	livePeers *hedge.Sessions
	names     *names.Network
	// viewers is the service to viewer peers; nil when off.
	viewers *viewers.Service
	// stopAnnouncing ends the announcing of names, if the node routes.
	stopAnnouncing context.CancelFunc
	serving        serving
	purgers        purgers
	log            *zap.Logger
}

// New starts an edge: its node, the fleet of the node's static peers, and
// the live relay, restored from the journal of what this edge announced.
// ctx bounds the start, not the edge's life; Close ends that.
func New(ctx context.Context, cfg Config) (*Edge, error) {
	if cfg.Observer == nil {
		return nil, fmt.Errorf("an edge needs an observer")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	e := &Edge{flights: hedge.NewFlights(), log: cfg.Logger}
	cfg.Node.Refuse = e.serving.refuses
	n, err := node.New(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	e.node = n
	// From here on, Close undoes what has started.
	if err := e.start(cfg); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// start starts the parts over the node.
func (e *Edge) start(cfg Config) error {
	members := make([]peer.ID, len(cfg.Node.Peers))
	for i, p := range cfg.Node.Peers {
		members[i] = p.ID
	}
	var err error
	if e.fleet, err = fleet.New(fleet.Config{Host: e.node.Host(), Members: members, Swarm: len(cfg.Node.SwarmKey) > 0, Uploads: e.node, Logger: e.log}); err != nil {
		return err
	}
	e.fleet.SetServe(e.serving.serveFleet)
	e.fleet.SetPurge(e.purgeHere)
	fetch, err := e.liveFetcher(cfg.Observer)
	if err != nil {
		return err
	}
	h := e.node.Host()
	if e.live, err = live.NewRelay(h, h.Peerstore().PrivKey(h.ID()), fetch, cfg.Observer, e.log.Named("live")); err != nil {
		return err
	}
	// What this edge announced survives a restart: its streams'
	// numbering goes on, and recordings list every segment.
	journal, err := live.NewFileJournal(filepath.Join(cfg.Node.DataDir, "live"))
	if err != nil {
		return err
	}
	if err := e.live.Restore(journal); err != nil {
		return err
	}
	store, err := names.Open(filepath.Join(cfg.Node.DataDir, "ipns"))
	if err != nil {
		return err
	}
	e.names = &names.Network{Store: store}
	if e.node.HasRouting() {
		e.names.Routing = e.node
		ctx, cancel := context.WithCancel(context.Background())
		e.stopAnnouncing = cancel
		go announceNames(ctx, e.names, e.log.Named("ipns"))
	}
	if cfg.Viewers != nil {
		if e.viewers, err = viewers.Start(h, *cfg.Viewers, e.log.Named("viewers")); err != nil {
			return err
		}
	}
	return nil
}

// liveFetcher returns how the relay makes announced segments local:
// through a hedge over the node's peers and the fleet.
func (e *Edge) liveFetcher(obs hedge.Observer) (live.Fetcher, error) {
	e.livePeers = live.PeerSessions(func(ctx context.Context) hedge.Getter { return e.node.NewSession(ctx) })
	h, err := hedge.New(hedge.Config{
		Local:    e.node.Store(),
		Sources:  []hedge.Source{e.livePeers},
		Fleet:    e.fleet,
		Flights:  e.flights,
		Store:    e.node,
		Observer: obs,
	})
	if err != nil {
		return nil, err
	}
	return live.HedgeFetcher(h), nil
}

// Close stops the edge: its announcing, its service to viewers, the
// relay, the fleet and the node, in that order.
func (e *Edge) Close() error {
	if e.stopAnnouncing != nil {
		e.stopAnnouncing()
	}
	var err error
	if e.viewers != nil {
		err = e.viewers.Close()
	}
	if e.live != nil {
		err = errors.Join(err, e.live.Close())
	}
	if e.livePeers != nil {
		e.livePeers.Close()
	}
	if e.fleet != nil {
		e.fleet.Close()
	}
	return errors.Join(err, e.node.Close())
}

// Node returns the edge's node.
func (e *Edge) Node() *node.Node { return e.node }

// Fleet returns the edges this one shares its origin's work with.
func (e *Edge) Fleet() *fleet.Fleet { return e.fleet }

// Flights returns the fetches in flight on this edge, shared by every
// route and by the live relay.
func (e *Edge) Flights() *hedge.Flights { return e.flights }

// Viewers returns the edge's service to viewer peers, or nil when it has
// none.
func (e *Edge) Viewers() *viewers.Service { return e.viewers }

// Live returns the edge's live relay.
func (e *Edge) Live() *live.Relay { return e.live }

// Names returns the IPNS records the edge keeps, looks up and announces.
func (e *Edge) Names() *names.Network { return e.names }
