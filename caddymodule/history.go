package caddymodule

import (
	"sync"
	"time"
)

// historyLength is how many samples a running edge keeps, one a second:
// the dashboard's five minutes, whoever was watching.
const historyLength = 300

// Sample is an edge's totals at one moment of its history.
type Sample struct {
	T time.Time `json:"t"`
	// Delivered and Fetched are Figures' totals by source at T.
	Delivered map[string]float64 `json:"delivered"`
	Fetched   map[string]float64 `json:"fetched"`
}

// history samples an edge's totals every second while it runs, so that
// the dashboard charts the last minutes from the server, not from
// whenever a tab was opened.
type history struct {
	metrics *nodeMetrics
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex // guards samples and next
	samples []Sample   // a ring of historyLength
	next    int        // where the next sample goes
}

// startHistory starts sampling m every second until close.
func startHistory(m *nodeMetrics) *history {
	h := &history{metrics: m, stop: make(chan struct{}), done: make(chan struct{}), samples: make([]Sample, 0, historyLength)}
	go h.run()
	return h
}

// run samples every second until stopped.
func (h *history) run() {
	defer close(h.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		h.sample(time.Now())
		select {
		case <-tick.C:
		case <-h.stop:
			return
		}
	}
}

// sample records the totals at t.
func (h *history) sample(t time.Time) {
	s := Sample{T: t, Delivered: sumBy(h.metrics.blockBytes, "source"), Fetched: sumBy(h.metrics.fetchedBytes, "source")}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < historyLength {
		h.samples = append(h.samples, s)
		return
	}
	h.samples[h.next] = s
	h.next = (h.next + 1) % historyLength
}

// list returns the samples, oldest first.
func (h *history) list() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.samples))
	out = append(out, h.samples[h.next:]...)
	return append(out, h.samples[:h.next]...)
}

// close stops the sampling.
func (h *history) close() {
	close(h.stop)
	<-h.done
}
