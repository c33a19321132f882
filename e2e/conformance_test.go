package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// conformanceFixtures is where the gateway conformance suite's fixtures
// are, next to the checkout.
const conformanceFixtures = "../../shared/fixtures/gateway-conformance"

// TestConformanceSetup runs the documented setup for the IPFS gateway
// conformance suite — conformance/load-fixtures, then Caddy with
// conformance/Caddyfile — over the suite's own fixtures, and checks the
// ways the suite reaches it: a path gateway on 127.0.0.1, a subdomain
// gateway on localhost, IPNS records kept and broken ones refused, and
// DNSLink sites from IPFS_NS_MAP.
func TestConformanceSetup(t *testing.T) {
	notShort(t)
	if _, err := os.Stat(conformanceFixtures); err != nil {
		// They live beside the checkout, not in it (the suite's own
		// repository has them too).
		t.Skipf("the conformance fixtures are not beside the checkout: %v", err)
	}
	data := filepath.Join(t.TempDir(), "data")
	out := run(t, 2*time.Minute, "../conformance/load-fixtures", caddyBin, conformanceFixtures, data)
	cars, _ := filepath.Glob(filepath.Join(conformanceFixtures, "*.car"))
	records, _ := filepath.Glob(filepath.Join(conformanceFixtures, "*.ipns-record"))
	var kept, refused int
	if !strings.Contains(out, fmt.Sprintf("imported %d CAR files", len(cars))) {
		t.Errorf("load-fixtures did not import the %d CAR files:\n%s", len(cars), out)
	}
	if _, err := fmt.Sscanf(out[strings.Index(out, "kept "):], "kept %d IPNS records, refused %d", &kept, &refused); err != nil || kept+refused != len(records) || kept == 0 {
		t.Errorf("load-fixtures kept %d and refused %d of %d records (%v):\n%s", kept, refused, len(records), err, out)
	}
	for _, r := range records {
		// A broken V1 signature does not count where a V2 one verifies
		// (the IPNS record spec); every other broken record is refused.
		if strings.Contains(r, "broken") && !strings.Contains(r, "broken-signature-v1") && !strings.Contains(out, "refused "+filepath.Base(r)) {
			t.Errorf("a broken record was kept: %s", filepath.Base(r))
		}
	}

	nsMap, err := os.ReadFile(filepath.Join(conformanceFixtures, "dnslinks.IPFS_NS_MAP"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startCaddy(t, []string{"PACMAN_CONFORMANCE_DATA=" + data, fmt.Sprintf("PACMAN_CONFORMANCE_PORT=%d", port), "IPFS_NS_MAP=" + strings.TrimSpace(string(nsMap))},
		"run", "--config", "../conformance/Caddyfile")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/ipfs/")
	gw := fmt.Sprintf("localhost:%d", port)
	get := func(host, target string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	// A kept record: its name resolves on the path gateway, its origin on
	// the subdomain gateway serves the same bytes, and the record itself
	// is served as kept.
	const name = "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f"                            // a V2 record of a file
	target := strings.Fields(caddyCmd(t, "pacman", "name", "resolve", "--data-dir", data, "/ipns/"+name))[0] // /ipfs/… (ttl …)
	fromPath, want := get("127.0.0.1", target)
	if fromPath.StatusCode != 200 {
		t.Fatalf("%s on the path gateway: %d %s", target, fromPath.StatusCode, want)
	}
	if resp, body := get(name+".ipns."+gw, "/"); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("the name's subdomain origin: %d, %d bytes; want the %d bytes of %s", resp.StatusCode, len(body), len(want), target)
	}
	recFiles, _ := filepath.Glob(filepath.Join(conformanceFixtures, name+"_*.ipns-record"))
	rec, err := os.ReadFile(recFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get("127.0.0.1", "/ipns/"+name+"?format=ipns-record"); resp.StatusCode != 200 || !bytes.Equal(body, rec) {
		t.Errorf("?format=ipns-record: %d, equal to the kept record %v", resp.StatusCode, bytes.Equal(body, rec))
	}
	// A path request on the subdomain gateway's host goes to the origin.
	cid := strings.TrimPrefix(target, "/ipfs/")
	if resp, _ := get(gw, target); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "http://"+cid) {
		t.Errorf("%s on %s: %d to %q, want 301 to its origin", target, gw, resp.StatusCode, resp.Header.Get("Location"))
	}
	// A DNSLink site from IPFS_NS_MAP, by its own host.
	if resp, body := get("dnslink-subpath.example.org", "/"); resp.StatusCode != 200 || resp.Header.Get("X-Ipfs-Path") != "/ipns/dnslink-subpath.example.org/" {
		t.Errorf("a DNSLink host: %d, X-Ipfs-Path %q: %s", resp.StatusCode, resp.Header.Get("X-Ipfs-Path"), body)
	}
}
