package gateway

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"github.com/pacman-cdn/pacman/stream"
	"go.uber.org/zap"
)

// representation is what a response carries, whatever its format: the
// metadata for headers and preconditions, and how to stream byte spans.
type representation struct {
	cid  cid.Cid
	size int64
	etag string
	// contentType returns the media type; it may look at the first bytes
	// when the response starts at byte 0.
	contentType func(ranges []headers.Range) (string, error)
	// stream writes spans, calling begin before each, and records how
	// the first leaf was obtained in first.
	stream func(ctx context.Context, spans []stream.Span, first *stream.FirstLeaf, begin func(int) (io.Writer, error)) error
	// served, if set, is called after a complete response that ended at
	// byte end.
	served func(end int64)
	// started is when the request arrived; resolved is how long finding
	// the content and its size took.
	started  time.Time
	resolved time.Duration
	// ttl is how long the name resolved may be cached; zero for a URL
	// that names the content itself.
	ttl time.Duration
	// cacheControl, if set, is the response's Cache-Control, for pages
	// the gateway renders (they change with the gateway, not the content).
	cacheControl string
	// status, unless zero or 200, is an error status the representation
	// is a custom page for: it is sent whole, without preconditions or
	// ranges.
	status int
}

// serve answers a GET or HEAD of rep, following RFC 9110: preconditions in
// the order of §13.2.2, then Range (§14.2) unless If-Range fails (§13.1.5).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rep representation) {
	hdr := w.Header()
	hdr.Set("Etag", rep.etag)
	switch {
	case rep.cacheControl != "":
		hdr.Set("Cache-Control", rep.cacheControl)
	case rep.ttl > 0:
		// A mutable name: caches revalidate it by its ETag, the CID.
		hdr.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int64(rep.ttl/time.Second)))
	default:
		hdr.Set("Cache-Control", "public, max-age=29030400, immutable")
	}

	page := rep.status != 0 && rep.status != http.StatusOK
	// §13.1.1 If-Match: strong comparison; 412 when nothing matches.
	if im := r.Header.Get("If-Match"); !page && im != "" && !headers.ETagMatch(im, rep.etag, false) {
		writeError(w, http.StatusPreconditionFailed, "If-Match does not match the content's ETag")
		return
	}
	// §13.1.2 If-None-Match: weak comparison; 304 for GET and HEAD.
	if inm := r.Header.Get("If-None-Match"); !page && inm != "" && headers.ETagMatch(inm, rep.etag, true) {
		w.WriteHeader(http.StatusNotModified)
		return
	}

	var ranges []headers.Range
	var err error
	if !page {
		hdr.Set("Accept-Ranges", "bytes")
		ranges, err = h.ranges(r, rep)
	}
	if err != nil {
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", rep.size))
		writeError(w, http.StatusRequestedRangeNotSatisfiable, err.Error())
		return
	}

	ctype, err := rep.contentType(ranges)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if scriptable(ctype) {
		// Every page a path gateway serves shares its origin: content
		// that runs scripts gets an opaque origin of its own, so it
		// cannot read the gateway's cookies or storage, nor another
		// page's.
		hdr.Set("Content-Security-Policy", sandboxPolicy)
	}

	// Each write must be taken within StallTimeout: a client that stops
	// reading gives back the leaves it holds instead of keeping them.
	out := &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: h.cfg.StallTimeout}
	defer out.clear()
	var (
		spans  []stream.Span
		status = http.StatusOK
		length = rep.size
		begin  func(i int) (io.Writer, error)
		finish = func() error { return nil }
	)
	if page {
		status = rep.status
	}
	switch len(ranges) {
	case 0:
		spans = []stream.Span{{Start: 0, End: rep.size}}
		hdr.Set("Content-Type", ctype)
		begin = func(int) (io.Writer, error) { return out, nil }
	case 1:
		ra := ranges[0]
		spans = []stream.Span{{Start: ra.Start, End: ra.Start + ra.Length}}
		status, length = http.StatusPartialContent, ra.Length
		hdr.Set("Content-Type", ctype)
		hdr.Set("Content-Range", ra.ContentRange(rep.size))
		begin = func(int) (io.Writer, error) { return out, nil }
	default:
		status = http.StatusPartialContent
		mw := multipart.NewWriter(out)
		length = multipartSize(ranges, mw.Boundary(), ctype, rep.size)
		hdr.Set("Content-Type", "multipart/byteranges; boundary="+mw.Boundary())
		for _, ra := range ranges {
			spans = append(spans, stream.Span{Start: ra.Start, End: ra.Start + ra.Length})
		}
		begin = func(i int) (io.Writer, error) { return mw.CreatePart(ranges[i].MIMEHeader(ctype, rep.size)) }
		finish = mw.Close
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}

	// Headers go out with the first byte, so a first leaf that never
	// arrives is answered with a clean error status.
	sent := false
	var first stream.FirstLeaf
	err = rep.stream(r.Context(), spans, &first, func(i int) (io.Writer, error) {
		if !sent {
			sent = true
			// Server-Timing (W3C): where the time to first byte went,
			// down to the source of the first leaf. Headers leave with
			// the first byte, so later leaves cannot be reported here.
			ttfb := time.Since(rep.started)
			timing := fmt.Sprintf("resolve;dur=%.1f, first-byte;dur=%.1f", ms(rep.resolved), ms(ttfb))
			if first.Source != "" {
				timing += fmt.Sprintf(", %s;dur=%.1f;desc=\"first leaf\"", first.Source, ms(first.Wait))
			}
			hdr.Set("Server-Timing", timing)
			h.cfg.Observer.FirstByte(ttfb)
			w.WriteHeader(status)
		}
		return begin(i)
	})
	if err == nil {
		err = finish()
	}
	if err != nil && !sent {
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Disposition", "Etag", "Accept-Ranges", "Cache-Control"} {
			hdr.Del(k)
		}
		h.fail(w, r, err)
		return
	}
	if err != nil {
		// Headers are sent: the client detects the failure by a body
		// shorter than Content-Length.
		if r.Context().Err() == nil {
			h.log.Warn("stream cut short",
				zap.Stringer("cid", rep.cid), zap.String("range", r.Header.Get("Range")), zap.Error(err))
		}
		return
	}
	if rep.served != nil {
		rep.served(spans[len(spans)-1].End)
	}
}

// ranges returns the ranges to serve: none for a full response.
func (h *Handler) ranges(r *http.Request, rep representation) ([]headers.Range, error) {
	rh := r.Header.Get("Range")
	if rh == "" {
		return nil, nil
	}
	// §13.1.5 If-Range: serve the full content unless the validator is a
	// strong match. We send no Last-Modified, so a date never matches.
	if ir := r.Header.Get("If-Range"); ir != "" && !(strings.HasPrefix(ir, `"`) && ir == rep.etag) {
		return nil, nil
	}
	ranges, ignore, err := headers.ParseRange(rh, rep.size, h.cfg.MaxRanges)
	if err != nil {
		return nil, err
	}
	if ignore {
		return nil, nil
	}
	if len(ranges) > 1 && headers.SumLength(ranges) > rep.size {
		// As net/http does: requests for more bytes than the content in
		// many small pieces are an amplification attack; send it once.
		return nil, nil
	}
	return ranges, nil
}

// multipartSize returns the exact body length of a multipart/byteranges
// response, so it can be sent as Content-Length.
func multipartSize(ranges []headers.Range, boundary, ctype string, size int64) int64 {
	var cw countingWriter
	mw := multipart.NewWriter(&cw)
	_ = mw.SetBoundary(boundary) // a boundary multipart.NewWriter chose is valid
	for _, ra := range ranges {
		_, _ = mw.CreatePart(ra.MIMEHeader(ctype, size))
		cw += countingWriter(ra.Length)
	}
	_ = mw.Close()
	return int64(cw)
}

// countingWriter counts the bytes written to it.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var _ http.Handler = (*Handler)(nil)
