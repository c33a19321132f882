package caddymodule

import (
	"context"

	"github.com/pacman-cdn/pacman/edge"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Running is an edge this Caddy runs, with what lives as long as it: its
// metrics and the settings it started with. The usage pool keeps one per
// data directory across reloads and stops it when the last config using
// it is cleaned up. pacman's admin routes and dashboard read it.
type Running struct {
	edge     *edge.Edge
	settings *settings
	metrics  *nodeMetrics
	history  *history
}

// Destruct stops the edge.
func (r *Running) Destruct() error {
	r.history.close()
	return r.edge.Close()
}

// History returns the edge's totals of the last minutes, a sample a
// second, oldest first.
func (r *Running) History() []Sample { return r.history.list() }

// Edge returns the running edge.
func (r *Running) Edge() *edge.Edge { return r.edge }

// EachRunning calls fn with the data directory and the edge of each edge
// this Caddy runs, until fn returns false.
func EachRunning(fn func(dataDir string, r *Running) bool) {
	nodes.Range(func(key, value any) bool { return fn(key.(string), value.(*Running)) })
}

// Figures are a running edge's totals, as the dashboard and its JSON
// show them.
type Figures struct {
	// Delivered are the bytes delivered to viewers, by the source that
	// supplied each block: local, fleet, peers, http, origin.
	Delivered map[string]float64 `json:"delivered"`
	// Fetched are the bytes that crossed into the edge, by source, once
	// per fetch however many viewers shared it.
	Fetched map[string]float64 `json:"fetched"`
	// Peers is the number of peers connected.
	Peers int `json:"peers"`
	// BytesSeeded are the block bytes sent to peers over bitswap.
	BytesSeeded uint64 `json:"bytes_seeded"`
	// FleetReceived and FleetSent are the block bytes received from and
	// sent to fleet members.
	FleetReceived int64 `json:"fleet_received"`
	FleetSent     int64 `json:"fleet_sent"`
	// FleetMembers is the number of fleet members live now.
	FleetMembers int `json:"fleet_members"`
	// CacheBytes are the bytes of the evictable cache, Evictions the
	// blocks it evicted, and StoreBytes the store's size on disk.
	CacheBytes int64  `json:"cache_bytes"`
	Evictions  uint64 `json:"evictions"`
	StoreBytes uint64 `json:"store_bytes"`
	// LeavesInFlight are the leaves fetched or held for responses now,
	// and Stalls the responses cut for a late block.
	LeavesInFlight float64 `json:"leaves_in_flight"`
	Stalls         float64 `json:"stalls"`
	// OriginPull are the bytes origin_pull took from its origins, by
	// reason (proxy, pull), Pulling the files being pulled now, and
	// URLsKnown the origin URLs whose CID the edge knows.
	OriginPull map[string]float64 `json:"origin_pull"`
	Pulling    float64            `json:"pulling"`
	URLsKnown  float64            `json:"urls_known"`
	// RouteOffload is each route's offload: the share of the bytes
	// delivered to its viewers that did not come from the origin.
	RouteOffload map[string]float64 `json:"route_offload"`
}

// Figures reads the edge's figures.
func (r *Running) Figures(ctx context.Context) (Figures, error) {
	st, err := r.edge.Node().Stats(ctx)
	if err != nil {
		return Figures{}, err
	}
	m := r.metrics
	received, sent := r.edge.Fleet().Counts()
	return Figures{
		FleetReceived: received, FleetSent: sent, FleetMembers: len(r.edge.Fleet().Members()),
		Delivered: sumBy(m.blockBytes, "source"), Fetched: sumBy(m.fetchedBytes, "source"),
		Peers: st.Peers, BytesSeeded: st.BytesSeeded, CacheBytes: st.CacheBytes, Evictions: st.Evictions, StoreBytes: st.StoreBytes,
		LeavesInFlight: value(m.leavesInFlight), Stalls: value(m.stalls),
		OriginPull: sumBy(m.pullBytes, "reason"), Pulling: value(m.pulling), URLsKnown: value(m.urlsKnown),
		RouteOffload: offloadBy(m.routeBytes, "route"),
	}, nil
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

// offloadBy returns, for each value of label in a vector of delivered
// bytes by source, the share not delivered from the origin.
func offloadBy(v *prometheus.CounterVec, label string) map[string]float64 {
	total, origin := map[string]float64{}, map[string]float64{}
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		var key, source string
		for _, l := range pb.GetLabel() {
			switch l.GetName() {
			case label:
				key = l.GetValue()
			case "source":
				source = l.GetValue()
			}
		}
		total[key] += pb.GetCounter().GetValue()
		if source == "origin" {
			origin[key] += pb.GetCounter().GetValue()
		}
	}
	out := make(map[string]float64, len(total))
	for k, t := range total {
		if t > 0 {
			out[k] = 1 - origin[k]/t
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
