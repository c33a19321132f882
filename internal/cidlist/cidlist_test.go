package cidlist

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

func TestListReloads(t *testing.T) {
	a, _ := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	b, _ := cid.Decode("bafkreib4xwxwnm65fmlupcfc6f7zhc2s3wutukuxiqgovumtglf7vs5hza")
	path := filepath.Join(t.TempDir(), "deny.txt")
	if err := os.WriteFile(path, []byte("# blocked\n"+a.String()+"  # phishing\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var reloadErr error
	l, err := Open(path, func(err error) { reloadErr = err })
	if err != nil {
		t.Fatal(err)
	}
	if !l.Contains(a) || l.Contains(b) || l.Len() != 1 {
		t.Fatalf("after load: contains a=%v b=%v, len %d", l.Contains(a), l.Contains(b), l.Len())
	}
	// The same bytes as CIDv0 match too.
	if v0 := cid.NewCidV0(a.Hash()); !l.Contains(v0) {
		t.Error("CIDv0 of a listed multihash does not match")
	}

	if err := os.WriteFile(path, []byte(b.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.checked = time.Time{} // as if a second passed
	if l.Contains(a) || !l.Contains(b) {
		t.Error("the list did not reload after the file changed")
	}

	if err := os.WriteFile(path, []byte("not-a-cid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.checked = time.Time{}
	if !l.Contains(b) || reloadErr == nil {
		t.Errorf("a broken file must keep the old list and report: contains b=%v, error %v", l.Contains(b), reloadErr)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("opened a missing list")
	}
}
