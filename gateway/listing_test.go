package gateway_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	blockstore "github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway"
)

// TestListingLinks: a directory listing links each entry, its CID, the
// parent directory and every breadcrumb where that origin serves them — a
// path gateway under /ipfs/, a subdomain origin within itself and its
// gateway's path gateway, a site on its own host within itself — with
// names escaped once in paths.
func TestListingLinks(t *testing.T) {
	bs := blockservice.New(blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore())), nil)
	roots := sites(t, bs, map[string]string{"ą/ę/file-źł.txt": "x"}, map[string]string{"www/ą/ę/file-źł.txt": "x"})
	dir, site := roots[0], roots[1]
	h, err := newSessionHandler(func(context.Context) dag.BlockGetter { return bs }, gateway.Config{
		Subdomains: []string{"gw.test"},
		Resolvers:  []gateway.Resolver{gateway.IPFSPaths{}, siteHost{site}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ą := childOf(t, bs, dir, "ą")
	file := childOf(t, bs, childOf(t, bs, ą, "ę"), "file-źł.txt").String()
	d := dir.String()

	for _, c := range []struct {
		name, host, path string
		want             []string
		root             string // the backlink that must not be on the root's listing
	}{
		{"path gateway", "127.0.0.1", "/ipfs/" + d + "/%C4%85/%C4%99/", []string{
			`Index of /ipfs/<a href="/ipfs/` + d + `">` + d + `</a>/<a href="/ipfs/` + d + `/%C4%85">ą</a>/<a href="/ipfs/` + d + `/%C4%85/%C4%99">ę</a>`,
			`<a href="/ipfs/` + d + `/%C4%85/%C4%99/..">..</a>`,
			`<a href="/ipfs/` + d + `/%C4%85/%C4%99/file-%C5%BA%C5%82.txt">file-źł.txt</a>`,
			`<a class="ipfs-hash" translate="no" href="/ipfs/` + file + `?filename=file-%25C5%25BA%25C5%2582.txt">`,
		}, `<a href="/ipfs/` + d + `/..">..</a>`},
		{"subdomain origin", d + ".ipfs.gw.test", "/%C4%85/%C4%99/", []string{
			`Index of /ipfs/<a href="//gw.test/ipfs/` + d + `">` + d + `</a>/<a href="//gw.test/ipfs/` + d + `/%C4%85">ą</a>`,
			`<a href="/%C4%85/%C4%99/..">..</a>`,
			`<a href="/%C4%85/%C4%99/file-%C5%BA%C5%82.txt">file-źł.txt</a>`,
			`<a class="ipfs-hash" translate="no" href="//gw.test/ipfs/` + file + `?filename=file-%25C5%25BA%25C5%2582.txt">`,
		}, `<a href="/..">..</a>`},
		{"a site's own host", "site.test", "/%C4%85/%C4%99/", []string{
			`Index of /ipns/<a href="//site.test/">site.test</a>/<a href="//site.test/%C4%85">ą</a>/<a href="//site.test/%C4%85/%C4%99">ę</a>`,
			`<a href="/%C4%85/%C4%99/..">..</a>`,
			`<a href="/%C4%85/%C4%99/file-%C5%BA%C5%82.txt">file-źł.txt</a>`,
			`<a class="ipfs-hash" translate="no" href="https://cid.ipfs.tech/#` + file + `" target="_blank" rel="noreferrer noopener">`,
		}, `<a href="/..">..</a>`},
	} {
		resp, body := ask(t, srv.URL, c.host, c.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: the listing lacks %s\n%s", c.name, w, body)
			}
		}
		root := strings.TrimSuffix(c.path, "%C4%85/%C4%99/")
		if _, body := ask(t, srv.URL, c.host, root); !strings.Contains(string(body), "Index of") || strings.Contains(string(body), c.root) {
			t.Errorf("%s: the root's listing has a backlink, or is no listing:\n%s", c.name, body)
		}
	}
}
