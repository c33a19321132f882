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
var ErrBadPath = errors.New("invalid path")

// bad returns ErrBadPath for the escaped path p, with the reason.
func bad(p, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadPath, truncate(p, 200), fmt.Sprintf(format, args...))
}

// Parse splits /ipfs/{cid}[/path] into the root CID and the
// unescaped path segments. Segments are split on the escaped path, so an
// encoded slash stays inside its segment; "." and ".." segments are
// rejected rather than cleaned, so one resource has one URL.
func Parse(u *url.URL) (cid.Cid, []string, error) {
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/ipfs/")
	if !ok {
		return cid.Undef, nil, bad(p, "expected /ipfs/{cid}[/path]")
	}
	parts := strings.Split(rest, "/")
	c, err := cid.Decode(parts[0])
	if err != nil {
		return cid.Undef, nil, bad(p, "%q is not a valid CID", truncate(parts[0], 80))
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return cid.Undef, nil, err
	}
	segments, err := split(p, parts[1:])
	if err != nil {
		return cid.Undef, nil, err
	}
	return c, segments, nil
}

// ParseName splits /{namespace}/{name}[/path] (/ipns/, say) into the
// name and the unescaped path segments, with the rules of Parse.
func ParseName(u *url.URL, namespace string) (string, []string, error) {
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/"+namespace+"/")
	if !ok {
		return "", nil, bad(p, "expected /%s/{name}[/path]", namespace)
	}
	parts := strings.Split(rest, "/")
	name, err := url.PathUnescape(parts[0])
	if err != nil || name == "" {
		return "", nil, bad(p, "no name")
	}
	segments, err := split(p, parts[1:])
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
		return nil, bad(escaped, "a path starts with /")
	}
	if rest == "" {
		return nil, nil
	}
	return split(escaped, strings.Split(rest, "/"))
}

// split unescapes the escaped segments of path p, allowing one trailing
// slash.
func split(p string, parts []string) ([]string, error) {
	var segments []string
	for i, s := range parts {
		if s == "" {
			if i == len(parts)-1 {
				break // one trailing slash
			}
			return nil, bad(p, "empty path segment")
		}
		seg, err := url.PathUnescape(s)
		if err != nil {
			return nil, bad(p, "bad escape %q", truncate(s, 80))
		}
		if seg == "." || seg == ".." {
			return nil, bad(p, "%q segments are not allowed", seg)
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
