// Package httpurl checks the HTTP URLs an operator configures (origins,
// trustless gateways, delegated routers) and the request paths joined to
// them.
package httpurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrNotHTTP says a URL is not an absolute http:// or https:// URL.
var ErrNotHTTP = errors.New("want an http:// or https:// URL with a host")

// Parse parses s, which must be an absolute http:// or https:// URL with a
// host; the error quotes s.
func Parse(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q: %w", s, ErrNotHTTP)
	}
	return u, nil
}

// SafePath reports whether the escaped path p names only the file it
// seems to: no . or .. segment, escaped or not, and no segment with an
// escaped slash or a backslash in it, which some origins would take to
// name a file elsewhere.
func SafePath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." || strings.ContainsAny(dec, "/\\") {
			return false
		}
	}
	return true
}
