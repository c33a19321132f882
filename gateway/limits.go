package gateway

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// clientLimit counts the requests in progress per client address.
type clientLimit struct {
	max int
	mu  sync.Mutex     // guards n
	n   map[string]int // requests in progress, by address
}

// acquire counts one more request from remoteAddr, unless it has max in
// progress already; release uncounts it.
func (c *clientLimit) acquire(remoteAddr string) (release func(), ok bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[host] >= c.max {
		return nil, false
	}
	c.n[host]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n[host]--; c.n[host] == 0 {
			delete(c.n, host)
		}
	}, true
}

// deadlineWriter gives each write to a client timeout to complete.
type deadlineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	set     bool // a deadline was set, and must be cleared
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err == nil {
		d.set = true
	}
	return d.w.Write(p)
}

// clear lifts the deadline, so the connection's next response has none.
func (d *deadlineWriter) clear() {
	if d.set {
		_ = d.rc.SetWriteDeadline(time.Time{})
	}
}
