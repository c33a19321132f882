package gateway

import (
	"context"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/chunker"
)

// ctxGetter remembers the context its session was opened with.
type ctxGetter struct{ ctx context.Context }

func (ctxGetter) GetBlock(context.Context, cid.Cid) (blocks.Block, error) { return nil, nil }

func TestSessionCache(t *testing.T) {
	var opened []context.Context
	c := newSessionCache(SessionsFunc(func(ctx context.Context) chunker.BlockGetter {
		opened = append(opened, ctx)
		return ctxGetter{ctx}
	}), 2, 50*time.Millisecond)
	a := blocks.NewBlock([]byte("a")).Cid()
	b := blocks.NewBlock([]byte("b")).Cid()
	d := blocks.NewBlock([]byte("d")).Cid()

	if c.get(a) != c.get(a) || len(opened) != 1 {
		t.Fatalf("two requests for one root opened %d sessions, want 1", len(opened))
	}
	c.get(b)
	c.get(d) // over the size of 2: a, the least recently used, ends
	if opened[0].Err() == nil || len(opened) != 3 {
		t.Errorf("evicted session still open (%v), %d sessions", opened[0].Err(), len(opened))
	}
	time.Sleep(60 * time.Millisecond)
	c.get(a) // passing by ends the idle ones
	if opened[1].Err() == nil || opened[2].Err() == nil {
		t.Error("idle sessions were not ended")
	}
	c.close()
	if opened[3].Err() == nil {
		t.Error("close left a session open")
	}
}
