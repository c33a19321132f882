package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
)

// names is a resolver of /ipns/{name}[/path] that serves root for every
// name, and remembers the names it was asked for.
type names struct {
	root  cid.Cid
	mu    sync.Mutex
	asked []string
}

func (n *names) Resolve(r *http.Request) (gateway.Content, bool, error) {
	name, segs, err := contentpath.ParseName(r.URL, "ipns")
	if err != nil {
		return gateway.Content{}, false, nil
	}
	n.mu.Lock()
	n.asked = append(n.asked, name)
	n.mu.Unlock()
	return gateway.Content{Root: n.root, Segments: segs}, true, nil
}

func (n *names) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.asked) == 0 {
		return ""
	}
	return n.asked[len(n.asked)-1]
}

// ask sends a request with Host host and returns the response, not
// following redirects.
func ask(t *testing.T, base, host, target string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestSubdomainGateway follows the subdomain gateway spec: path requests
// on the gateway's host redirect to an origin per CID or name, in its
// canonical DNS-safe form and keeping the rest of the URL; each origin
// serves its content at its root; other hosts stay path gateways.
func TestSubdomainGateway(t *testing.T) {
	ns := &names{}
	f := newFixture(t, gateway.Config{
		Subdomains: []string{"gw.test"},
		Resolvers:  []gateway.Resolver{ns, gateway.IPFSPaths{}},
	})
	ns.root = f.dir
	base := strings.TrimSuffix(f.url, "/ipfs/"+f.dir.String())
	u, _ := url.Parse(base)
	port := ":" + u.Port()
	gw := "gw.test" + port
	dir := f.dir.String() // CIDv1, base32
	v0 := cid.NewCidV0(f.dir.Hash()).String()

	redirects := []struct {
		name, host, target string
		hdr                []string
		want               string
	}{
		{"CIDv0 becomes CIDv1 in base32; the path and query stay as sent", gw, "/ipfs/" + v0 + "/a%252Cb/Espa%C3%B1a.txt?x=1",
			nil, "http://" + dir + ".ipfs." + gw + "/a%252Cb/Espa%C3%B1a.txt?x=1"},
		{"a bare CID", gw, "/ipfs/" + dir, nil, "http://" + dir + ".ipfs." + gw + "/"},
		{"behind a TLS proxy", gw, "/ipfs/" + dir + "/", []string{"X-Forwarded-Proto", "https"}, "https://" + dir + ".ipfs." + gw + "/"},
		{"the proxy's host", "other.test", "/ipfs/" + dir + "/", []string{"X-Forwarded-Host", gw}, "http://" + dir + ".ipfs." + gw + "/"},
		{"a DNSLink name is inlined into one label", gw, "/ipns/en.wiki-pedia.org/wiki/", nil, "http://en-wiki--pedia-org.ipns." + gw + "/wiki/"},
		{"a registered ipfs:// handler", gw, "/ipfs/?uri=" + url.QueryEscape("ipfs://"+v0+"/wiki/A.html"), nil, "/ipfs/" + v0 + "/wiki/A.html"},
		{"a dag-pb CID of a key becomes a libp2p-key CID", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ipns." + gw, "/x",
			nil, "http://" + mustCID(t, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", cid.Libp2pKey, multibase.Base36) + ".ipns." + gw + "/x"},
	}
	key := ed25519Key(t)
	id, err := peer.IDFromPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyCID, _ := peer.ToCid(id).StringOfBase(multibase.Base36)
	redirects = append(redirects, struct {
		name, host, target string
		hdr                []string
		want               string
	}{"a peer ID becomes a base36 libp2p-key CID", gw, "/ipns/" + id.String(), nil, "http://" + keyCID + ".ipns." + gw + "/"})
	for _, c := range redirects {
		resp, body := ask(t, base, c.host, c.target, c.hdr...)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != c.want {
			t.Errorf("%s: %d to %q (%s), want 301 to %q", c.name, resp.StatusCode, resp.Header.Get("Location"), bytes.TrimSpace(body), c.want)
		}
	}

	// Each origin serves its content at its root.
	origin := dir + ".ipfs." + gw
	resp, body := ask(t, base, origin, "/video.mp4", "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.video[100:200]) {
		t.Errorf("a range at the origin: %d, equal %v", resp.StatusCode, bytes.Equal(body, f.video[100:200]))
	}
	wantHeader(t, resp, "X-Ipfs-Path", "/ipfs/"+dir+"/video.mp4")
	if resp, _ := ask(t, base, origin, "/page"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/page/" {
		t.Errorf("a directory without its slash: %d to %q, want 301 to /page/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := ask(t, base, origin, "/bare/"); resp.StatusCode != 200 || !strings.Contains(string(body), `href="/bare/x"`) {
		t.Errorf("a listing at the origin links within it: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := ask(t, base, origin, "/ipfs/"+dir+"/video.mp4"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/ipfs/ at an origin is a path inside its content: %d, want 404", resp.StatusCode)
	}
	if resp, body := ask(t, base, "en-wiki--pedia-org.ipns."+gw, "/empty.txt"); resp.StatusCode != 200 || len(body) != 0 || ns.last() != "en.wiki-pedia.org" {
		t.Errorf("an inlined DNSLink origin: %d, resolved as %q", resp.StatusCode, ns.last())
	}
	if resp, _ := ask(t, base, "en.wiki-pedia.org.ipns."+gw, "/empty.txt"); resp.StatusCode != 200 || ns.last() != "en.wiki-pedia.org" {
		t.Errorf("a DNSLink origin not inlined: %d, resolved as %q", resp.StatusCode, ns.last())
	}
	if resp, body := ask(t, base, "127.0.0.1"+port, "/ipfs/"+dir+"/video.mp4"); resp.StatusCode != 200 || !bytes.Equal(body, f.video) {
		t.Errorf("another host is a path gateway: %d", resp.StatusCode)
	}
	if resp, _ := ask(t, base, "127.0.0.1"+port, "/ipns/"+id.String()+"/root2/?x=1"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ipns/"+keyCID+"/root2/?x=1" {
		t.Errorf("a peer ID on a path gateway: %d to %q, want 302 to its base36 libp2p-key CID", resp.StatusCode, resp.Header.Get("Location"))
	}

	// What cannot be an origin is refused with the reason.
	long := cid.NewCidV1(cid.Raw, mustHash(t, []byte("long"), mh.SHA2_512)).String()
	for _, c := range []struct{ host, target, want string }{
		{gw, "/ipfs/" + long, "CID incompatible with DNS label length limit of 63"},
		{long + ".ipfs." + gw, "/", "CID incompatible with DNS label length limit of 63"},
		{"notacid.ipfs." + gw, "/", `invalid path "/ipfs/notacid"`},
		{gw, "/ipfs/QmInvalidCID", `invalid path "/ipfs/QmInvalidCID"`},
		{gw, "/ipns/?uri=" + url.QueryEscape("https://example.org/"), "is not an ipfs:// or ipns:// URL"},
	} {
		resp, body := ask(t, base, c.host, c.target)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), c.want) {
			t.Errorf("%s%s: %d %q, want 400 saying %q", c.host, c.target, resp.StatusCode, body, c.want)
		}
	}

	// A proxy that tunnels with CONNECT: the tunnel leads back here, and
	// the requests in it name their origin by Host.
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host, u.Host)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT to the gateway itself: %v %v", resp, err)
	}
	fmt.Fprintf(conn, "GET /video.mp4 HTTP/1.1\r\nHost: %s\r\nRange: bytes=0-9\r\n\r\n", origin)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.video[:10]) {
		t.Errorf("a request through the tunnel: %d, %q", resp.StatusCode, body)
	}
	fmt.Fprintf(conn, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT elsewhere: %v %v, want 405: this is not an open proxy", resp, err)
	}
}

// TestSubdomainHostsChecked: a subdomain host must be a bare DNS name.
func TestSubdomainHostsChecked(t *testing.T) {
	for _, h := range []string{"", "gw.test:8080", "http://gw.test", "a..b", strings.Repeat("x", 64) + ".test"} {
		if _, err := gateway.NewHandler(gateway.Config{Subdomains: []string{h}, Resolvers: []gateway.Resolver{gateway.IPFSPaths{}}, Local: emptyStore()}); err == nil {
			t.Errorf("subdomain host %q accepted", h)
		}
	}
}

func mustCID(t *testing.T, s string, codec uint64, base multibase.Encoding) string {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cid.NewCidV1(codec, c.Hash()).StringOfBase(base)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustHash(t *testing.T, data []byte, code uint64) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(data, code, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ed25519Key(t *testing.T) crypto.PubKey {
	t.Helper()
	pub, err := crypto.UnmarshalEd25519PublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
