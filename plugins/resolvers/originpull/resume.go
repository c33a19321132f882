package originpull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pacman-cdn/pacman/gateway/headers"
	"go.uber.org/zap"
)

// maxResumes bounds how often one pull resumes a body cut short.
const maxResumes = 3

// resumingBody is a pull's body that, cut short by the network, asks the
// origin for the rest with a Range request conditional on the validator
// it started with (If-Range), and reads on: the import, and the viewers
// reading the spool, never see the cut. Without a strong validator and a
// length there is nothing to resume safely, and the cut is an error.
type resumingBody struct {
	p         *Puller
	ctx       context.Context
	u         string
	body      io.ReadCloser
	validator string // a strong ETag, or Last-Modified
	size      int64
	off       int64
	resumes   int
}

func newResumingBody(ctx context.Context, p *Puller, u string, resp *http.Response) *resumingBody {
	b := &resumingBody{p: p, ctx: ctx, u: u, body: resp.Body, size: resp.ContentLength}
	if etag := resp.Header.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		b.validator = etag
	} else if lm := resp.Header.Get("Last-Modified"); lm != "" {
		b.validator = lm
	}
	return b
}

func (b *resumingBody) Read(buf []byte) (int, error) {
	for {
		n, err := b.body.Read(buf)
		b.off += int64(n)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && (b.size < 0 || b.off >= b.size):
			return n, io.EOF // whole
		case n > 0:
			return n, nil // the cut, which is sticky, is met on the next read
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF
		}
		if rerr := b.resume(); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
	}
}

// resume replaces the cut body with the origin's answer for the rest.
func (b *resumingBody) resume() error {
	if b.validator == "" || b.size < 0 || b.resumes >= maxResumes || b.ctx.Err() != nil {
		return errors.New("not resumable")
	}
	b.resumes++
	b.body.Close()
	b.body = io.NopCloser(strings.NewReader(""))
	select {
	case <-time.After(time.Duration(b.resumes) * 100 * time.Millisecond):
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, b.u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", b.off))
	req.Header.Set("If-Range", b.validator)
	resp, err := b.p.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("resuming at byte %d: %w", b.off, err)
	}
	first, last, ok := headers.ParseContentRange(resp.Header.Get("Content-Range"))
	if resp.StatusCode != http.StatusPartialContent || !ok || first != b.off || last != b.size-1 {
		resp.Body.Close()
		// A 200 means the file changed (If-Range), or the origin ignores
		// ranges: the pull starts over on a later request.
		return fmt.Errorf("resuming at byte %d: the origin answered %s, %q", b.off, resp.Status, resp.Header.Get("Content-Range"))
	}
	b.p.cfg.Log.Info("resumed a pull cut short", zap.String("url", b.u), zap.Int64("at", b.off))
	b.body = resp.Body
	return nil
}

// Close closes the body being read.
func (b *resumingBody) Close() error { return b.body.Close() }
