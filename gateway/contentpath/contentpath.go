// Package contentpath parses the paths of a path gateway,
// /ipfs/{cid}[/segment...], from untrusted request URLs. It does no I/O.
package contentpath

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ipfs/boxo/verifcid"
	"github.com/ipfs/go-cid"
)

// ErrBadPath reports a request path that is not a valid content path.
var ErrBadPath = errors.New("invalid content path")

// Parse splits /ipfs/{cid}[/path] into the root CID and the
// unescaped path segments. Segments are split on the escaped path, so an
// encoded slash stays inside its segment; "." and ".." segments are
// rejected rather than cleaned, so one resource has one URL.
func Parse(u *url.URL) (cid.Cid, []string, error) {
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/ipfs/")
	if !ok {
		return cid.Undef, nil, fmt.Errorf("%w: expected /ipfs/{cid}[/path]", ErrBadPath)
	}
	parts := strings.Split(rest, "/")
	c, err := cid.Decode(parts[0])
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%w: %q is not a valid CID", ErrBadPath, truncate(parts[0], 80))
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return cid.Undef, nil, err
	}
	var segments []string
	for i, s := range parts[1:] {
		if s == "" {
			if i == len(parts)-2 {
				break // one trailing slash
			}
			return cid.Undef, nil, fmt.Errorf("%w: empty path segment", ErrBadPath)
		}
		seg, err := url.PathUnescape(s)
		if err != nil {
			return cid.Undef, nil, fmt.Errorf("%w: bad escape in path", ErrBadPath)
		}
		if seg == "." || seg == ".." {
			return cid.Undef, nil, fmt.Errorf("%w: %q segments are not allowed", ErrBadPath, seg)
		}
		segments = append(segments, seg)
	}
	return c, segments, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
