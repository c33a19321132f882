package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/pacman-cdn/pacman/gateway"
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
	originRejected prometheus.Counter
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		blockBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "block_bytes_total",
			Help:      "Bytes of blocks delivered to streams, by source: local (the blockstore), peers (bitswap) or origin (an HTTP origin, verified). peers/(peers+origin) is the share of fetched bytes the P2P network carried: the offload ratio.",
		}, []string{"source"}),
		blockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pacman",
			Name:      "block_wait_seconds",
			Help:      "Time to obtain one block, by source.",
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
		originRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "origin_rejected_total",
			Help:      "Origin answers whose bytes did not hash to the leaf's CID; never served.",
		}),
	}
}

// FirstByte implements gateway.Observer.
func (m *nodeMetrics) FirstByte(d time.Duration) { m.firstByte.Observe(d.Seconds()) }

// Stalled implements gateway.Observer.
func (m *nodeMetrics) Stalled() { m.stalls.Inc() }

// LeavesInFlight implements gateway.Observer.
func (m *nodeMetrics) LeavesInFlight(delta int) { m.leavesInFlight.Add(float64(delta)) }

// OriginRejected implements gateway.Observer.
func (m *nodeMetrics) OriginRejected() { m.originRejected.Inc() }

// BlockDelivered implements node.Observer.
func (m *nodeMetrics) BlockDelivered(src node.Source, bytes int, wait time.Duration) {
	m.blockBytes.WithLabelValues(string(src)).Add(float64(bytes))
	m.blockWait.WithLabelValues(string(src)).Observe(wait.Seconds())
}

// register adds the metrics to reg, once per registry.
func (m *nodeMetrics) register(reg *prometheus.Registry, n *node.Node) error {
	collectors := []prometheus.Collector{
		m.blockBytes,
		m.blockWait,
		m.firstByte,
		m.stalls,
		m.leavesInFlight,
		m.originRejected,
		statsCollector{n},
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
type statsCollector struct{ n *node.Node }

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
}

// Describe implements prometheus.Collector.
func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range nodeStats {
		ch <- s.desc
	}
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
}

// Interface guards.
var (
	_ node.Observer        = (*nodeMetrics)(nil)
	_ gateway.Observer     = (*nodeMetrics)(nil)
	_ prometheus.Collector = statsCollector{}
)
