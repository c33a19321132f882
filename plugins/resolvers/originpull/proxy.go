package originpull

import (
	"io"
	"net/http"
	"sync"

	"go.uber.org/zap"
)

// The request headers a proxied request carries to the origin: the range
// and the conditions (RFC 9110 §13, §14), which the origin answers as it
// would the client.
var forwarded = []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// The origin's response headers a proxied response carries: what the
// representation is, its range and its validators, and how long it may
// be cached. Nothing else of the origin's (cookies, server names) is
// passed on.
var answered = []string{"Content-Type", "Content-Length", "Content-Range", "Content-Disposition", "Content-Language",
	"Accept-Ranges", "ETag", "Last-Modified", "Cache-Control", "Expires", "Vary"}

// copyBuffers are the buffers proxied bodies cross, 32 KiB each: a
// proxied stream holds one, however large the file.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// proxy answers a request for u from the origin, streamed as it arrives.
// A client that leaves ends the origin request.
func (p *Puller) proxy(u string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, u, nil)
		if err != nil {
			http.Error(w, "building the origin request failed", http.StatusInternalServerError)
			return
		}
		for _, h := range forwarded {
			if v := r.Header.Values(h); len(v) > 0 {
				req.Header[h] = v
			}
		}
		// The body is passed on as the origin stores it: its length and
		// ranges are the file's own.
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := p.cfg.Client.Do(req)
		if err != nil {
			if r.Context().Err() == nil {
				p.cfg.Log.Warn("origin request failed", zap.String("url", u), zap.Error(err))
				http.Error(w, "the origin did not answer", http.StatusBadGateway)
			}
			return
		}
		defer resp.Body.Close()
		for _, h := range answered {
			if v := resp.Header.Values(h); len(v) > 0 {
				w.Header()[h] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method == http.MethodHead {
			return
		}
		buf := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(buf)
		n, err := io.CopyBuffer(w, resp.Body, *buf)
		p.cfg.Observer.OriginBytes("proxy", n)
		if err != nil && r.Context().Err() == nil {
			// Cut short: the client sees a body shorter than its
			// Content-Length, never other bytes.
			p.cfg.Log.Warn("proxying from the origin was cut short", zap.String("url", u), zap.Error(err))
			panic(http.ErrAbortHandler)
		}
	})
}
