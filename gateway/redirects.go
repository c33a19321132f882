package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	redirects "github.com/ipfs/go-ipfs-redirects-file"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
)

// sitePrefix returns the segments from content's root to the root of the
// site the request is for, when the request's origin is the site's own (a
// subdomain origin, a DNSLink host): the segments of the name's target
// before the request's own path.
func sitePrefix(r *http.Request, content Content) ([]string, bool) {
	if !content.Site {
		return nil, false
	}
	own, err := contentpath.Segments(r.URL.EscapedPath())
	if err != nil || len(own) > len(content.Segments) {
		return nil, false
	}
	n := len(content.Segments) - len(own)
	if !slices.Equal(content.Segments[n:], own) {
		return nil, false
	}
	return content.Segments[:n], true
}

// siteRedirects applies the site's _redirects file
// (specs.ipfs.tech/http-gateways/web-redirects-file/) to a request for a
// path that does not exist, notFound. It answers redirects itself and
// reports done; otherwise it returns the target to serve in the path's
// place with its status (200 for a rewrite, or a custom 404, 410 or 451
// page), or notFound when no rule matches.
func (h *Handler) siteRedirects(ctx context.Context, w http.ResponseWriter, r *http.Request, g dag.BlockGetter, root cid.Cid, prefix []string, notFound error) (t target, status int, done bool, err error) {
	site, err := resolvePath(ctx, g, root, prefix, false, nil)
	if err != nil {
		return t, 0, false, notFound
	}
	rules, err := readRedirects(ctx, g, site.cid)
	if err != nil {
		return t, 0, false, err
	}
	if rules == nil {
		return t, 0, false, notFound
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	for _, rule := range rules {
		if !rule.MatchAndExpandPlaceholders(p) {
			continue
		}
		if rule.Status >= 300 && rule.Status < 400 {
			loc, err := withQuery(rule.To, r.URL.RawQuery)
			if err != nil {
				return t, 0, false, Errorf(http.StatusInternalServerError, fmt.Sprintf("_redirects rule to %q: %v", rule.To, err))
			}
			http.Redirect(w, r, loc, rule.Status)
			return t, 0, true, nil
		}
		if !strings.HasPrefix(rule.To, "/") {
			return t, 0, false, Errorf(http.StatusInternalServerError, fmt.Sprintf("_redirects rule %s %s %d: proxying to a URL is not supported", rule.From, rule.To, rule.Status))
		}
		u, err := url.Parse(rule.To)
		if err != nil {
			return t, 0, false, Errorf(http.StatusInternalServerError, fmt.Sprintf("_redirects rule to %q: %v", rule.To, err))
		}
		segs, err := contentpath.Segments(u.EscapedPath())
		if err != nil {
			return t, 0, false, Errorf(http.StatusInternalServerError, fmt.Sprintf("_redirects rule to %q: %v", rule.To, err))
		}
		t, err = resolvePath(ctx, g, site.cid, segs, true, nil)
		if err != nil {
			return t, 0, false, err
		}
		if t.listing {
			return t, 0, false, Errorf(http.StatusInternalServerError, fmt.Sprintf("_redirects rule to %q names a directory without index.html", rule.To))
		}
		t.roots = append(slices.Clone(site.roots), t.roots[1:]...)
		return t, rule.Status, false, nil
	}
	return t, 0, false, notFound
}

// readRedirects reads and parses the _redirects file of the directory
// site, or returns nil rules when it has none.
func readRedirects(ctx context.Context, g dag.BlockGetter, site cid.Cid) ([]redirects.Rule, error) {
	f, err := resolvePath(ctx, g, site, []string{"_redirects"}, false, nil)
	if errors.Is(err, errNoLink) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dag := merkledag.NewReadOnlyDagService(nodeGetter{g})
	nd, err := dag.Get(ctx, f.cid)
	if err != nil {
		return nil, err
	}
	rd, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		return nil, Errorf(http.StatusInternalServerError, "could not parse _redirects: it is not a file")
	}
	defer rd.Close()
	// The parser reports a file past its limit itself; nothing more is
	// read than one byte over.
	data, err := io.ReadAll(io.LimitReader(rd, redirects.MaxFileSizeInBytes+1))
	if err != nil {
		return nil, err
	}
	rules, err := redirects.ParseString(string(data))
	if err != nil {
		return nil, Errorf(http.StatusInternalServerError, "could not parse _redirects: "+err.Error())
	}
	if rules == nil {
		rules = []redirects.Rule{}
	}
	return rules, nil
}

// withQuery adds a request's query to a redirect's target.
func withQuery(to, rawQuery string) (string, error) {
	if rawQuery == "" {
		return to, nil
	}
	u, err := url.Parse(to)
	if err != nil {
		return "", err
	}
	q := u.Query()
	extra, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", err
	}
	for k, vs := range extra {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
