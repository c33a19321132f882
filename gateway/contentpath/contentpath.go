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
	segments, err := split(parts[1:])
	if err != nil {
		return cid.Undef, nil, err
	}
	return c, segments, nil
}

// ParseName splits /{namespace}/{name}[/path] (/ipns/, say) into the
// name and the unescaped path segments, with the rules of Parse.
func ParseName(u *url.URL, namespace string) (string, []string, error) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/"+namespace+"/")
	if !ok {
		return "", nil, fmt.Errorf("%w: expected /%s/{name}[/path]", ErrBadPath, namespace)
	}
	parts := strings.Split(rest, "/")
	name, err := url.PathUnescape(parts[0])
	if err != nil || name == "" {
		return "", nil, fmt.Errorf("%w: bad name", ErrBadPath)
	}
	segments, err := split(parts[1:])
	if err != nil {
		return "", nil, err
	}
	return name, segments, nil
}

// Segments splits an escaped path of its own, /a/b/ (a site's, say), with
// the rules of Parse.
func Segments(escaped string) ([]string, error) {
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok {
		return nil, fmt.Errorf("%w: a path starts with /", ErrBadPath)
	}
	if rest == "" {
		return nil, nil
	}
	return split(strings.Split(rest, "/"))
}

// split unescapes escaped path segments, allowing one trailing slash.
func split(parts []string) ([]string, error) {
	var segments []string
	for i, s := range parts {
		if s == "" {
			if i == len(parts)-1 {
				break // one trailing slash
			}
			return nil, fmt.Errorf("%w: empty path segment", ErrBadPath)
		}
		seg, err := url.PathUnescape(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bad escape in path", ErrBadPath)
		}
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("%w: %q segments are not allowed", ErrBadPath, seg)
		}
		segments = append(segments, seg)
	}
	return segments, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
