package admin

import (
	"context"
	_ "embed"

	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/live"
)

// dashboardPage is the operator's page that pacman_stats serves to a
// browser: plain HTML and a script that reads the same URL as JSON each
// second and charts the edge's last five minutes, kept by the edge: the
// bytes delivered to viewers each second, by source. It loads nothing
// else.
//
//go:embed dashboard.html
var dashboardPage []byte

// Dashboard is one edge as pacman_stats reports it.
type Dashboard struct {
	DataDir string              `json:"data_dir"`
	PeerID  string              `json:"peer_id"`
	Figures caddymodule.Figures `json:"figures"`
	Peers   []PeerFigures       `json:"peers"`
	Live    []live.Info         `json:"live,omitempty"`
	// History is the edge's totals of the last five minutes, a sample
	// a second, kept by the edge.
	History []caddymodule.Sample `json:"history"`
}

// PeerFigures is one connected peer: where it is connected, whether only
// through a relay, and the bytes per second to and from it.
type PeerFigures struct {
	ID       string  `json:"id"`
	Addr     string  `json:"addr"`
	Relayed  bool    `json:"relayed,omitempty"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
	TotalIn  int64   `json:"total_in"`
	TotalOut int64   `json:"total_out"`
}

// dashboardOf reads one node's figures, peers and live streams.
func dashboardOf(ctx context.Context, dataDir string, r *caddymodule.Running) (Dashboard, error) {
	e := r.Edge()
	nd := Dashboard{DataDir: dataDir, PeerID: e.Node().Host().ID().String(), Live: e.Live().Streams().List(), History: r.History()}
	var err error
	if nd.Figures, err = r.Figures(ctx); err != nil {
		return nd, err
	}
	for _, p := range e.Node().Peers() {
		nd.Peers = append(nd.Peers, PeerFigures{
			ID: p.ID.String(), Addr: p.Addr.String(), Relayed: p.Limited,
			RateIn: p.RateIn, RateOut: p.RateOut, TotalIn: p.TotalIn, TotalOut: p.TotalOut,
		})
	}
	return nd, nil
}
