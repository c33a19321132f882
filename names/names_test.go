package names

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func record(t *testing.T, key crypto.PrivKey, value string, seq uint64, eol time.Time, opts ...ipns.Option) []byte {
	t.Helper()
	p, err := path.NewPath(value)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.NewRecord(key, p, seq, eol, 5*time.Minute, opts...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestStore: a valid record is kept and resolves, with its TTL; an older
// or equal sequence, another key's record, a corrupted one and an expired
// one are refused; every encoding of a name finds the one record.
func TestStore(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	name := ipns.NameFromPeer(id)
	later := time.Now().Add(time.Hour)
	const v1 = "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	const v2 = "/ipfs/bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i/sub"

	if _, _, err := s.Resolve(context.Background(), name); err == nil {
		t.Fatal("resolved a name with no record")
	}
	if err := s.Put(name, record(t, key, v1, 2, later)); err != nil {
		t.Fatal(err)
	}
	p, ttl, err := s.Resolve(context.Background(), name)
	if err != nil || p.String() != v1 || ttl != 5*time.Minute {
		t.Fatalf("resolved %v, ttl %v, %v", p, ttl, err)
	}
	if err := s.Put(name, record(t, key, v2, 2, later)); err == nil {
		t.Error("a record of the same sequence replaced the kept one")
	}
	if err := s.Put(name, record(t, other, v2, 9, later)); err == nil {
		t.Error("another key's record was kept for the name")
	}
	bad := record(t, key, v2, 3, later)
	bad[len(bad)-5] ^= 0xff
	if err := s.Put(name, bad); err == nil {
		t.Error("a corrupted record was kept")
	}
	if err := s.Put(name, record(t, key, v2, 4, time.Now().Add(-time.Minute))); err == nil {
		t.Error("an expired record was kept")
	}
	if err := s.Put(name, record(t, key, v2, 5, later)); err != nil {
		t.Fatal(err)
	}
	asCID, err := ipns.NameFromString(name.Cid().String())
	if err != nil {
		t.Fatal(err)
	}
	if p, _, err := s.Resolve(context.Background(), asCID); err != nil || p.String() != v2 {
		t.Errorf("the name as a CID resolved %v, %v; want %s", p, err, v2)
	}
}
