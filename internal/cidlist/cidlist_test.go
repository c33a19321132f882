package cidlist

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
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
	l, err := Open(path, ByMultihash, nil, func(err error) { reloadErr = err })
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
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), ByMultihash, nil, nil); err == nil {
		t.Error("opened a missing list")
	}
}

// TestMatching: a deny list matches every encoding of the same bytes; an
// allow list matches the CID only, so another codec over the same bytes
// (raw bytes that also parse as a dag-pb directory) is not allowed.
func TestMatching(t *testing.T) {
	raw := cid.NewCidV1(cid.Raw, blocks.NewBlock([]byte("x")).Cid().Hash())
	asDir := cid.NewCidV1(cid.DagProtobuf, raw.Hash())
	v0 := cid.NewCidV0(asDir.Hash())
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(raw.String()+"\n"+v0.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deny, err := Open(path, ByMultihash, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := Open(path, ByCID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !deny.Contains(asDir) || !deny.Contains(raw) {
		t.Error("the deny list misses a re-encoding of a listed CID")
	}
	rawOnly := filepath.Join(t.TempDir(), "raw.txt")
	if err := os.WriteFile(rawOnly, []byte(raw.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	allowRaw, err := Open(rawOnly, ByCID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if allowRaw.Contains(asDir) {
		t.Error("the allow list lets a dag-pb CID in on a raw entry's multihash")
	}
	if !allowRaw.Contains(raw) || !allow.Contains(asDir) {
		t.Error("the allow list misses a listed CID (or the CIDv1 of a listed CIDv0)")
	}
}
