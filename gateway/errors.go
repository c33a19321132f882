package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/ipfs/boxo/verifcid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
	"github.com/pacman-cdn/pacman/stream"
)

var (
	// errBadPath reports a request path that is not a valid content path.
	errBadPath = contentpath.ErrBadPath
	// errNotHeld reports content kept off the network that is not held.
	errNotHeld = Errorf(http.StatusForbidden, "this edge serves only content it, its fleet or its origin holds; a policy (access allowlist or access open) lets it fetch other content from peers")
	// errDenied reports content a policy refuses.
	errDenied = Errorf(http.StatusGone, "this content is blocked by the gateway's policy")
	// errNoContent reports a request no resolver claims.
	errNoContent = Errorf(http.StatusNotFound, "no content at this path")
)

// statusOf maps an error to the HTTP status and the one-line message a
// client is shown. Messages come from this package only: an error text
// that a peer could influence is never echoed.
func statusOf(err error) (int, string) {
	switch {
	case errors.As(err, new(*StatusError)):
		var se *StatusError
		errors.As(err, &se)
		return se.Status, se.Error()
	case errors.Is(err, errBadPath), errors.Is(err, errUnsupportedFormat), errors.Is(err, errBadCARRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errNotCached):
		return http.StatusPreconditionFailed, errNotCached.Error()
	case errors.Is(err, verifcid.ErrPossiblyInsecureHashFunction),
		errors.Is(err, verifcid.ErrDigestTooSmall),
		errors.Is(err, verifcid.ErrDigestTooLarge):
		return http.StatusBadRequest, "CID uses a hash function or digest size this gateway does not accept"
	case errors.Is(err, errNoLink):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, dag.ErrNotFile):
		return http.StatusNotImplemented, "only UnixFS files are served; " + err.Error()
	case errors.Is(err, dag.ErrMalformed):
		return http.StatusBadGateway, "the content is malformed: its blocks contradict each other"
	case errors.Is(err, stream.ErrBusy):
		return http.StatusServiceUnavailable, stream.ErrBusy.Error()
	case errors.Is(err, stream.ErrStalled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out fetching the content: no source had it within the route's resolve_timeout, or sent its next block within stall_timeout"
	default:
		return http.StatusBadGateway, "could not fetch the content"
	}
}

// writeError sends a short plain-text error response.
func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
