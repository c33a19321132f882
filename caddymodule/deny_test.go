package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// TestDenyListSeeding: the node never seeds to peers a block of a file a
// deny list names, not its root nor its leaves, while it seeds the rest.
func TestDenyListSeeding(t *testing.T) {
	ctx := context.Background()
	dataDir := caddyDataDir(t)
	n, err := node.New(ctx, node.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ingest.Import(ctx, n.DAG(), bytes.NewReader(testutil.Bytes("secret", 3<<20)))
	if err != nil {
		t.Fatal(err)
	}
	public, err := ingest.Import(ctx, n.DAG(), bytes.NewReader(testutil.Bytes("public", 3<<20)))
	if err != nil {
		t.Fatal(err)
	}
	leafOf := func(root cid.Cid) cid.Cid {
		nd, err := n.DAG().Get(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		return nd.Links()[1].Cid
	}
	secretLeaf, publicLeaf := leafOf(secret), leafOf(public)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	denyFile := filepath.Join(t.TempDir(), "deny.txt")
	if err := os.WriteFile(denyFile, []byte(secret.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
	}
}
http://localhost:9080 {
	pacman {
		policy local
		policy deny_list %s
	}
}
`, dataDir, denyFile), "caddyfile")
	edge := caddymodule.RunningNode(dataDir)
	if edge == nil {
		t.Fatal("no node running")
	}
	peer := testutil.NewNode(t, edge.AddrInfo())
	get := func(c cid.Cid) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := peer.NewSession(ctx).GetBlock(ctx, c)
		return err
	}
	if err := get(publicLeaf); err != nil {
		t.Fatalf("a peer could not fetch a block the edge seeds: %v", err)
	}
	for name, c := range map[string]cid.Cid{"root": secret, "leaf": secretLeaf} {
		if err := get(c); err == nil {
			t.Errorf("a peer fetched the denied file's %s over bitswap", name)
		}
	}
}
