package fleet

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestWordsOnNamesAreSignedByMembers: a member's word on a name is taken
// only when a member signed it, for that name, unaltered. A word told to
// the fleet reaches the members' learners; one signed by an edge outside
// the fleet is refused even when a member passes it on.
func TestWordsOnNamesAreSignedByMembers(t *testing.T) {
	a, b, c := testutil.NewNode(t), testutil.NewNode(t), testutil.NewNode(t)
	newFleet := func(h host.Host, members ...peer.ID) *Fleet {
		t.Helper()
		f, err := New(Config{Host: h, Members: members})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		return f
	}
	fa := newFleet(a.Host(), b.Host().ID())
	fb := newFleet(b.Host(), a.Host().ID())
	fc := newFleet(c.Host(), a.Host().ID(), b.Host().ID()) // c counts a and b as members; they do not count c
	const name = "https://origin/v/film.mp4"
	answer := []byte(`{"root":"bafy…"}`)

	byB, err := fb.seal(name, answer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fa.open(byB, name); err != nil || !bytes.Equal(got, answer) {
		t.Errorf("a member's word: %q, %v", got, err)
	}
	if _, err := fa.open(byB, "https://origin/v/other.mp4"); err == nil {
		t.Error("a word on one name was taken for another")
	}
	tampered := bytes.Clone(byB)
	tampered[bytes.Index(tampered, answer)+3] ^= 1
	if _, err := fa.open(tampered, name); err == nil {
		t.Error("an altered word was taken")
	}
	byC, err := fc.seal(name, answer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fa.open(byC, name); err == nil {
		t.Error("a word signed by an edge outside the fleet was taken")
	}

	var (
		mu      sync.Mutex
		learned []string
	)
	fa.AddLearner(func(n string, ans []byte, _ hedge.Fetcher) bool {
		mu.Lock()
		defer mu.Unlock()
		learned = append(learned, n+" "+string(ans))
		return true
	})
	heard := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(learned) }
	if err := b.Host().Connect(context.Background(), a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(fb.Members()) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a never became a live member")
		}
	}
	if told, err := fb.Tell(context.Background(), name, answer); err != nil || told != 1 {
		t.Errorf("telling the fleet: %d took it, %v", told, err)
	}
	if got := heard(); !slices.Equal(got, []string{name + " " + string(answer)}) {
		t.Errorf("a learned %q", got)
	}
	// b, a member, passes on c's word: a refuses it.
	r, done, err := fb.ask(context.Background(), a.Host().ID(), TellProtocol, byC)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := r.ReadByte(); err == nil {
		t.Errorf("a answered %d to a word signed outside the fleet", code)
	}
	done()
	if got := heard(); len(got) != 1 {
		t.Errorf("a learned a word signed outside the fleet: %q", got)
	}
}
