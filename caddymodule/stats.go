package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
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

// Stats serves the operator's dashboard (http.handlers.pacman_stats): to a
// browser (Accept: text/html) a page that charts the bytes fetched by
// source and shows the offload, peers, streams, cache and live streams;
// to anything else the same figures as JSON, which the page and the
// demo's landing page read each second. Mount it on a site route behind
// Caddy's own auth: Caddy's admin endpoint refuses browsers.
type Stats struct {
	app *App
}

// nodeFigures is what Stats and the dashboard serve.
type nodeFigures struct {
	// Delivered are the bytes delivered to viewers, by the source that
	// supplied each block: local, fleet, peers, http, origin.
	Delivered map[string]float64 `json:"delivered"`
	// Fetched are the bytes that crossed into the edge, by source, once
	// per fetch however many viewers shared it.
	Fetched        map[string]float64 `json:"fetched"`
	Peers          int                `json:"peers"`
	BytesSeeded    uint64             `json:"bytes_seeded"`
	FleetReceived  int64              `json:"fleet_received"`
	FleetSent      int64              `json:"fleet_sent"`
	CacheBytes     int64              `json:"cache_bytes"`
	Evictions      uint64             `json:"evictions"`
	StoreBytes     uint64             `json:"store_bytes"`
	LeavesInFlight float64            `json:"leaves_in_flight"`
	Stalls         float64            `json:"stalls"`
}

// figures reads a running node's figures.
func figures(ctx context.Context, d *nodeDestructor) (nodeFigures, error) {
	st, err := d.Stats(ctx)
	if err != nil {
		return nodeFigures{}, err
	}
	m := d.metrics
	received, sent := d.edge.Fleet().Counts()
	return nodeFigures{
		FleetReceived: received, FleetSent: sent,
		Delivered: sumBy(m.blockBytes, "source"), Fetched: sumBy(m.fetchedBytes, "source"),
		Peers: st.Peers, BytesSeeded: st.BytesSeeded, CacheBytes: st.CacheBytes, Evictions: st.Evictions, StoreBytes: st.StoreBytes,
		LeavesInFlight: value(m.leavesInFlight), Stalls: value(m.stalls),
	}, nil
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
	if wantsPage(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Header().Set("Vary", "Accept")
		_, err := w.Write(dashboardPage)
		return err
	}
	out, err := dashboardOf(ctx, s.app.DataDir, s.app.running)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// wantsPage reports whether a browser asks for a page rather than JSON.
func wantsPage(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "text/html" {
			return true
		}
	}
	return false
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

// value returns a gauge's or a counter's value.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if m.Write(&pb) != nil {
		return 0
	}
	if c := pb.GetCounter(); c != nil {
		return c.GetValue()
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
