package live

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestFileJournal: announcements read back in order, per stream; a last
// line cut short by a crash is skipped; a bad stream name is refused.
func TestFileJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := NewFileJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, id := newKey(t)
	for seq := range uint64(3) {
		s, err := Sign(key, segmentAt(seq, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Append("s", s); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "s.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"payload":"eyJzdHJl`) // a crash mid-append
	f.Close()
	got, err := j.Read("s")
	if err != nil || len(got) != 3 {
		t.Fatalf("read %d announcements, %v; want 3", len(got), err)
	}
	for i, s := range got {
		a, err := Verify(s, func(p peer.ID) bool { return p == id })
		if err != nil || a.Seq != uint64(i) {
			t.Errorf("announcement %d read back: seq %d, %v", i, a.Seq, err)
		}
	}
	if streams, err := j.Streams(); err != nil || len(streams) != 1 || streams[0] != "s" {
		t.Errorf("streams: %v %v", streams, err)
	}
	if err := j.Append("../x", got[0]); err == nil {
		t.Error("a journal for stream ../x")
	}
}

// TestJournalEndReplaces: appending an event's end leaves that line
// alone, in the file and in memory; the stream is still listed.
func TestJournalEndReplaces(t *testing.T) {
	dir := t.TempDir()
	fj, err := NewFileJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := newKey(t)
	for _, j := range []Journal{fj, &memJournal{}} {
		for seq := range uint64(5) {
			s, err := Sign(key, segmentAt(seq, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Append("s", s); err != nil {
				t.Fatal(err)
			}
		}
		end := segmentAt(4, time.Now())
		end.End, end.VOD, end.CID = true, end.CID, cid.Undef
		s, err := Sign(key, end)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Append("s", s); err != nil {
			t.Fatal(err)
		}
		got, err := j.Read("s")
		if err != nil || len(got) != 1 || string(got[0].Payload) != string(s.Payload) {
			t.Errorf("%T after the end: %d announcements (%v), want the end alone", j, len(got), err)
		}
		if streams, err := j.Streams(); err != nil || len(streams) != 1 {
			t.Errorf("%T streams after the end: %v %v", j, streams, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".replace-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
