package originpull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pacman-cdn/pacman/gateway/headers"
	"go.uber.org/zap"
)

// spoolSlack is how much later than a proxied request's a first byte
// read from a spool may come.
const spoolSlack = 20 * time.Millisecond

// firstBytes is how far past what a spool has received a range may start
// and still wait for it, in the spool's first paceAfter, before its pace is
// known.
const (
	firstBytes = 1 << 20
	paceAfter  = 100 * time.Millisecond
)

// spool is the body of a pull under way, kept in a file as it arrives, so
// that cold requests for the same URL read it there instead of each
// asking the origin: the origin sends the file once however many viewers
// start it together, as a shield's request collapsing does. The file is
// unlinked once made and closed with its last reader.
type spool struct {
	// ready is closed once the origin's answer is known: usable, header
	// and size are set before.
	ready  chan struct{}
	usable bool        // the body is spooled; false: proxy instead
	header http.Header // the origin's headers a response carries
	size   int64       // the body's length, -1 if the origin did not say
	// latency is how long the origin took to answer, which a proxied
	// request's first byte would take too; opened is when it answered.
	latency time.Duration
	opened  time.Time

	mu      sync.Mutex // guards everything below
	f       *os.File
	written int64
	ended   bool
	err     error         // why the body ended short, once ended
	grew    chan struct{} // closed, and replaced, when written grows or the body ends
	refs    int           // the pull and the readers; the last closes f
}

// newSpool makes a spool in dir, held by the pull that fills it.
func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "pull-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{ready: make(chan struct{}), f: f, grew: make(chan struct{}), refs: 1, size: -1}, nil
}

// open says the origin's body is spooled, with its headers and length;
// the origin took latency to answer.
func (s *spool) open(h http.Header, size int64, latency time.Duration) {
	s.latency, s.opened = latency, time.Now()
	s.header = http.Header{}
	for _, name := range answered {
		if v := h.Values(name); len(v) > 0 {
			s.header[name] = v
		}
	}
	s.usable, s.size = true, size
	close(s.ready)
}

// Write appends b to the spooled body.
func (s *spool) Write(b []byte) (int, error) {
	s.mu.Lock()
	off := s.written
	s.mu.Unlock()
	n, err := s.f.WriteAt(b, off) // only the pull writes
	s.mu.Lock()
	s.written += int64(n)
	close(s.grew)
	s.grew = make(chan struct{})
	s.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("spool: %w", err)
	}
	return n, nil
}

// end says the body is whole (err nil) or ends short with err. A spool
// never opened tells its readers to proxy.
func (s *spool) end(err error) {
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended, s.err = true, err
	close(s.grew)
	s.grew = make(chan struct{})
}

// acquire takes a reader's reference.
func (s *spool) acquire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs++
}

// release drops a reference; the last closes the file.
func (s *spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs--; s.refs == 0 {
		s.f.Close()
	}
}

// soon reports whether byte off should arrive no later than a proxied
// request's first byte would: within the origin's latency and spoolSlack,
// at the pace the body has come so far, less a fifth. A seek further on is proxied, so
// that waiting for the spool never makes a first byte late by more than
// spoolSlack.
func (s *spool) soon(off int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case off < s.written:
		return true
	case s.ended:
		return false
	}
	elapsed := time.Since(s.opened)
	if elapsed < paceAfter {
		// The first bytes come in a burst the pace cannot be told from.
		return off < s.written+firstBytes
	}
	// The pace so far, less a fifth: a pull's pace goes up and down, and
	// a wait longer than promised is what must not happen.
	wait := time.Duration(float64(off-s.written) / float64(s.written) * float64(elapsed) * 5 / 4)
	return wait <= s.latency+spoolSlack
}

// wait returns once the body has arrived past off or ended: how much has
// arrived, and whether it ended (with its error).
func (s *spool) wait(ctx context.Context, off int64) (int64, bool, error) {
	for {
		s.mu.Lock()
		written, ended, err, grew := s.written, s.ended, s.err, s.grew
		s.mu.Unlock()
		if written > off || ended {
			return written, ended, err
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return written, false, ctx.Err()
		}
	}
}

// serve answers r from s, or returns false, having written nothing, when
// the origin must answer it: the pull keeps no body, the request is
// conditional, or asks for ranges s cannot serve soon (several, a length
// the origin did not give, or one further on than the origin would take to answer).
func (s *spool) serve(w http.ResponseWriter, r *http.Request) bool {
	select {
	case <-s.ready:
	case <-r.Context().Done():
		return true // the client left
	}
	if !s.usable {
		return false
	}
	for _, h := range forwarded {
		if h != "Range" && r.Header.Get(h) != "" {
			return false // a condition: the origin judges it
		}
	}
	start, length, status := int64(0), s.size, http.StatusOK
	if spec := r.Header.Get("Range"); spec != "" {
		if s.size < 0 {
			return false
		}
		ranges, ignore, err := headers.ParseRange(spec, s.size, 1)
		switch {
		case err != nil:
			return false // the origin says 416, or serves several
		case !ignore:
			start, length, status = ranges[0].Start, ranges[0].Length, http.StatusPartialContent
		}
	}
	if !s.soon(start) {
		return false
	}
	for name, v := range s.header {
		w.Header()[name] = v
	}
	w.Header().Del("Content-Range")
	w.Header().Del("Content-Length")
	w.Header().Set("Accept-Ranges", "bytes")
	if length >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	}
	if status == http.StatusPartialContent {
		w.Header().Set("Content-Range", headers.Range{Start: start, Length: length}.ContentRange(s.size))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return true
	}
	var body io.Reader = &spoolReader{sp: s, ctx: r.Context(), off: start}
	if length >= 0 {
		body = io.LimitReader(body, length)
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(w, body, *buf)
	if (err != nil || length >= 0 && n < length) && r.Context().Err() == nil {
		// Cut short: the client sees a body shorter than its
		// Content-Length, never other bytes.
		panic(http.ErrAbortHandler)
	}
	return true
}

// spoolReader reads a spool from off as it fills, until ctx ends; Close
// releases it.
type spoolReader struct {
	sp   *spool
	ctx  context.Context // ends the wait for more: the puller's
	off  int64
	once sync.Once
}

func (r *spoolReader) Read(b []byte) (int, error) {
	avail, ended, err := r.sp.wait(r.ctx, r.off)
	if avail <= r.off {
		switch {
		case ended && err == nil:
			return 0, io.EOF
		case err == nil:
			err = r.ctx.Err()
		}
		return 0, err
	}
	n, err := r.sp.f.ReadAt(b[:min(int64(len(b)), avail-r.off)], r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (r *spoolReader) Close() error {
	r.once.Do(r.sp.release)
	return nil
}

// newSpool takes one of tokens and makes a spool for u, or returns nil
// when every token is taken or no spool can be made: u is proxied.
func (p *Puller) newSpool(tokens chan struct{}, u string) *spool {
	select {
	case tokens <- struct{}{}:
	default:
		return nil
	}
	sp, err := newSpool(p.spools)
	if err != nil {
		<-tokens
		p.cfg.Log.Warn("cannot spool a pull: the URL is proxied", zap.String("url", u), zap.Error(err))
		return nil
	}
	return sp
}

// spoolDir returns the spools' directory under the records', emptied of
// what a crash left.
func spoolDir(dir string) (string, error) {
	d := filepath.Join(dir, "spool")
	if err := os.RemoveAll(d); err != nil {
		return "", fmt.Errorf("origin_pull: clearing spools: %w", err)
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("origin_pull: %w", err)
	}
	return d, nil
}
