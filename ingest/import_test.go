package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestImportMatchesKubo checks that Import gives the CIDs of Kubo's
// unixfs-v1-2025 profile. The reference CIDs were produced by Kubo 0.42.0,
// built from the Go module proxy (go mod download github.com/ipfs/kubo@v0.42.0,
// go build ./cmd/ipfs), in a repo made with
// `ipfs init --profile=test,unixfs-v1-2025`, by
// `ipfs add -Q --only-hash FILE` over files holding exactly the bytes
// testutil.Bytes("pacman-cid-fixture", size) returns.
func TestImportMatchesKubo(t *testing.T) {
	cases := []struct {
		name string
		size int
		want string
	}{
		{"empty file", 0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"one byte", 1, "bafkreib4xwxwnm65fmlupcfc6f7zhc2s3wutukuxiqgovumtglf7vs5hza"},
		{"exactly one chunk", 1 << 20, "bafkreielfb5zb53eaedkjhng2cyyvwboppnqzfo75op4y7ggijstg2ic7u"},
		{"one chunk and a byte", 1<<20 + 1, "bafybeiaqiriks4qq3zvpulgwttqztkjiyj57tuzludnzkh2cjg5gwx4jgy"},
		// 1026 chunks: more than one node's 1024 links, so a two-level tree.
		{"two-level tree", 1025<<20 + 13305, "bafybeibzjgo4p7gibyzphjlnbel63bg3vuld5fstylfx4idlyj7rltwniy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size > 64<<20 && testing.Short() {
				t.Skip("imports 1 GiB")
			}
			data := testutil.Bytes("pacman-cid-fixture", tc.size)
			got, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("CID %s, Kubo gives %s", got, tc.want)
			}
		})
	}
}

func TestImportProgress(t *testing.T) {
	data := testutil.Bytes("progress", 3<<20+5)
	var last int64
	calls := 0
	_, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(data), ingest.WithProgress(func(n int64) {
		if n < last {
			t.Errorf("progress went back from %d to %d", last, n)
		}
		last = n
		calls++
	}))
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) || calls < 4 {
		t.Errorf("progress ended at %d after %d calls, want %d", last, calls, len(data))
	}
}

func TestImportRejectsBadSettings(t *testing.T) {
	for _, opt := range []ingest.Option{ingest.WithChunkSize(0), ingest.WithChunkSize(4 << 20), ingest.WithMaxLinks(1)} {
		if _, err := ingest.Import(context.Background(), testutil.DiscardDAG{}, bytes.NewReader(nil), opt); err == nil {
			t.Error("Import accepted an invalid option")
		}
	}
}

// TestImportDirMatchesKubo checks a directory tree against
// `ipfs add -r -Q --only-hash DIR` of Kubo 0.42.0 (unixfs-v1-2025 profile,
// set up as in TestImportMatchesKubo) over the same tree.
func TestImportDirMatchesKubo(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{"a.bin": 3_000_000, "sub/b.txt": 10, "index.html": 0}
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, testutil.Bytes("pacman-cid-fixture", size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, _, ds := testutil.MemStore()
	got, err := ingest.ImportDir(context.Background(), ds, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bafybeieh2fq3emvj22ycwdzis34qkaocdkqpahi7l4xmua4tmxh5aittsa"; got.String() != want {
		t.Errorf("CID %s, Kubo gives %s", got, want)
	}
}
