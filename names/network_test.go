package names

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// table is routing in memory; down makes every call fail.
type table struct {
	mu         sync.Mutex
	values     map[string][]byte
	gets, puts int
	down       bool
}

func (tb *table) GetValue(_ context.Context, key string) ([]byte, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.gets++
	v, ok := tb.values[key]
	if tb.down || !ok {
		return nil, errors.New("routing: not found")
	}
	return v, nil
}

func (tb *table) PutValue(_ context.Context, key string, v []byte) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.puts++
	if tb.down {
		return errors.New("routing: down")
	}
	tb.values[key] = v
	return nil
}

// TestNetwork: a name the store lacks is looked up in routing, verified
// and kept; a record confirmed within its TTL needs no lookup; a stale
// one is replaced by a newer one from routing, and still serves when
// routing fails; a forged record from routing is refused.
func TestNetwork(t *testing.T) {
	ctx := context.Background()
	store, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &table{values: map[string][]byte{}}
	n := &Network{Store: store, Routing: rt}
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	name := ipns.NameFromPeer(id)
	const v1, v2 = "/ipfs/bafkqaddwgevxmmraojswg33smq", "/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi"

	if _, _, err := n.Resolve(ctx, name); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("a name nobody knows: %v, want ErrNoRecord", err)
	}
	rt.values[string(name.RoutingKey())] = record(t, key, v1, 1, time.Now().Add(time.Hour))
	if p, ttl, err := n.Resolve(ctx, name); err != nil || p.String() != v1 || ttl != 5*time.Minute {
		t.Fatalf("from routing: %v %v %v", p, ttl, err)
	}
	if p, _, err := store.Resolve(ctx, name); err != nil || p.String() != v1 {
		t.Errorf("the record found was not kept: %v %v", p, err)
	}
	gets := rt.gets
	if _, _, err := n.Resolve(ctx, name); err != nil || rt.gets != gets {
		t.Errorf("a fresh record was looked up again (%d lookups, %v)", rt.gets-gets, err)
	}

	// Stale: older than its TTL.
	stale := func() {
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(store.file(name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	stale()
	rt.values[string(name.RoutingKey())] = record(t, key, v2, 2, time.Now().Add(time.Hour))
	if p, _, err := n.Resolve(ctx, name); err != nil || p.String() != v2 {
		t.Errorf("a stale record with a newer one in routing: %v %v, want %s", p, err, v2)
	}
	stale()
	rt.down = true
	if p, _, err := n.Resolve(ctx, name); err != nil || p.String() != v2 {
		t.Errorf("routing down: %v %v, want the record kept", p, err)
	}
	rt.down = false

	// Forged: another key's record under this name.
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	oid, _ := peer.IDFromPrivateKey(other)
	victim := ipns.NameFromPeer(oid)
	rt.values[string(victim.RoutingKey())] = record(t, key, v1, 9, time.Now().Add(time.Hour))
	if _, _, err := n.Resolve(ctx, victim); err == nil {
		t.Error("a record signed by another key was taken")
	}
	if _, err := store.Raw(ctx, victim); !errors.Is(err, ErrNoRecord) {
		t.Errorf("the forged record was kept: %v", err)
	}
}

// TestPublishAndAnnounce: a key is made once and kept; each publish signs
// the next sequence; records changed since a pass are announced, and all
// of them for a full pass.
func TestPublishAndAnnounce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys := Keys{Dir: dir + "/keys"}
	sk, err := keys.Key("site")
	if err != nil {
		t.Fatal(err)
	}
	again, err := keys.Key("site")
	if err != nil || !sk.Equals(again) {
		t.Fatalf("the key was not kept: %v", err)
	}
	if _, err := keys.Key("../escape"); err == nil {
		t.Error("a key name with a path was taken")
	}
	store, err := Open(dir + "/ipns")
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := path.NewPath("/ipfs/bafkqaddwgevxmmraojswg33smq")
	p2, _ := path.NewPath("/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi")
	name, err := Publish(store, sk, p1, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(store, sk, p2, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := rec.Sequence(); seq != 1 {
		t.Errorf("second publish has sequence %d, want 1", seq)
	}
	if v, _ := rec.Value(); v.String() != p2.String() {
		t.Errorf("the record points at %s, want %s", v, p2)
	}

	rt := &table{values: map[string][]byte{}}
	n := &Network{Store: store, Routing: rt}
	if told, err := n.Announce(ctx, false); err != nil || told != 1 || rt.values[string(name.RoutingKey())] == nil {
		t.Fatalf("a first pass told %d (%v), want the one record", told, err)
	}
	if told, _ := n.Announce(ctx, false); told != 0 {
		t.Errorf("a pass with nothing changed told %d", told)
	}
	// Two publishes at once, right after a pass: both are told on the
	// next, however coarse the file system's clock.
	other, _ := keys.Key("other")
	if _, err := Publish(store, other, p1, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(store, sk, p1, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	if told, _ := n.Announce(ctx, false); told != 2 {
		t.Errorf("after two more publishes a pass told %d, want 2", told)
	}
	if told, _ := n.Announce(ctx, true); told != 2 {
		t.Errorf("a full pass told %d, want both records", told)
	}
	rt.down = true
	if _, err := Publish(store, other, p2, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Announce(ctx, false); err == nil {
		t.Error("routing down: no error from announcing")
	}
	rt.down = false
	if told, err := n.Announce(ctx, false); err != nil || told != 1 {
		t.Errorf("routing back: a pass told %d (%v), want the record it missed", told, err)
	}
}
