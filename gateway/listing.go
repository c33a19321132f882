package gateway

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/headers"
)

// maxListing bounds the entries a directory listing shows, so a huge
// sharded directory costs bounded work per request.
const maxListing = 10_000

// listingVersion changes with the listing's markup, so caches holding a
// listing of the same directory in an older markup revalidate.
const listingVersion = "pacman2"

// The markup follows the shapes IPFS gateways share (the conformance suite
// checks them): "Index of", breadcrumbs over the content path, a ".."
// backlink below the root, and for each entry a link by name and one by
// CID.
var listingTemplate = template.Must(template.New("listing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Index of {{.Path}}</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em}td.n{text-align:right}a.ipfs-hash{color:#666;font-family:monospace}</style>
</head><body>
<h1>Index of {{.Namespace}}{{range $i, $c := .Crumbs}}{{if $i}}/{{end}}<a href="{{$c.Href}}">{{$c.Name}}</a>{{end}}</h1>
<p>{{.CID}}</p>
<table>
{{if .Up}}<tr><td><a href="{{.Up}}">..</a></td><td></td><td></td></tr>
{{end}}{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td class="n">{{.Size}}</td><td><a class="ipfs-hash" translate="no" href="{{.CIDHref}}"{{if .External}} target="_blank" rel="noreferrer noopener"{{end}}>{{.CID}}</a></td></tr>
{{end}}</table>
{{if .Truncated}}<p>Only the first {{.Max}} entries are listed.</p>{{end}}
</body></html>
`))

type listingEntry struct {
	Name, Href, CID, CIDHref string
	External                 bool
	Size                     uint64
}

type crumb struct{ Name, Href string }

// listingLinks says where a listing's links lead, which depends on the
// origin it is shown on.
type listingLinks struct {
	// contentPath is the escaped content path listed: /ipfs/{cid}/a/ or
	// /ipns/{name}/a/.
	contentPath string
	// gateway is "//{host}" of a subdomain gateway whose path gateway the
	// breadcrumbs and CIDs link to; empty on a path gateway, whose own
	// origin serves them.
	gateway string
	// site is "//{host}" of a site on its own host (a DNSLink): its
	// breadcrumbs are its own paths, and CIDs link to an inspector, as
	// the site has no path gateway.
	site string
}

// crumbs returns the namespace and a breadcrumb per component of the
// content path, and whether the path is the content's root.
func (l listingLinks) crumbs() (string, []crumb, bool) {
	parts := strings.Split(strings.Trim(l.contentPath, "/"), "/")
	if len(parts) < 2 {
		return "/", nil, true
	}
	ns := "/" + parts[0] + "/"
	var out []crumb
	for i := 1; i < len(parts); i++ {
		name, err := url.PathUnescape(parts[i])
		if err != nil {
			name = parts[i]
		}
		href := l.gateway + ns + strings.Join(parts[1:i+1], "/")
		if l.site != "" {
			href = l.site + "/" + strings.Join(parts[2:i+1], "/")
		}
		out = append(out, crumb{Name: name, Href: href})
	}
	return ns, out, len(parts) == 2
}

// serveListing answers a directory without index.html with an HTML list
// of its entries. Unlike file responses, the listing is generated markup
// that may change with pacman's version, so it is not cached forever.
func (h *Handler) serveListing(ctx context.Context, w http.ResponseWriter, r *http.Request, g dag.BlockGetter, t target, origin listingLinks) error {
	etag := fmt.Sprintf(`"DirIndex-%s_CID-%s"`, listingVersion, t.cid)
	hdr := w.Header()
	hdr.Set("Etag", etag)
	hdr.Set("Cache-Control", "public, max-age=604800, stale-while-revalidate=2678400")
	if inm := r.Header.Get("If-None-Match"); inm != "" && headers.ETagMatch(inm, etag, true) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	blk, err := g.GetBlock(ctx, t.cid)
	if err != nil {
		return err
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		return fmt.Errorf("%w: %v", dag.ErrMalformed, err)
	}
	links := nd.Links()
	truncated := false
	if fsn, err := unixfs.FSNodeFromBytes(nd.(*merkledag.ProtoNode).Data()); err == nil && fsn.Type() == unixfspb.Data_HAMTShard {
		shard, err := hamt.NewHamtFromDag(merkledag.NewReadOnlyDagService(nodeGetter{g}), nd)
		if err != nil {
			return fmt.Errorf("%w: %v", dag.ErrMalformed, err)
		}
		links = nil
		errFull := fmt.Errorf("listing full")
		err = shard.ForEachLink(ctx, func(l *ipld.Link) error {
			if len(links) == maxListing {
				truncated = true
				return errFull
			}
			links = append(links, l)
			return nil
		})
		if err != nil && err != errFull {
			return err
		}
	}
	if len(links) > maxListing {
		links, truncated = links[:maxListing], true
	}
	here := strings.TrimSuffix(r.URL.EscapedPath(), "/") + "/"
	entries := make([]listingEntry, len(links))
	for i, l := range links {
		e := listingEntry{
			Name: l.Name,
			Href: here + url.PathEscape(l.Name),
			CID:  l.Cid.String(),
			Size: l.Size,
			// The file name travels escaped twice, as other gateways
			// write it.
			CIDHref: origin.gateway + "/ipfs/" + l.Cid.String() + "?filename=" + url.QueryEscape(url.PathEscape(l.Name)),
		}
		if origin.site != "" {
			e.CIDHref, e.External = "https://cid.ipfs.tech/#"+l.Cid.String(), true
		}
		entries[i] = e
	}
	ns, crumbs, root := origin.crumbs()
	up := ""
	if !root {
		up = here + ".."
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	unescaped, err := url.PathUnescape(origin.contentPath)
	if err != nil {
		unescaped = origin.contentPath
	}
	return listingTemplate.Execute(w, map[string]any{
		"Path": unescaped, "Namespace": ns, "Crumbs": crumbs, "Up": up,
		"CID": t.cid.String(), "Entries": entries, "Truncated": truncated, "Max": maxListing,
	})
}
