package live

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"go.uber.org/zap"
)

type nopObserver struct{}

func (nopObserver) Held(string, time.Duration) {}
func (nopObserver) Dropped(string)             {}

// TestRelayLeavesIdleStreams: a stream followed because it was announced
// is left once it has had no announcement for idleAfter; one the config
// lists (Join) is kept, and one still announced is kept.
func TestRelayLeavesIdleStreams(t *testing.T) {
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	r, err := NewRelay(h, h.Peerstore().PrivKey(h.ID()), func(context.Context, cid.Cid, int) error { return nil }, nopObserver{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	for _, s := range []string{"idle", "busy"} {
		if _, _, err := r.follow(s, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Join("configured"); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(idleAfter + time.Second)
	a := segmentAt(0, later)
	a.Stream = "busy"
	if err := r.streams.Accept(a, Signed{}, later); err != nil {
		t.Fatal(err)
	}
	r.leaveIdle(later)
	if got := r.Following(); got != 2 {
		t.Fatalf("following %d streams after the sweep, want 2 (busy, configured)", got)
	}
	r.mu.Lock()
	_, idle := r.topics["idle"]
	r.mu.Unlock()
	if idle {
		t.Error("the idle stream is still followed")
	}
	// Left, it can be followed again.
	if _, _, err := r.follow("idle", false); err != nil {
		t.Errorf("following the idle stream again: %v", err)
	}
}
