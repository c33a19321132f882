package gateway

import (
	"context"
	"io"
	"net/http"

	"github.com/pacman-cdn/pacman/chunker"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"github.com/pacman-cdn/pacman/stream"
)

// rawBlock describes the single block t names, as the trustless gateway
// spec's application/vnd.ipld.raw response: the client verifies it by
// hashing it, so it can come from any untrusted gateway or CDN.
func (h *Handler) rawBlock(ctx context.Context, w http.ResponseWriter, r *http.Request, g chunker.BlockGetter, t target) (representation, error) {
	blk, err := g.GetBlock(ctx, t.cid)
	if err != nil {
		return representation{}, err
	}
	data := blk.RawData()
	name := r.URL.Query().Get("filename")
	if name == "" {
		name = t.cid.String() + ".bin"
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Disposition", contentDisposition("attachment", name))
	hdr.Add("Vary", "Accept")
	return representation{
		cid:         t.cid,
		size:        int64(len(data)),
		etag:        `"` + t.cid.String() + `.raw"`,
		contentType: func([]headers.Range) (string, error) { return mediaRaw, nil },
		stream: func(_ context.Context, spans []stream.Span, _ *stream.FirstLeaf, begin func(int) (io.Writer, error)) error {
			for i, sp := range spans {
				w, err := begin(i)
				if err != nil {
					return err
				}
				if _, err := w.Write(data[sp.Start:sp.End]); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}
