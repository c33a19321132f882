package originpull

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a puller's Prometheus metrics, on the registry of the
// config it belongs to: every origin_pull route of the config shares them.
type metrics struct {
	bytes   *prometheus.CounterVec
	pulls   *prometheus.CounterVec
	pulling prometheus.Gauge
	changed prometheus.Counter
}

// newMetrics registers the metrics on reg, or takes those another route
// registered there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
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
		changed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "pacman",
			Name:      "origin_pull_changed_total",
			Help:      "Pulled files the origin changed under the same validators: a leaf fetched by range did not match its CID, none of its bytes was served, and the file is pulled again.",
		}),
	}
	var err error
	if m.bytes, err = register(reg, m.bytes); err != nil {
		return nil, err
	}
	if m.pulls, err = register(reg, m.pulls); err != nil {
		return nil, err
	}
	if m.pulling, err = register(reg, m.pulling); err != nil {
		return nil, err
	}
	if m.changed, err = register(reg, m.changed); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector of c's kind
// already registered there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// OriginBytes implements Observer.
func (m *metrics) OriginBytes(reason string, n int64) {
	m.bytes.WithLabelValues(reason).Add(float64(n))
}

// Pulled implements Observer.
func (m *metrics) Pulled(result string) {
	if result == "" {
		m.pulling.Inc()
		return
	}
	m.pulling.Dec()
	m.pulls.WithLabelValues(result).Inc()
}

// Changed implements Observer.
func (m *metrics) Changed() { m.changed.Inc() }

// Interface guard.
var _ Observer = (*metrics)(nil)
