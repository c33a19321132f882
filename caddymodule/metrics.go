package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/node"
	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the node's Prometheus metrics. They live as long as the
// node, across config reloads, and are registered on each config's
// registry, the one Caddy's admin endpoint serves at /metrics.
type nodeMetrics struct {
	blockBytes     *prometheus.CounterVec
	blockWait      *prometheus.HistogramVec
	firstByte      prometheus.Histogram
	stalls         prometheus.Counter
	leavesInFlight prometheus.Gauge
	fetchedBytes   *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	liveHeld       *prometheus.HistogramVec
	liveDropped    *prometheus.CounterVec
	pullBytes      *prometheus.CounterVec
	pulls          *prometheus.CounterVec
	pulling        prometheus.Gauge
	pullChanged    prometheus.Counter
	urlsKnown      prometheus.Gauge
	routeBytes     *prometheus.CounterVec
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		blockBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "block_bytes_total",
			Help:      "Bytes of blocks delivered to viewers' streams, each delivery once, by the source that supplied it: local (the blockstore), fleet (another edge), peers (bitswap), http (a trustless gateway) or origin (verified). Streams that shared one fetch each count it under its source. A cold origin_pull response (no CID known yet) counts under origin.",
		}, []string{"source"}),
		blockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pacman",
			Name:      "block_wait_seconds",
			Help:      "Time a viewer's stream waited for one block, by source.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"source"}),
		firstByte: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "pacman",
			Name:      "first_byte_seconds",
			Help:      "Time from a request's arrival to the first byte of its body.",
			Buckets:   prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "stalls_total",
			Help:      "Streams cut short because no source delivered a block within the stall timeout.",
		}),
		leavesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "pacman",
			Name:      "leaves_in_flight",
			Help:      "File leaves being fetched for streams right now.",
		}),
		fetchedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "fetched_bytes_total",
			Help:      "Bytes of blocks that crossed into this edge, once per fetch however many streams shared it, by source (fleet, peers, http, origin) and reason (viewer: a viewer's miss; readahead; fleet: a fleet member's want this edge owns). source=\"origin\" is the origin's egress to this edge: the figure the fleet exists to keep near one file's worth.",
		}, []string{"source", "reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "rejected_total",
			Help:      "Answers whose bytes did not hash to the block's CID, by source; never served or stored.",
		}, []string{"source"}),
		liveHeld: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pacman",
			Name:      "live_segment_held_seconds",
			Help:      "Time from a live segment's announcement to this node holding it, by stream.",
			Buckets:   prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"stream"}),
		liveDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "live_dropped_total",
			Help:      "Live announcements refused, by reason: rate (a peer over its gossip rate, ignored unread), untrusted (a key not in live_trust), forged (a signature that does not verify), malformed, stale (too old) or replayed.",
		}, []string{"reason"}),
		pullBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "origin_pull_bytes_total",
			Help:      "Body bytes origin_pull took from its origins, by reason: proxy (cold responses) or pull (whole files pulled). Leaves fetched by range are pacman_fetched_bytes_total{source=\"origin\"}.",
		}, []string{"reason"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "origin_pull_pulls_total",
			Help:      "Pulls of whole files that ended, by result: pulled, not_kept (private, no-store or over max_pull_size) or failed.",
		}, []string{"result"}),
		pulling: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "pacman",
			Name:      "origin_pull_pulling",
			Help:      "Files being pulled from origins now.",
		}),
		pullChanged: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "origin_pull_changed_total",
			Help:      "Pulled files the origin changed under the same validators: a leaf fetched by range did not match its CID, none of its bytes was served, and the file is pulled again.",
		}),
		urlsKnown: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "pacman",
			Name:      "origin_pull_urls_known",
			Help:      "Origin URLs whose CID this edge knows (records kept in its data directory): pulled here, or told by the fleet member that pulled them.",
		}),
		routeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "route_delivered_bytes_total",
			Help:      "pacman_block_bytes_total for one route (its path, or its route subdirective): bytes delivered to its viewers by source; the route's offload is 1 - its origin bytes over its total. A cold origin_pull response counts under origin.",
		}, []string{"route", "source"}),
	}
}

// Route implements caddymodule.Observer.
func (m *nodeMetrics) Route(name string) hedge.Observer {
	return routeObserver{m, m.routeBytes.MustCurryWith(prometheus.Labels{"route": name})}
}

// routeObserver observes one route's blocks.
type routeObserver struct {
	*nodeMetrics
	delivered *prometheus.CounterVec
}

// Delivered implements hedge.Observer: the edge's count and the route's.
func (o routeObserver) Delivered(source string, bytes int, wait time.Duration) {
	o.nodeMetrics.Delivered(source, bytes, wait)
	o.delivered.WithLabelValues(source).Add(float64(bytes))
}

// KnownURLs implements caddymodule.Observer.
func (m *nodeMetrics) KnownURLs(delta int) { m.urlsKnown.Add(float64(delta)) }

// OriginBytes implements originpull.Observer.
func (m *nodeMetrics) OriginBytes(reason string, n int64) {
	m.pullBytes.WithLabelValues(reason).Add(float64(n))
}

// Pulled implements originpull.Observer.
func (m *nodeMetrics) Pulled(result string) {
	if result == "" {
		m.pulling.Inc()
		return
	}
	m.pulling.Dec()
	m.pulls.WithLabelValues(result).Inc()
}

// Changed implements originpull.Observer.
func (m *nodeMetrics) Changed() { m.pullChanged.Inc() }

// Held implements live.Observer.
func (m *nodeMetrics) Held(stream string, since time.Duration) {
	m.liveHeld.WithLabelValues(stream).Observe(since.Seconds())
}

// Dropped implements live.Observer.
func (m *nodeMetrics) Dropped(reason string) { m.liveDropped.WithLabelValues(reason).Inc() }

// FirstByte implements gateway.Observer.
func (m *nodeMetrics) FirstByte(d time.Duration) { m.firstByte.Observe(d.Seconds()) }

// Stalled implements gateway.Observer.
func (m *nodeMetrics) Stalled() { m.stalls.Inc() }

// LeavesInFlight implements gateway.Observer.
func (m *nodeMetrics) LeavesInFlight(delta int) { m.leavesInFlight.Add(float64(delta)) }

// Delivered implements hedge.Observer.
func (m *nodeMetrics) Delivered(source string, bytes int, wait time.Duration) {
	m.blockBytes.WithLabelValues(source).Add(float64(bytes))
	m.blockWait.WithLabelValues(source).Observe(wait.Seconds())
}

// Fetched implements hedge.Observer.
func (m *nodeMetrics) Fetched(source string, reason hedge.Reason, bytes int) {
	m.fetchedBytes.WithLabelValues(source, string(reason)).Add(float64(bytes))
}

// Rejected implements hedge.Observer.
func (m *nodeMetrics) Rejected(source string) { m.rejected.WithLabelValues(source).Inc() }

func (m *nodeMetrics) register(reg *prometheus.Registry, n *node.Node, f *fleet.Fleet) error {
	collectors := []prometheus.Collector{
		m.blockBytes,
		m.blockWait,
		m.firstByte,
		m.stalls,
		m.leavesInFlight,
		m.fetchedBytes,
		m.rejected,
		m.liveHeld,
		m.liveDropped,
		m.pullBytes,
		m.pulls,
		m.pulling,
		m.pullChanged,
		m.urlsKnown,
		m.routeBytes,
		statsCollector{n, f},
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// statsCollector exports the node's figures, read once per scrape.
type statsCollector struct {
	n *node.Node
	f *fleet.Fleet
}

// nodeStat is one figure of node.Stats as a metric.
type nodeStat struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(node.Stats) float64
}

var nodeStats = []nodeStat{
	{prometheus.NewDesc("pacman_peers", "Connected libp2p peers.", nil, nil),
		prometheus.GaugeValue, func(s node.Stats) float64 { return float64(s.Peers) }},
	{prometheus.NewDesc("pacman_seeded_bytes_total", "Block bytes sent to peers over bitswap.", nil, nil),
		prometheus.CounterValue, func(s node.Stats) float64 { return float64(s.BytesSeeded) }},
	{prometheus.NewDesc("pacman_blockstore_bytes", "Size of the blockstore on disk.", nil, nil),
		prometheus.GaugeValue, func(s node.Stats) float64 { return float64(s.StoreBytes) }},
	{prometheus.NewDesc("pacman_cache_bytes", "Bytes of fetched blocks held, which cache_size bounds (imported content is not counted).", nil, nil),
		prometheus.GaugeValue, func(s node.Stats) float64 { return float64(s.CacheBytes) }},
	{prometheus.NewDesc("pacman_cache_evictions_total", "Fetched blocks evicted to keep the cache within cache_size.", nil, nil),
		prometheus.CounterValue, func(s node.Stats) float64 { return float64(s.Evictions) }},
	{prometheus.NewDesc("pacman_seed_dropped_total", "Answers to peers dropped because the peer was not reading them.", nil, nil),
		prometheus.CounterValue, func(s node.Stats) float64 { return float64(s.SeedDropped) }},
	{prometheus.NewDesc("pacman_wants_cut_total", "Peers' wants the bitswap server never saw: past 4 000/s per peer or 64 000/s per address.", nil, nil),
		prometheus.CounterValue, func(s node.Stats) float64 { return float64(s.WantsCut) }},
	{prometheus.NewDesc("pacman_duplicate_bytes_total", "Block bytes received over bitswap that the node already had.", nil, nil),
		prometheus.CounterValue, func(s node.Stats) float64 { return float64(s.DuplicateBytes) }},
}

// Describe implements prometheus.Collector.
func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range nodeStats {
		ch <- s.desc
	}
	ch <- fleetReceived
	ch <- fleetSent
	ch <- fleetMembers
}

// Collect implements prometheus.Collector: one node.Stats per scrape.
// When the node cannot answer, the figures are left out of the scrape.
func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.n.Stats(ctx)
	if err != nil {
		return
	}
	for _, s := range nodeStats {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(st))
	}
	from, to := c.f.Counts()
	ch <- prometheus.MustNewConstMetric(fleetReceived, prometheus.CounterValue, float64(from))
	ch <- prometheus.MustNewConstMetric(fleetSent, prometheus.CounterValue, float64(to))
	ch <- prometheus.MustNewConstMetric(fleetMembers, prometheus.GaugeValue, float64(len(c.f.Members())))
}

var (
	fleetReceived = prometheus.NewDesc("pacman_fleet_received_bytes_total", "Block bytes received from fleet members.", nil, nil)
	fleetSent     = prometheus.NewDesc("pacman_fleet_sent_bytes_total", "Block bytes sent to fleet members, apart from what bitswap seeds to other peers.", nil, nil)
	fleetMembers  = prometheus.NewDesc("pacman_fleet_members", "Fleet members connected now that speak the fleet protocol.", nil, nil)
)

// Interface guards.
var (
	_ hedge.Observer       = (*nodeMetrics)(nil)
	_ gateway.Observer     = (*nodeMetrics)(nil)
	_ prometheus.Collector = statsCollector{}
)
