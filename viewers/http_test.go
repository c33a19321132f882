package viewers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
)

// TestServesScriptAndAddresses: the script and its licences are served
// with an entity tag that revalidates, and viewers.json names the edge's
// WebTransport addresses with their certificate hashes and peer ID.
func TestServesScriptAndAddresses(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	s, err := Start(h, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	get := func(method, path string, hdr http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for k, v := range hdr {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	js := get(http.MethodGet, ScriptPath, nil)
	if js.Code != http.StatusOK || !bytes.Equal(js.Body.Bytes(), script) || !strings.HasPrefix(js.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET %s: %d %q, %d bytes", ScriptPath, js.Code, js.Header().Get("Content-Type"), js.Body.Len())
	}
	tag := js.Header().Get("Etag")
	if again := get(http.MethodGet, ScriptPath, http.Header{"If-None-Match": {tag}}); tag == "" || again.Code != http.StatusNotModified {
		t.Fatalf("revalidating with %q: %d; want 304", tag, again.Code)
	}
	if lic := get(http.MethodGet, LicencesPath, nil); lic.Code != http.StatusOK || !strings.Contains(lic.Body.String(), "@libp2p/webrtc@") {
		t.Fatalf("GET %s: %d, without the bundled packages", LicencesPath, lic.Code)
	}
	if sw := get(http.MethodGet, WorkerPath, nil); sw.Code != http.StatusOK || sw.Header().Get("Service-Worker-Allowed") != "/" ||
		!bytes.Equal(sw.Body.Bytes(), worker) {
		t.Fatalf("GET %s: %d, Service-Worker-Allowed %q", WorkerPath, sw.Code, sw.Header().Get("Service-Worker-Allowed"))
	}
	info := get(http.MethodGet, InfoPath, nil)
	var got Info
	if err := json.Unmarshal(info.Body.Bytes(), &got); err != nil || info.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET %s: %v, Cache-Control %q", InfoPath, err, info.Header().Get("Cache-Control"))
	}
	if got.Peer != h.ID().String() || len(got.Addrs) != 1 || !strings.Contains(got.Addrs[0], "/webtransport/certhash/") ||
		!strings.HasSuffix(got.Addrs[0], "/p2p/"+h.ID().String()) {
		t.Fatalf("viewers.json = %+v; want the one WebTransport address, with certificate hashes and /p2p/%s", got, h.ID())
	}
	if post := get(http.MethodPost, ScriptPath, nil); post.Code != http.StatusMethodNotAllowed || post.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q", post.Code, post.Header().Get("Allow"))
	}
	if other := get(http.MethodGet, "/pacman/other", nil); other.Code != http.StatusNotFound {
		t.Fatalf("GET /pacman/other: %d", other.Code)
	}
}
