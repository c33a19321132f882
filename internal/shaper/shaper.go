// Package shaper is a loopback TCP proxy that adds a fixed delay each way
// and caps one direction's rate: the latency and bandwidth of a real link,
// injected in-process, for the bed and the tests.
package shaper

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Shaper is a loopback TCP proxy in front of one server that adds a fixed
// one-way delay in each direction (so a round trip costs rtt) and caps the
// server's upload rate. It works without root and without netem: data is
// timestamped as it is read and written out once its delay has passed, so
// the delay does not cap throughput, only latency.
type Shaper struct {
	ln     net.Listener
	target string
	delay  time.Duration // one way
	limit  *rate.Limiter // server → client; nil for none
	wg     sync.WaitGroup
}

// New starts a proxy to target with round-trip time rtt and upload cap
// bytesPerSec (0 for none).
func New(target string, rtt time.Duration, bytesPerSec int) (*Shaper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Shaper{ln: ln, target: target, delay: rtt / 2}
	if bytesPerSec > 0 {
		s.limit = rate.NewLimiter(rate.Limit(bytesPerSec), 256<<10)
	}
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the proxy's address.
func (s *Shaper) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Close stops accepting and waits for the connections to end.
func (s *Shaper) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

// accept serves each connection until the listener closes.
func (s *Shaper) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serve(c) })
	}
}

// serve proxies one connection to the target.
func (s *Shaper) serve(client net.Conn) {
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
func (s *Shaper) pipe(dst, src net.Conn, lim *rate.Limiter) {
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
