package gateway

import (
	"context"
	"net/http"

	"github.com/pacman-cdn/pacman/dag"
)

// rawBlock describes the single block t names, as the trustless gateway
// spec's application/vnd.ipld.raw response: the client verifies it by
// hashing it, so it can come from any untrusted gateway or CDN.
func (h *Handler) rawBlock(ctx context.Context, w http.ResponseWriter, r *http.Request, g dag.BlockGetter, t target) (representation, error) {
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
	return blockRepresentation(t.cid, data, `"`+t.cid.String()+`.raw"`, mediaRaw), nil
}
