// Package httpurl checks the HTTP URLs an operator configures: origins,
// trustless gateways, delegated routers.
package httpurl

import (
	"errors"
	"fmt"
	"net/url"
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
