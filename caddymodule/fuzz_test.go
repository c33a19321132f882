package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzCaddyfile feeds arbitrary blocks to the directive and the global
// option: they return errors, never panic, and what they accept validates
// without panicking.
func FuzzCaddyfile(f *testing.F) {
	for _, s := range []string{
		"window 32\nreadahead 4\naccess open",
		"max_ranges x",
		"stall_timeout 5s\nresolve_timeout 1m",
		"data_dir /x\nlisten /ip4/0.0.0.0/tcp/4001\npeer /ip4/1.2.3.4/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5",
		"max_memory 1GiB\nmax_streams 10",
		"access allowlist\nallow_file /nope",
		"{\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Input the lexer rejects never reaches the parsers. (Caddy's
		// NewTestDispenser exits the process on such input: the first
		// crasher in testdata/ was that, kept as a regression seed.)
		tokens, err := caddyfile.Tokenize([]byte("pacman {\n"+body+"\n}"), "Caddyfile")
		if err != nil {
			return
		}
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err == nil {
			_ = h.Validate()
		}
		if v, err := parseGlobalOption(caddyfile.NewDispenser(tokens), nil); err == nil && v == nil {
			t.Fatal("no error and no app")
		}
	})
}
