package caddymodule_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestIPNSThroughCaddy: a record kept with `caddy pacman name put` while
// Caddy runs makes /ipns/{name}[/path] serve what it points to, byte-exact,
// cacheable for the record's TTL; a record that does not verify is refused
// by the command; an unknown name is 404.
func TestIPNSThroughCaddy(t *testing.T) {
	data := testutil.Bytes("ipns-file", 2<<20+9)
	seeders, root := testutil.Seeders(t, 1, data)
	dir := caddyDataDir(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
		peer %s
	}
}
http://localhost:9080 {
	pacman {
		resolve ipns
		resolve ipfs
		policy open
	}
}
`, dir, strings.Join(peerAddrs(seeders), " ")), "caddyfile")

	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	name := ipns.NameFromPeer(id)
	write := func(value string, seq uint64, signer crypto.PrivKey) string {
		p, err := path.NewPath(value)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ipns.NewRecord(signer, p, seq, time.Now().Add(time.Hour), 42*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ipns.MarshalRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "r.ipns-record")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	url := "http://localhost:9080/ipns/" + name.String()
	if resp, _ := fetch(t, url); resp.StatusCode != 404 {
		t.Errorf("a name without a record: %d, want 404", resp.StatusCode)
	}
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	var out bytes.Buffer
	if err := testutil.Pacman(t, &out, "name", "put", "--data-dir", dir, "/ipns/"+name.String(), write("/ipfs/"+root.String(), 1, other)); err == nil {
		t.Error("name put kept a record signed by another key")
	}
	if err := testutil.Pacman(t, &out, "name", "put", "--data-dir", dir, "/ipns/"+id.String(), write("/ipfs/"+root.String(), 1, key)); err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, url)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET /ipns/{name}: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=42" {
		t.Errorf("Cache-Control %q, want the record's TTL, max-age=42", cc)
	}
	if p := resp.Header.Get("X-Ipfs-Path"); p != "/ipns/"+name.String() {
		t.Errorf("X-Ipfs-Path %q", p)
	}
	if resp, body := fetch(t, url, "Range", "bytes=1048570-1048579"); resp.StatusCode != 206 || !bytes.Equal(body, data[1048570:1048580]) {
		t.Errorf("a range through /ipns/: status %d", resp.StatusCode)
	}
	for _, q := range [][]string{{"?format=ipns-record"}, {"", "Accept", "application/vnd.ipfs.ipns-record"}} {
		resp, body := fetch(t, url+q[0], q[1:]...)
		rec, err := ipns.UnmarshalRecord(body)
		if resp.StatusCode != 200 || err != nil || ipns.ValidateWithName(rec, name) != nil {
			t.Fatalf("the record %v: status %d, %v", q, resp.StatusCode, err)
		}
		for h, want := range map[string]string{
			"Content-Type":        "application/vnd.ipfs.ipns-record",
			"Cache-Control":       "public, max-age=42",
			"Content-Disposition": `attachment; filename="` + name.String() + `.ipns-record"`,
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("the record %v: %s %q, want %q", q, h, got, want)
			}
		}
	}
	if resp, _ := fetch(t, "http://localhost:9080/ipfs/"+root.String()+"?format=ipns-record"); resp.StatusCode != 400 {
		t.Errorf("a record of a CID: %d, want 400", resp.StatusCode)
	}

	// A name published while Caddy runs, with a key the data dir keeps.
	out.Reset()
	if err := testutil.Pacman(t, &out, "name", "publish", "--data-dir", dir, "--key", "site", "/ipfs/"+root.String()); err != nil {
		t.Fatal(err)
	}
	published := strings.Fields(out.String())[0] // /ipns/{name} -> /ipfs/…
	if resp, body := fetch(t, "http://localhost:9080"+published); resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("GET %s: status %d, equal %v, Cache-Control %q (want the default TTL, 5m)", published, resp.StatusCode, bytes.Equal(body, data), resp.Header.Get("Cache-Control"))
	}
	if err := testutil.Pacman(t, &out, "name", "publish", "--data-dir", dir, "--key", "../x", "/ipfs/"+root.String()); err == nil {
		t.Error("a key name outside the key directory was taken")
	}
}
