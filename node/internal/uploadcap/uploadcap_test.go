package uploadcap

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCapsAreKeyed: a peer that used its burst waits, another peer does
// not, unless the two share an address with a cap of its own; no caps at
// all is nil and waits for nothing.
func TestCapsAreKeyed(t *testing.T) {
	const burst = 256 << 10 // a tenth of a second at 1 MB/s is less: the floor
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond) // a burst more needs 250 ms
	}
	if _, err := New(-1, 0, 0, nil); err == nil {
		t.Error("a negative cap was accepted")
	}
	none, err := New(0, 0, 0, nil)
	if err != nil || none != nil {
		t.Fatalf("no caps: %v, %v; want nil", none, err)
	}
	if err := none.Wait(context.Background(), "a", 1<<30); err != nil {
		t.Fatal(err)
	}

	sameAddr := func(peer.ID) string { return "10.0.0.1" }
	perPeer, err := New(0, 1e6, 0, sameAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := short()
	defer cancel()
	if err := perPeer.Wait(ctx, "a", burst); err != nil {
		t.Fatalf("first burst: %v", err)
	}
	if err := perPeer.Wait(ctx, "a", burst); err == nil {
		t.Error("a's second burst went at once")
	}
	ctx2, cancel2 := short()
	defer cancel2()
	if err := perPeer.Wait(ctx2, "b", burst); err != nil {
		t.Errorf("b waited on a's cap: %v", err)
	}

	perAddr, err := New(0, 0, 1e6, sameAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx3, cancel3 := short()
	defer cancel3()
	if err := perAddr.Wait(ctx3, "a", burst); err != nil {
		t.Fatalf("first burst: %v", err)
	}
	if err := perAddr.Wait(ctx3, "b", burst); err == nil {
		t.Error("b, at a's address, went at once past the address's cap")
	}
}
