package node_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/boxo/routing/http/server"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
)

// signed returns a record of a new key's name pointing at value.
func signed(t *testing.T, value string, seq uint64) (ipns.Name, []byte) {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(sk)
	p, err := path.NewPath(value)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.NewRecord(sk, p, seq, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return ipns.NameFromPeer(id), data
}

const value = "/ipfs/bafkqaddwgevxmmraojswg33smq"

// TestIPNSOverDHT: a record one node puts in the DHT is found by another
// that was never told of it; a name nobody published is not found.
func TestIPNSOverDHT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a DHT")
	}
	first := testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{DHT: "server", Bootstrap: []peer.AddrInfo{}}})
	boot := []peer.AddrInfo{first.AddrInfo()}
	publisher := testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{DHT: "server", Bootstrap: boot}})
	reader := testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{DHT: "server", Bootstrap: boot}})
	name, data := signed(t, value, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for ; ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		// The routing tables fill as the nodes bootstrap.
		if err = publisher.PutValue(ctx, string(name.RoutingKey()), data); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("putting the record: %v", err)
	}
	var got []byte
	for ; ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		if got, err = reader.GetValue(ctx, string(name.RoutingKey())); err == nil {
			break
		}
	}
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the reader got %d bytes, %v; want the record", len(got), err)
	}
	other, _ := signed(t, value, 1)
	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if _, err := reader.GetValue(short, string(other.RoutingKey())); err == nil {
		t.Error("a name never published was found")
	}
	if _, err := testutil.NewNode(t).GetValue(ctx, string(name.RoutingKey())); !errors.Is(err, node.ErrNoRouting) {
		t.Errorf("a node without routing: %v, want ErrNoRouting", err)
	}
}

// names is a delegated routing backend that keeps IPNS records.
type names struct {
	server.DelegatedRouter // unimplemented methods: never called here
	mu                     sync.Mutex
	records                map[string]*ipns.Record
}

func (n *names) GetIPNS(_ context.Context, name ipns.Name) (*ipns.Record, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.records[name.String()]; ok {
		return r, nil
	}
	return nil, errors.New("not found")
}

func (n *names) PutIPNS(_ context.Context, name ipns.Name, r *ipns.Record) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.records[name.String()] = r
	return nil
}

// TestIPNSOverDelegatedRouting: records go to and come from a delegated
// routing endpoint's /routing/v1/ipns (boxo's server).
func TestIPNSOverDelegatedRouting(t *testing.T) {
	backend := &names{records: map[string]*ipns.Record{}}
	srv := httptest.NewServer(server.Handler(backend))
	t.Cleanup(srv.Close)
	n := testutil.NewNodeConfig(t, node.Config{Routing: node.Routing{Delegated: []string{srv.URL}}})
	name, data := signed(t, value, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.PutValue(ctx, string(name.RoutingKey()), data); err != nil {
		t.Fatal(err)
	}
	if _, ok := backend.records[name.String()]; !ok {
		t.Fatal("the endpoint was not given the record")
	}
	got, err := n.GetValue(ctx, string(name.RoutingKey()))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("got %d bytes, %v; want the record back", len(got), err)
	}
}
