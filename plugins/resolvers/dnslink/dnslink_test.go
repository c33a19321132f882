package dnslink

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/pacman-cdn/pacman/gateway"
)

const dir = "bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i"

type keys map[string]string

func (k keys) Resolve(_ context.Context, n ipns.Name) (path.Path, time.Duration, error) {
	v, ok := k[n.String()]
	if !ok {
		return nil, 0, errors.New("no record")
	}
	p, err := path.NewPath(v)
	return p, 30 * time.Second, err
}

// TestLinks: IPFS_NS_MAP entries, _dnslink TXT records (cached for the
// TTL, absence too), a DNSLink naming an IPNS key, by-Host sites, and a
// domain without a DNSLink.
func TestLinks(t *testing.T) {
	static, err := ParseNSMap("static.example:/ipfs/" + dir + "/sub,viakey.example:/ipns/k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseNSMap("bad:/http/x"); err == nil {
		t.Error("a value outside /ipfs/ and /ipns/ was taken")
	}
	var asked []string
	l := &Links{
		Static: static, TTL: time.Minute, ByHost: true,
		IPNS: keys{"k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam": "/ipfs/" + dir + "/fromkey"},
		TXT: func(_ context.Context, name string) ([]string, error) {
			asked = append(asked, name)
			if name == "_dnslink.dns.example" {
				return []string{"v=spf1", "dnslink=/ipfs/" + dir}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		},
	}
	for _, c := range []struct {
		target, host string
		root         string
		segments     []string
		ttl          time.Duration
		status       int
	}{
		{"/ipns/static.example/a", "", dir, []string{"sub", "a"}, time.Minute, 0},
		{"/ipns/dns.example/", "", dir, nil, time.Minute, 0},
		{"/ipns/dns.example/x", "", dir, []string{"x"}, time.Minute, 0},
		{"/ipns/viakey.example/b", "", dir, []string{"fromkey", "b"}, 30 * time.Second, 0},
		{"/ipns/none.example/", "", "", nil, 0, http.StatusNotFound},
		{"/page.html", "dns.example", dir, []string{"page.html"}, time.Minute, 0},
	} {
		r := httptest.NewRequest("GET", c.target, nil)
		if c.host != "" {
			r.Host = c.host
		}
		content, ok, err := l.Resolve(r)
		if c.status != 0 {
			var se *gateway.StatusError
			if !ok || !errors.As(err, &se) || se.Status != c.status {
				t.Errorf("%s: %v, %v; want status %d", c.target, ok, err, c.status)
			}
			continue
		}
		if !ok || err != nil || content.Root.String() != c.root || !slices.Equal(content.Segments, c.segments) || content.TTL != c.ttl {
			t.Errorf("%s (Host %q): %+v %v %v; want %s %v ttl %v", c.target, c.host, content, ok, err, c.root, c.segments, c.ttl)
		}
	}
	n := len(asked)
	r := httptest.NewRequest("GET", "/ipns/dns.example/", nil)
	if _, _, err := l.Resolve(r); err != nil || len(asked) != n {
		t.Errorf("a cached answer asked DNS again: %v, %d lookups after %d", err, len(asked), n)
	}
	if _, ok, _ := l.Resolve(httptest.NewRequest("GET", "/ipns/k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam", nil)); ok {
		t.Error("an IPNS key was claimed as a domain")
	}
	if _, ok, _ := l.Resolve(httptest.NewRequest("GET", "/ipfs/"+dir, nil)); ok {
		t.Error("an /ipfs/ path was claimed by Host")
	}
}
