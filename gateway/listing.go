package gateway

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway/headers"
)

// maxListing bounds the entries a directory listing shows, so a huge
// sharded directory costs bounded work per request.
const maxListing = 10_000

// listingVersion changes with the listing's markup, so caches holding a
// listing of the same directory in an older markup revalidate.
const listingVersion = "pacman1"

var listingTemplate = template.Must(template.New("listing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Path}}</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em}td.n{text-align:right}code{color:#666}</style>
</head><body>
<h1>{{.Path}}</h1>
<p><code>{{.CID}}</code></p>
<table>
{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td class="n">{{.Size}}</td><td><code>{{.CID}}</code></td></tr>
{{end}}</table>
{{if .Truncated}}<p>Only the first {{.Max}} entries are listed.</p>{{end}}
</body></html>
`))

type listingEntry struct {
	Name, Href, CID string
	Size            uint64
}

// serveListing answers a directory without index.html with an HTML list
// of its entries. Unlike file responses, the listing is generated markup
// that may change with pacman's version, so it is not cached forever.
func (h *Handler) serveListing(ctx context.Context, w http.ResponseWriter, r *http.Request, g chunker.BlockGetter, t target) error {
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
		return fmt.Errorf("%w: %v", chunker.ErrMalformed, err)
	}
	links := nd.Links()
	truncated := false
	if fsn, err := unixfs.FSNodeFromBytes(nd.(*merkledag.ProtoNode).Data()); err == nil && fsn.Type() == unixfspb.Data_HAMTShard {
		shard, err := hamt.NewHamtFromDag(merkledag.NewReadOnlyDagService(nodeGetter{g}), nd)
		if err != nil {
			return fmt.Errorf("%w: %v", chunker.ErrMalformed, err)
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
	entries := make([]listingEntry, len(links))
	for i, l := range links {
		entries[i] = listingEntry{
			Name: l.Name,
			Href: path.Join(r.URL.Path, url.PathEscape(l.Name)),
			CID:  l.Cid.String(),
			Size: l.Size,
		}
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	return listingTemplate.Execute(w, map[string]any{
		"Path": r.URL.Path, "CID": t.cid.String(), "Entries": entries, "Truncated": truncated, "Max": maxListing,
	})
}
