package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/stream"
)

// unixfsFile describes the UnixFS file t names, whose blocks req fetches;
// with readahead set, the leaves after each range are fetched too.
func (h *Handler) unixfsFile(ctx context.Context, w http.ResponseWriter, r *http.Request, t target, req *hedge.Request, readahead bool) (representation, error) {
	size, err := h.streamer.Index.Size(ctx, req, t.cid)
	if err != nil {
		return representation{}, err
	}
	name := t.name
	if q := r.URL.Query().Get("filename"); q != "" && name == "" {
		// As on other IPFS gateways: a bare CID can be given a file name,
		// for its media type and for browsers that save it.
		// With ?download=true browsers save it rather than show it.
		name = q
		disposition := "inline"
		if r.URL.Query().Get("download") == "true" {
			disposition = "attachment"
		}
		w.Header().Set("Content-Disposition", contentDisposition(disposition, q))
	}
	if name == "" {
		// A friendly name (a catalog's /videos/movie.mp4) gives its own
		// extension; a bare CID has none.
		name = path.Base(r.URL.Path)
	}
	etagCID := t.cid
	if t.dir {
		// A directory served by its index.html is named by the directory.
		etagCID = t.roots[len(t.roots)-1]
	}
	return representation{
		size: size,
		etag: `"` + etagCID.String() + `"`,
		contentType: func(ranges []headers.Range) (string, error) {
			return h.contentType(r, req, t.cid, name, size, ranges)
		},
		stream: func(ctx context.Context, spans []stream.Span, first *stream.FirstLeaf, begin func(int) (io.Writer, error)) error {
			return h.streamer.Stream(ctx, req, t.cid, spans, first, begin)
		},
		served: func(end int64) {
			if h.readahead != nil && readahead {
				h.readahead.Start(req, t.cid, end, size)
			}
		},
		cid: t.cid,
	}, nil
}

// contentType picks the media type from the file name's extension, and else
// sniffs the first 512 bytes, but only when the response starts at byte 0:
// sniffing a mid-file seek would fetch a leaf the client did not ask for.
func (h *Handler) contentType(r *http.Request, g stream.Getter, c cid.Cid, name string, size int64, ranges []headers.Range) (string, error) {
	if ct := typeByName(name); ct != "" {
		return ct, nil
	}
	if size == 0 || (len(ranges) > 0 && ranges[0].Start != 0) {
		return "application/octet-stream", nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ResolveTimeout)
	defer cancel()
	var head []byte
	for leaf, err := range h.streamer.Index.Leaves(ctx, g, c, 0, 1) {
		if err != nil {
			return "", err
		}
		head = leaf.Data
		if head == nil {
			blk, err := g.Get(ctx, hedge.Want{Cid: leaf.Cid, Offset: leaf.Offset, Size: leaf.Size, Reason: hedge.ForIndex})
			if err != nil {
				return "", err
			}
			head = blk.RawData()
		}
	}
	ctype := http.DetectContentType(head[:min(len(head), 512)])
	if strings.HasPrefix(ctype, "text/plain") && int64(len(head)) == size && json.Valid(head) {
		// Much JSON is stored as plain UnixFS files without a name.
		ctype = "application/json"
	}
	return ctype, nil
}
