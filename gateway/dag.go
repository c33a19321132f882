package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/gateway/headers"
	"github.com/pacman-cdn/pacman/stream"
)

// The plain codecs, which go-cid does not name.
const (
	codecJSON = 0x0200
	codecCBOR = 0x51
)

// family is JSON or CBOR: the two encodings a block can be served as, with
// the DAG variant (links) or plain.
type family string

const (
	familyJSON family = "json"
	familyCBOR family = "cbor"
)

// codecFamily returns the family of a codec served as a document, if any.
func codecFamily(codec uint64) (family, bool) {
	switch codec {
	case cid.DagJSON, codecJSON:
		return familyJSON, true
	case cid.DagCBOR, codecCBOR:
		return familyCBOR, true
	}
	return "", false
}

// dagAsk is a request for a block as a document: its family, and whether
// the DAG variant's media type was asked for.
type dagAsk struct {
	family family
	dag    bool
}

// mediaType is the Content-Type of an answer to a.
func (a dagAsk) mediaType() string {
	if a.dag {
		return "application/vnd.ipld.dag-" + string(a.family)
	}
	return "application/" + string(a.family)
}

// etagName is the suffix of an answer's ETag.
func (a dagAsk) etagName() string {
	if a.dag {
		return "dag-" + string(a.family)
	}
	return string(a.family)
}

// dagFormat reads a ?format= naming a document format, or "" when it
// names none.
func dagFormat(q string) (dagAsk, bool) {
	switch q {
	case "dag-json":
		return dagAsk{familyJSON, true}, true
	case "dag-cbor":
		return dagAsk{familyCBOR, true}, true
	case "json":
		return dagAsk{familyJSON, false}, true
	case "cbor":
		return dagAsk{familyCBOR, false}, true
	}
	return dagAsk{}, false
}

// dagAccept reads the document formats an Accept header asks for, and
// whether it asks for HTML first.
func dagAccept(r *http.Request) (asks []dagAsk, html bool) {
	for i, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/vnd.ipld.dag-json":
			asks = append(asks, dagAsk{familyJSON, true})
		case "application/vnd.ipld.dag-cbor":
			asks = append(asks, dagAsk{familyCBOR, true})
		case "application/json":
			asks = append(asks, dagAsk{familyJSON, false})
		case "application/cbor":
			asks = append(asks, dagAsk{familyCBOR, false})
		case "text/html":
			html = html || i == 0
		}
	}
	return asks, html
}

// errNotAcceptable is a request for a codec the block is not in: per
// IPIP-0524 the gateway serves blocks as they are and converts nothing.
func errNotAcceptable(c cid.Cid, a dagAsk) error {
	return Errorf(http.StatusNotAcceptable, fmt.Sprintf("%s is not %s: blocks are served in their own codec, never converted", c, a.mediaType()))
}

// explicitDAG returns the document format a request names outright: its
// ?format=, or a DAG media type in Accept. Plain application/json or cbor
// in Accept is a preference, not a demand: a UnixFS file is still served.
func explicitDAG(r *http.Request) (dagAsk, bool) {
	if a, ok := dagFormat(r.URL.Query().Get("format")); ok {
		return a, true
	}
	asks, _ := dagAccept(r)
	for _, a := range asks {
		if a.dag {
			return a, true
		}
	}
	return dagAsk{}, false
}

// serveDAG answers a request for block c as a document: a DAG-JSON,
// DAG-CBOR, JSON or CBOR block as it is stored, or an HTML preview for a
// browser. A request that names a format the block is not in gets 406.
func (h *Handler) serveDAG(ctx context.Context, w http.ResponseWriter, r *http.Request, g dag.BlockGetter, c cid.Cid) (representation, error) {
	blk, err := g.GetBlock(ctx, c)
	if err != nil {
		return representation{}, err
	}
	data := blk.RawData()
	fam, ok := codecFamily(c.Prefix().Codec)
	natural := dagAsk{fam, c.Prefix().Codec == cid.DagJSON || c.Prefix().Codec == cid.DagCBOR}
	ask := natural
	if a, explicit := explicitDAG(r); explicit {
		switch {
		case ok && a.family == fam:
		case !ok && c.Prefix().Codec == cid.Raw && !a.dag && (a.family != familyJSON || json.Valid(data)):
			// The bytes of a raw block served under a plain type.
		default:
			return representation{}, errNotAcceptable(c, a)
		}
		ask = a
	} else {
		if !ok {
			return representation{}, errNotAcceptable(c, natural)
		}
		asks, wantsHTML := dagAccept(r)
		if wantsHTML {
			return dagPreview(w, c, data, fam), nil
		}
		for _, a := range asks {
			if a.family == fam {
				ask = a
				break
			}
		}
	}

	q := r.URL.Query()
	name := q.Get("filename")
	if name == "" {
		name = c.String() + "." + string(ask.family)
	}
	disposition := "inline"
	if ask.family == familyCBOR || q.Get("download") == "true" {
		disposition = "attachment"
	}
	hdr := w.Header()
	hdr.Set("Content-Disposition", contentDisposition(disposition, name))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Add("Vary", "Accept")
	return blockRepresentation(c, data, `"`+c.String()+"."+ask.etagName()+`"`, ask.mediaType()), nil
}

// blockRepresentation is one block's bytes served as they are.
func blockRepresentation(c cid.Cid, data []byte, etag, ctype string) representation {
	return representation{
		cid:         c,
		size:        int64(len(data)),
		etag:        etag,
		contentType: func([]headers.Range) (string, error) { return ctype, nil },
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
	}
}

// dagPreview is the HTML page a browser gets for a document block: its
// CID, codec and content, as DAG-JSON.
func dagPreview(w http.ResponseWriter, c cid.Cid, data []byte, fam family) representation {
	body := data
	if fam == familyCBOR {
		if nd, err := ipld.Decode(data, dagcbor.Decode); err == nil {
			if enc, err := ipld.Encode(nd, dagjson.Encode); err == nil {
				body = enc
			}
		}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(body)
	}
	page := fmt.Sprintf(`<!doctype html>
<html><head><meta charset="utf-8"><title>%[1]s</title></head>
<body><h1>%[1]s</h1><p>codec: %[2]s</p><pre>%[3]s</pre></body></html>
`, c, html.EscapeString(cidCodecName(c)), html.EscapeString(pretty.String()))
	w.Header().Add("Vary", "Accept")
	rep := blockRepresentation(c, []byte(page), `"DagIndex-`+c.String()+`"`, "text/html; charset=utf-8")
	rep.cacheControl = "public, max-age=604800, stale-while-revalidate=2678400"
	return rep
}

// cidCodecName names c's codec.
func cidCodecName(c cid.Cid) string {
	switch c.Prefix().Codec {
	case cid.DagJSON:
		return "dag-json"
	case cid.DagCBOR:
		return "dag-cbor"
	case codecJSON:
		return "json"
	case codecCBOR:
		return "cbor"
	}
	return fmt.Sprintf("0x%x", c.Prefix().Codec)
}
