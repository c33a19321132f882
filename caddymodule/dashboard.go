package caddymodule

import (
	"context"
	_ "embed"

	"github.com/pacman-cdn/pacman/live"
)

// dashboardPage is the operator's page that pacman_stats serves to a
// browser: plain HTML and a script that reads the same URL as JSON each
// second and charts the bytes fetched by source. It loads nothing else.
//
//go:embed dashboard.html
var dashboardPage []byte

// nodeDashboard is one node as pacman_stats reports it.
type nodeDashboard struct {
	DataDir string        `json:"data_dir"`
	PeerID  string        `json:"peer_id"`
	Figures nodeFigures   `json:"figures"`
	Peers   []peerFigures `json:"peers"`
	Live    []live.Info   `json:"live,omitempty"`
}

// peerFigures is one connected peer: where it is connected, whether only
// through a relay, and the bytes per second to and from it.
type peerFigures struct {
	ID       string  `json:"id"`
	Addr     string  `json:"addr"`
	Relayed  bool    `json:"relayed,omitempty"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
	TotalIn  int64   `json:"total_in"`
	TotalOut int64   `json:"total_out"`
}

// dashboardOf reads one node's figures, peers and live streams.
func dashboardOf(ctx context.Context, dataDir string, d *nodeDestructor) (nodeDashboard, error) {
	nd := nodeDashboard{DataDir: dataDir, PeerID: d.Host().ID().String(), Live: d.edge.Live().Streams().List()}
	var err error
	if nd.Figures, err = figures(ctx, d); err != nil {
		return nd, err
	}
	for _, p := range d.Peers() {
		nd.Peers = append(nd.Peers, peerFigures{
			ID: p.ID.String(), Addr: p.Addr.String(), Relayed: p.Limited,
			RateIn: p.RateIn, RateOut: p.RateOut, TotalIn: p.TotalIn, TotalOut: p.TotalOut,
		})
	}
	return nd, nil
}
