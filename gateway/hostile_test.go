package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/gateway"
)

// TestHostileRequests: each hostile request gets a precise 4xx, quickly,
// and the gateway keeps serving.
func TestHostileRequests(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	base := f.url[:len(f.url)-len(f.dir.String())]
	file := f.url + "/video.mp4"
	gitRaw, _ := cid.Prefix{Version: 1, Codec: 0x78, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("x"))
	bigIdentity, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum(make([]byte, 1000))
	cases := []struct {
		name   string
		url    string
		hdr    []string
		status int
	}{
		{"10 000 ranges", file, []string{"Range", "bytes=" + strings.Repeat("0-0,", 9999) + "0-0"}, 416},
		{"reversed range", file, []string{"Range", "bytes=10-5"}, 416},
		{"range beyond 2^63", file, []string{"Range", "bytes=9223372036854775808-9223372036854775809"}, 416},
		{"overlapping ranges", file, []string{"Range", "bytes=0-10,5-15"}, 206},
		{"invalid CID", base + "bafyNOTACID", nil, 400},
		{"unsupported codec", base + gitRaw.String(), nil, 501},
		{"identity CID too large", base + bigIdentity.String(), nil, 400},
		{"100 KB path", base + strings.Repeat("a", 100_000), nil, 400},
		{"unknown format", file + "?format=zip", nil, 400},
		{"bad entity-bytes", file + "?format=car&entity-bytes=x", nil, 400},
		{"bad dag-scope", file + "?format=car&dag-scope=galaxy", nil, 400},
		{"CAR version 2", file, []string{"Accept", "application/vnd.ipld.car; version=2"}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, _ := do(t, "GET", tc.url, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// net/http caps request headers at 1 MB: 431 before pacman runs.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", file, nil)
	req.Header.Set("X-Huge", strings.Repeat("x", 2<<20))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("2 MiB header: status %d, want 431", resp.StatusCode)
		}
	}
	if resp, _ := do(t, "GET", file, "Range", "bytes=0-0"); resp.StatusCode != 206 {
		t.Errorf("after the hostile requests: status %d", resp.StatusCode)
	}
}

// TestIdentityCID: an identity CID carries its bytes inline and is served
// without any fetch.
func TestIdentityCID(t *testing.T) {
	f := newFixture(t, gateway.Config{})
	id, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("hello identity"))
	resp, body := do(t, "GET", f.url[:len(f.url)-len(f.dir.String())]+id.String())
	if resp.StatusCode != 200 || string(body) != "hello identity" {
		t.Errorf("identity CID: status %d, %q", resp.StatusCode, body)
	}
}
