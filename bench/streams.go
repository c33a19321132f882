package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// streamsFigures are the results of one run of concurrent streams.
type streamsFigures struct {
	throughput float64 // MB/s over all streams
	p50, p99   float64 // time to first byte, ms
	errors     int
	peakRSS    float64 // MiB above the RSS before the run
}

// concurrentStreams starts n streams at once on a fresh gateway of kind,
// each reading span bytes from its own offset, spread over the file, and
// samples the process's resident memory meanwhile.
func (b *bed) concurrentStreams(s server, n, span int) streamsFigures {
	size := len(b.data)
	base := rss()
	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if r := rss(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})
	ttfbs := make([]float64, n)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		off := (size - span) / n * i
		wg.Go(func() {
			ttfb, _, err := tryFetch(s.url, fmt.Sprintf("bytes=%d-%d", off, off+span-1), b.data[off:off+span])
			if err != nil {
				errs.Add(1)
			}
			ttfbs[i] = ms(ttfb)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	sampler.Wait()
	slices.Sort(ttfbs)
	return streamsFigures{
		throughput: mbps(n*span, elapsed),
		p50:        ttfbs[n/2],
		p99:        ttfbs[min(n-1, n*99/100)],
		errors:     int(errs.Load()),
		peakRSS:    float64(peak.Load()-base) / (1 << 20),
	}
}

// rss returns the process's resident set size in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
