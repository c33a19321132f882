package httpurl

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for s, ok := range map[string]bool{
		"http://127.0.0.1:8080":         true,
		"https://gw.example.com/ipfs/x": true,
		"ftp://example.com":             false,
		"example.com":                   false,
		"http://":                       false,
		"http://:80":                    false,
		"https//example.com":            false,
		"http://exa mple.com":           false,
	} {
		u, err := Parse(s)
		if ok != (err == nil) {
			t.Errorf("Parse(%q): %v, %v", s, u, err)
		}
		if err != nil && !errors.Is(err, ErrNotHTTP) {
			t.Errorf("Parse(%q): %v is not ErrNotHTTP", s, err)
		}
	}
}
