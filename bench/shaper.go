package main

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// shaper is a loopback TCP proxy in front of one seeder that adds a fixed
// one-way delay in each direction (so a round trip costs rtt) and caps the
// seeder's upload rate. It works without root and without netem: data is
// timestamped as it is read and written out once its delay has passed, so
// the delay does not cap throughput, only latency.
type shaper struct {
	ln     net.Listener
	target string
	delay  time.Duration // one way
	limit  *rate.Limiter // seeder → gateway; nil for none
	wg     sync.WaitGroup
}

// newShaper starts a proxy to target with round-trip time rtt and upload
// cap bytesPerSec (0 for none).
func newShaper(target string, rtt time.Duration, bytesPerSec int) (*shaper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &shaper{ln: ln, target: target, delay: rtt / 2}
	if bytesPerSec > 0 {
		s.limit = rate.NewLimiter(rate.Limit(bytesPerSec), 256<<10)
	}
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the proxy's address.
func (s *shaper) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Close stops accepting and waits for the connections to end.
func (s *shaper) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *shaper) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serve(c) })
	}
}

func (s *shaper) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", s.target)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { s.pipe(server, client, nil); done <- struct{}{} }()
	go func() { s.pipe(client, server, s.limit); done <- struct{}{} }()
	<-done
}

// chunk is data read at a time, due for writing after the delay.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delayed by s.delay and paced by lim.
func (s *shaper) pipe(dst, src net.Conn, lim *rate.Limiter) {
	defer dst.Close()
	defer src.Close()
	// Enough queued chunks to hold the bandwidth-delay product of a fast
	// loopback link without blocking the reader.
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(s.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if lim != nil {
			for off := 0; off < len(c.data); off += lim.Burst() {
				n := min(lim.Burst(), len(c.data)-off)
				if err := lim.WaitN(context.Background(), n); err != nil {
					return
				}
			}
		}
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}
