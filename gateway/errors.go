package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/ipfs/boxo/verifcid"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
)

// errBadPath reports a request path that is not a valid content path.
var errBadPath = contentpath.ErrBadPath

// statusOf maps an error to the HTTP status and the one-line message a
// client is shown. Messages come from this package only: an error text
// that a peer could influence is never echoed.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, errBadPath), errors.Is(err, errUnsupportedFormat), errors.Is(err, errBadCARRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errNotCached):
		return http.StatusPreconditionFailed, errNotCached.Error()
	case errors.Is(err, errNotHeld):
		return http.StatusForbidden, errNotHeld.Error()
	case errors.Is(err, errNotAllowed):
		return http.StatusForbidden, errNotAllowed.Error()
	case errors.Is(err, errDenied):
		return http.StatusGone, errDenied.Error()
	case errors.Is(err, verifcid.ErrPossiblyInsecureHashFunction),
		errors.Is(err, verifcid.ErrDigestTooSmall),
		errors.Is(err, verifcid.ErrDigestTooLarge):
		return http.StatusBadRequest, "CID uses a hash function or digest size this gateway does not accept"
	case errors.Is(err, errNoLink):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, chunker.ErrNotFile):
		return http.StatusNotImplemented, "only UnixFS files are served; " + err.Error()
	case errors.Is(err, chunker.ErrMalformed):
		return http.StatusBadGateway, "the content is malformed: its blocks contradict each other"
	case errors.Is(err, ErrStalled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out fetching the content from peers"
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
