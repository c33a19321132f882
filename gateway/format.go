package gateway

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"
)

// format is the kind of response a request asks for.
type format int

const (
	// formatFile is the deserialized file, as a web server sends it.
	formatFile format = iota
	// formatRaw is one block, verifiable by hashing it (trustless gateway).
	formatRaw
	// formatCAR is a CAR stream of blocks (trustless gateway).
	formatCAR
	// formatDAG is one block as a document: DAG-JSON, DAG-CBOR, JSON or
	// CBOR, in the block's own codec.
	formatDAG
	// formatTAR is the file or directory tree as a TAR archive.
	formatTAR
)

// Media types of the trustless gateway responses.
const (
	mediaRaw = "application/vnd.ipld.raw"
	mediaCAR = "application/vnd.ipld.car"
)

// mediaIPNSRecord is the media type of a signed IPNS record.
const mediaIPNSRecord = "application/vnd.ipfs.ipns-record"

// wantsRecord reports a request for the record behind a name, by
// ?format=ipns-record or Accept.
func wantsRecord(r *http.Request) bool {
	if q := r.URL.Query().Get("format"); q != "" {
		return q == "ipns-record"
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaIPNSRecord {
			return true
		}
	}
	return false
}

// errUnsupportedFormat reports a ?format= this gateway does not produce.
var errUnsupportedFormat = errors.New("unsupported format")

// responseFormat reads the format a request asks for: the ?format= query
// parameter, which wins, then the Accept header.
func responseFormat(r *http.Request) (format, error) {
	switch q := r.URL.Query().Get("format"); q {
	case "":
	case "raw":
		return formatRaw, nil
	case "car":
		return formatCAR, nil
	case "dag-json", "dag-cbor", "json", "cbor":
		return formatDAG, nil
	case "tar":
		return formatTAR, nil
	default:
		return formatFile, fmt.Errorf("%w %.20q: this gateway serves files, raw blocks (format=raw), CARs (format=car), TARs (format=tar) and blocks as documents (format=dag-json, dag-cbor, json or cbor)", errUnsupportedFormat, q)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case mediaRaw:
			return formatRaw, nil
		case mediaCAR:
			return formatCAR, nil
		case mediaTAR:
			return formatTAR, nil
		}
	}
	if _, ok := explicitDAG(r); ok {
		return formatDAG, nil
	}
	return formatFile, nil
}

// onlyIfCached reports a request that must be answered from stored blocks
// only (RFC 9111 §5.2.1.7).
func onlyIfCached(r *http.Request) bool {
	for _, v := range r.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}

// errNotCached reports a block an only-if-cached request needed that is not
// stored.
var errNotCached = errors.New("the content is not in this gateway's cache (Cache-Control: only-if-cached)")

// corsHeaders are sent on every response: content-addressed data is public
// and the same for every origin, so players on any site may read it,
// including the range and path headers they need.
var corsHeaders = map[string]string{
	"Access-Control-Allow-Origin":   "*",
	"Access-Control-Allow-Methods":  "GET, HEAD, OPTIONS",
	"Access-Control-Allow-Headers":  "Content-Type, Range, User-Agent, X-Requested-With, If-None-Match, If-Range",
	"Access-Control-Expose-Headers": "Content-Range, Content-Length, X-Ipfs-Path, X-Ipfs-Roots, X-Chunked-Output, X-Stream-Output, Etag",
}

func setCORS(h http.Header) {
	for k, v := range corsHeaders {
		h.Set(k, v)
	}
}

func joinCIDs(cids []cid.Cid) string {
	s := make([]string, len(cids))
	for i, c := range cids {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}
