package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func init() {
	caddy.RegisterModule(Stats{})
	httpcaddyfile.RegisterHandlerDirective("pacman_stats", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		s := new(Stats)
		return s, s.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("pacman_stats", httpcaddyfile.Before, "file_server")
}

// Stats serves the node's figures as JSON (http.handlers.pacman_stats):
// the bytes fetched and delivered to viewers by source, connected peers, bytes seeded
// and the cache. The demo's landing page reads it; mount it on a site
// route behind Caddy's own auth to watch an edge from a page of your own.
type Stats struct {
	app *App
}

// nodeFigures is what Stats serves.
type nodeFigures struct {
	// Delivered are the bytes delivered to viewers, by the source that
	// supplied each block: local, fleet, peers, http, origin.
	Delivered map[string]float64 `json:"delivered"`
	// Fetched are the bytes that crossed into the edge, by source, once
	// per fetch however many viewers shared it.
	Fetched        map[string]float64 `json:"fetched"`
	Peers          int                `json:"peers"`
	BytesSeeded    uint64             `json:"bytes_seeded"`
	CacheBytes     int64              `json:"cache_bytes"`
	LeavesInFlight float64            `json:"leaves_in_flight"`
}

// CaddyModule returns the Caddy module information.
func (Stats) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman_stats",
		New: func() caddy.Module { return new(Stats) },
	}
}

// Provision finds the pacman app.
func (s *Stats) Provision(ctx caddy.Context) error {
	app, err := AppFrom(ctx)
	s.app = app
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it answers every
// request it is routed.
func (s *Stats) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.app.Node().Stats(ctx)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	m := s.app.running.metrics
	out := nodeFigures{Delivered: sumBy(m.blockBytes, "source"), Fetched: sumBy(m.fetchedBytes, "source"), Peers: st.Peers, BytesSeeded: st.BytesSeeded, CacheBytes: st.CacheBytes, LeavesInFlight: value(m.leavesInFlight)}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// sumBy returns a counter vector's values summed by one of its labels.
func sumBy(v *prometheus.CounterVec, label string) map[string]float64 {
	out := map[string]float64{}
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] += pb.GetCounter().GetValue()
			}
		}
	}
	return out
}

// value returns a gauge's value.
func value(g prometheus.Gauge) float64 {
	var pb dto.Metric
	if g.Write(&pb) != nil {
		return 0
	}
	return pb.GetGauge().GetValue()
}

// UnmarshalCaddyfile reads `pacman_stats`, which takes no arguments.
func (s *Stats) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { return caddyargs.None(d) }

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Stats)(nil)
	_ caddy.Provisioner           = (*Stats)(nil)
	_ caddyfile.Unmarshaler       = (*Stats)(nil)
)
