package hedge

import (
	"context"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// ctxGetter remembers the context its session was opened with.
type ctxGetter struct{ ctx context.Context }

func (ctxGetter) GetBlock(context.Context, cid.Cid) (blocks.Block, error) { return nil, nil }

func TestSessionCache(t *testing.T) {
	var opened []context.Context
	c := newSessionCache(func(ctx context.Context) Getter {
		opened = append(opened, ctx)
		return ctxGetter{ctx}
	}, 2, 50*time.Millisecond)
	a := blocks.NewBlock([]byte("a")).Cid()
	b := blocks.NewBlock([]byte("b")).Cid()
	d := blocks.NewBlock([]byte("d")).Cid()

	use := func(root cid.Cid) { c.acquire(root).release() }
	s1, s2 := c.acquire(a), c.acquire(a)
	if s1 != s2 || len(opened) != 1 {
		t.Fatalf("two requests for one root opened %d sessions, want 1", len(opened))
	}
	use(b)
	use(d) // over the size of 2: a, the least recently used, leaves the cache
	if opened[0].Err() != nil || len(opened) != 3 {
		t.Fatalf("a session in use was ended (%v), %d sessions", opened[0].Err(), len(opened))
	}
	s1.release()
	s2.release()
	if opened[0].Err() == nil {
		t.Error("the evicted session outlived its last user")
	}
	time.Sleep(60 * time.Millisecond)
	held := c.acquire(a) // passing by ends the idle ones
	if opened[1].Err() == nil || opened[2].Err() == nil {
		t.Error("idle sessions were not ended")
	}
	// The timer ends idle sessions with no request passing by.
	use(b)
	deadline := time.Now().Add(time.Second)
	for opened[4].Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if opened[4].Err() == nil {
		t.Error("the idle sweep did not end an unused session")
	}
	c.close()
	if opened[3].Err() != nil {
		t.Error("close ended a session in use")
	}
	held.release()
	if opened[3].Err() == nil {
		t.Error("the last release after close left the session open")
	}
}
