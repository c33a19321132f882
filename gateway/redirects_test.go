package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	blockstore "github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
	"github.com/pacman-cdn/pacman/ingest"
)

// sites imports each map of files as a directory into bs and returns
// their CIDs.
func sites(t *testing.T, bs blockservice.BlockService, trees ...map[string]string) []cid.Cid {
	t.Helper()
	var roots []cid.Cid
	for _, files := range trees {
		dir := t.TempDir()
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := ingest.ImportDir(context.Background(), merkledag.NewDAGService(bs), dir)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, c)
	}
	return roots
}

// siteHost resolves every request, whatever its host, to a site's root
// with the request's own path, as a DNSLink host is.
type siteHost struct{ root cid.Cid }

func (s siteHost) Resolve(r *http.Request) (gateway.Content, bool, error) {
	if strings.HasPrefix(r.URL.Path, "/ipfs/") {
		return gateway.Content{}, false, nil
	}
	segs, err := contentpath.Segments(r.URL.EscapedPath())
	return gateway.Content{Root: s.root, Segments: append([]string{"www"}, segs...), TTL: time.Minute, Site: true,
		Path: "/ipns/" + r.Host + r.URL.EscapedPath()}, true, err
}

// TestRedirectsFile follows the web redirects file spec on a subdomain
// origin and on a site's own host: rules apply only to paths that do not
// exist, in order, with placeholders and splats; 200 rewrites, 4xx rules
// serve custom pages with their status; a broken file is a 500 that says
// why; a path gateway, whose origin is shared, ignores the file.
func TestRedirectsFile(t *testing.T) {
	bs := blockservice.New(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), nil)
	rules := `# comments and blank lines are skipped

/redirect-one /one.html
/two /two.html 302
/posts/:year/:month/:title /articles/:year/:month/:title 301
/splat/* /redirected/:splat
/one.html /never.html
/gone/* /410.html 410
/app/* /index.html 200
/dir/* /sub 200
/* /404.html 404
`
	files := map[string]string{"_redirects": rules, "index.html": "my index", "one.html": "one", "404.html": "my 404", "410.html": "my 410", "sub/index.html": "sub index"}
	roots := sites(t, bs, files,
		map[string]string{"_redirects": "/a /b 301!\n", "index.html": "x"},
		map[string]string{"_redirects": strings.Repeat("/a /b\n", 64<<10/6+1)},
		map[string]string{"www/_redirects": rules, "www/404.html": "my 404"},
	)
	good, forced, large, wrapped := roots[0], roots[1], roots[2], roots[3]
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return bs }, gateway.Config{
		Subdomains: []string{"gw.test"},
		Resolvers:  []gateway.Resolver{gateway.IPFSPaths{}, siteHost{wrapped}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	origin := good.String() + ".ipfs.gw.test"

	for _, c := range []struct {
		path   string
		status int
		want   string // Location, or the body
	}{
		{"/redirect-one", 301, "/one.html"},
		{"/redirect-one?x=1", 301, "/one.html?x=1"},
		{"/two", 302, "/two.html"},
		{"/posts/2026/12/hello", 301, "/articles/2026/12/hello"},
		{"/splat/a/b.html", 301, "/redirected/a/b.html"},
		{"/one.html", 200, "one"}, // it exists: no rule applies
		{"/app/settings/", 200, "my index"},
		{"/dir/x", 200, "sub index"},
		{"/gone/old", 410, "my 410"},
		{"/nothing/here", 404, "my 404"},
	} {
		resp, body := ask(t, srv.URL, origin, c.path)
		got := string(body)
		if c.status/100 == 3 {
			got = resp.Header.Get("Location")
		}
		if resp.StatusCode != c.status || got != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.path, resp.StatusCode, got, c.status, c.want)
		}
	}
	// A custom page is the page's own representation, sent whole.
	resp, _ := ask(t, srv.URL, origin, "/nothing/here", "Range", "bytes=0-1")
	page := childOf(t, bs, good, "404.html")
	if resp.StatusCode != 404 || resp.Header.Get("Etag") != `"`+page.String()+`"` || resp.Header.Get("Content-Range") != "" ||
		resp.Header.Get("Cache-Control") != "public, max-age=29030400, immutable" {
		t.Errorf("custom 404 with Range: %d, Etag %q, Content-Range %q, Cache-Control %q", resp.StatusCode, resp.Header.Get("Etag"), resp.Header.Get("Content-Range"), resp.Header.Get("Cache-Control"))
	}
	// A rewrite is revalidated like the page it serves.
	resp, _ = ask(t, srv.URL, origin, "/app/x")
	if resp, _ := ask(t, srv.URL, origin, "/app/x", "If-None-Match", resp.Header.Get("Etag")); resp.StatusCode != http.StatusNotModified {
		t.Errorf("rewrite revalidated: %d, want 304", resp.StatusCode)
	}

	for _, c := range []struct{ host, want string }{
		{forced.String() + ".ipfs.gw.test", "could not parse _redirects: parsing status \"301!\": forced redirects"},
		{large.String() + ".ipfs.gw.test", "could not parse _redirects: redirects file size cannot exceed"},
	} {
		if resp, body := ask(t, srv.URL, c.host, "/not-found"); resp.StatusCode != 500 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %q, want 500 saying %q", c.host, resp.StatusCode, body, c.want)
		}
	}
	if resp, body := ask(t, srv.URL, forced.String()+".ipfs.gw.test", "/"); resp.StatusCode != 200 || string(body) != "x" {
		t.Errorf("a broken _redirects does not touch paths that exist: %d %q", resp.StatusCode, body)
	}

	// A site on its own host (a DNSLink, say) whose name points into a
	// subdirectory: the subdirectory's _redirects, pages from it, and the
	// name's cache lifetime.
	resp, body := ask(t, srv.URL, "site.test", "/missing")
	if resp.StatusCode != 404 || string(body) != "my 404" || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("a site's custom 404: %d %q, Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := ask(t, srv.URL, "site.test", "/redirect-one"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/one.html" {
		t.Errorf("a site's redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A path gateway shares one origin among all content: no rules.
	if resp, _ := ask(t, srv.URL, "127.0.0.1", "/ipfs/"+good.String()+"/redirect-one"); resp.StatusCode != 404 {
		t.Errorf("a path gateway applied _redirects: %d, want 404", resp.StatusCode)
	}
}

func childOf(t *testing.T, bs blockservice.BlockService, dir cid.Cid, name string) cid.Cid {
	t.Helper()
	nd, err := merkledag.NewDAGService(bs).Get(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := nd.ResolveLink([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	return l.Cid
}
