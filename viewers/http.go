package viewers

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/multiformats/go-multiaddr"
)

// script is the browser's side, bundled from ./js with the npm packages it
// uses; licences lists those packages and their licences.
var (
	//go:embed peer.js
	script []byte
	//go:embed peer.LICENSES.txt
	licences []byte
	//go:embed peer-sw.js
	worker []byte
)

// Paths the edge serves to pages.
const (
	ScriptPath   = "/pacman/peer.js"
	LicencesPath = "/pacman/peer.LICENSES.txt"
	WorkerPath   = "/pacman/peer-sw.js"
	InfoPath     = "/pacman/viewers.json"
)

// Info is what a page's script learns of the edge: who it is and where a
// browser reaches it.
type Info struct {
	Peer string `json:"peer"`
	// Addrs are the edge's WebTransport addresses, each with its
	// certificate hashes and /p2p/{peer}.
	Addrs []string `json:"addrs"`
}

// Info returns the edge's identity and WebTransport addresses.
func (s *Service) Info() Info {
	id := s.host.ID()
	info := Info{Peer: id.String(), Addrs: []string{}}
	for _, a := range s.host.Addrs() {
		if !isWebTransport(a) {
			continue
		}
		info.Addrs = append(info.Addrs, a.String()+"/p2p/"+id.String())
	}
	return info
}

// isWebTransport reports whether a is a WebTransport address a browser
// can dial: one with its certificate hashes.
func isWebTransport(a multiaddr.Multiaddr) bool {
	_, errWT := a.ValueForProtocol(multiaddr.P_WEBTRANSPORT)
	_, errHash := a.ValueForProtocol(multiaddr.P_CERTHASH)
	return errWT == nil && errHash == nil
}

// ServeHTTP serves the script, its service worker, its licences and the
// edge's Info; other paths are not found.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == ScriptPath:
		serveStatic(w, r, "text/javascript; charset=utf-8", script, s.tags.script)
	case r.URL.Path == WorkerPath:
		// Registered from /pacman/, it may control the site's pages.
		w.Header().Set("Service-Worker-Allowed", "/")
		serveStatic(w, r, "text/javascript; charset=utf-8", worker, s.tags.worker)
	case r.URL.Path == LicencesPath:
		serveStatic(w, r, "text/plain; charset=utf-8", licences, s.tags.licences)
	case r.URL.Path == InfoPath:
		w.Header().Set("Content-Type", "application/json")
		// The addresses change with the certificates (every few days).
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s.Info())
	default:
		http.Error(w, "no such viewer resource; the script is at "+ScriptPath, http.StatusNotFound)
	}
}

// etags are the embedded files' entity tags, the hashes of their bytes.
type etags struct{ script, licences, worker string }

func newEtags() etags {
	tag := func(b []byte) string { return fmt.Sprintf(`"%x"`, sha256.Sum256(b)) }
	return etags{script: tag(script), licences: tag(licences), worker: tag(worker)}
}

// serveStatic serves an embedded file, revalidated by its entity tag
// (http.ServeContent answers If-None-Match and Range).
func serveStatic(w http.ResponseWriter, r *http.Request, ctype string, body []byte, etag string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Etag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
