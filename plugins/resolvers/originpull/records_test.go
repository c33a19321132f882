package originpull

import (
	"sync"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
)

// TestRecordsCountTheURLsKnown: the count of URLs known starts from what
// the directory kept across a restart, moves once per URL however often
// its record is rewritten, and returns to zero at Close.
func TestRecordsCountTheURLsKnown(t *testing.T) {
	dir := t.TempDir()
	var (
		mu    sync.Mutex
		known int
	)
	count := func(d int) { mu.Lock(); known += d; mu.Unlock() }
	now := func() int { mu.Lock(); defer mu.Unlock(); return known }
	rs, err := OpenRecords(dir, count)
	if err != nil {
		t.Fatal(err)
	}
	root := cidOf(t, testutil.Bytes("rec", 10))
	for _, u := range []string{"https://o/a", "https://o/b", "https://o/a"} {
		if err := rs.put(Record{URL: u, Root: root, Checked: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := rs.stale("https://o/"); err != nil || n != 2 || now() != 2 {
		t.Errorf("two URLs put, one twice, then marked stale (%d, %v): %d known", n, err, now())
	}
	rs.Close()
	if now() != 0 {
		t.Errorf("after Close: %d known", now())
	}
	if rs, err = OpenRecords(dir, count); err != nil || now() != 2 {
		t.Fatalf("reopened: %d known, %v", now(), err)
	}
	for range 2 {
		if err := rs.drop("https://o/a"); err != nil {
			t.Fatal(err)
		}
	}
	if now() != 1 {
		t.Errorf("one of two dropped (twice): %d known", now())
	}
}
