package origin

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/hedge"
)

// TestOriginURLs: the origin's URL keeps its scheme and host whatever the
// request says; a request's escaped ? and # stay in the path; dot
// segments and placeholders in the authority are refused.
func TestOriginURLs(t *testing.T) {
	for _, bad := range []string{"http://127.0.0.1{http.request.header.X-Port}", "http://{http.request.host}/x", "ftp://o.example"} {
		if err := (&Source{URL: bad}).Init(); err == nil {
			t.Errorf("origin %q was accepted", bad)
		}
	}
	open := func(s *Source, target string, header ...string) string {
		t.Helper()
		if err := s.Init(); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://edge.example"+target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		repl := caddyhttp.NewTestReplacer(r)
		f, _, err := s.Open(hedge.Target{Path: r.URL.EscapedPath(), Expand: func(s string) string { return repl.ReplaceAll(s, "") }})
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			return ""
		}
		return f.(interface{ OriginURL() string }).OriginURL()
	}
	plain := func() *Source { return &Source{URL: "https://o.example/media"} }
	if got := open(plain(), "/videos/a.mp4"); got != "https://o.example/media/videos/a.mp4" {
		t.Errorf("plain path: %q", got)
	}
	got := open(plain(), "/videos/..%2Fother%3Finject=1&x=2%23")
	if got != "" {
		u, _ := url.Parse(got)
		if u.RawQuery != "" || u.Fragment != "" || strings.Contains(u.Path, "..") {
			t.Errorf("an escaped name reached the origin as %q (query %q)", got, u.RawQuery)
		}
	}
	if got := open(plain(), "/videos/%3Fa=1"); got != "https://o.example/media/videos/%3Fa=1" {
		t.Errorf("an escaped ? left the path: %q", got)
	}
	for _, p := range []string{"/videos/../secret", "/videos/%2e%2e/secret", "/./a"} {
		if got := open(plain(), p); got != "" {
			t.Errorf("%s: a dot segment reached the origin as %q", p, got)
		}
	}
	templ := &Source{URL: "https://o.example/bucket/{http.request.header.X-File}"}
	if got := open(templ, "/x", "X-File", "@evil.example/y"); got != "https://o.example/bucket/@evil.example/y" {
		t.Errorf("a header in the path: %q", got)
	}
	// A fleet member's want may name only URLs this source builds.
	if err := plain().Init(); err != nil {
		t.Fatal(err)
	}
	s := plain()
	_ = s.Init()
	for u, ok := range map[string]bool{
		"https://o.example/media/videos/a.mp4":  true,
		"https://o.example/other/a.mp4":         false,
		"https://o.example.evil/media/a.mp4":    false,
		"https://o.example/media/../secret.txt": false,
	} {
		f, _, _ := s.Open(hedge.Target{OriginURL: u})
		if (f != nil) != ok {
			t.Errorf("a member's want of %s: served %v, want %v", u, f != nil, ok)
		}
	}
}
