package live

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
)

// partAt is part n of segment seq of a low-latency stream "s" with 0.5 s
// parts and 2 s segments.
func partAt(seq uint64, n int, at time.Time) Announcement {
	return Announcement{Stream: "s", Seq: seq, IsPart: true, Part: n, CID: blocks.NewBlock([]byte{byte(seq), byte(n)}).Cid(),
		Duration: 0.5, Ext: ".m4s", Independent: n == 0, PartTarget: 0.5, Map: blocks.NewBlock([]byte("init")).Cid(), At: at}
}

// wholeAt is segment seq of the same stream, announced once whole.
func wholeAt(seq uint64, at time.Time) Announcement {
	return Announcement{Stream: "s", Seq: seq, CID: blocks.NewBlock([]byte{byte(seq), 'w'}).Cid(), Duration: 2, Ext: ".m4s",
		PartTarget: 0.5, Map: blocks.NewBlock([]byte("init")).Cid(), At: at}
}

// TestPartsAreListedAsTheyAreHeld: a low-latency playlist lists each part
// once held and those before it are, in order, with the tags RFC 8216bis
// asks of it (PART-INF, SERVER-CONTROL with PART-HOLD-BACK, MAP,
// PRELOAD-HINT naming the next part); a blocking reload on _HLS_part
// returns once that part is listed; the segment, once whole, is listed
// after its parts.
func TestPartsAreListedAsTheyAreHeld(t *testing.T) {
	s := NewStreams()
	now := time.Now()
	for _, a := range []Announcement{partAt(0, 0, now), partAt(0, 1, now), partAt(0, 2, now), partAt(0, 3, now), wholeAt(0, now)} {
		if err := s.Accept(a, Signed{}, now); err != nil {
			t.Fatal(err)
		}
		if a.IsPart {
			s.PartReady("s", 0, a.Part)
		}
	}
	s.Ready("s", 0)
	if err := s.Accept(partAt(0, 1, now), Signed{}, now); !errors.Is(err, ErrKnown) {
		t.Errorf("a part announced twice: %v, want ErrKnown", err)
	}
	// Segment 1 is being cut: parts 0 and 2 are announced, and only 2
	// is held.
	_ = s.Accept(partAt(1, 0, now), Signed{}, now)
	_ = s.Accept(partAt(1, 2, now), Signed{}, now)
	s.PartReady("s", 1, 2)
	p, _, ok := s.Playlist("s", PlaylistOptions{Window: 5})
	if !ok {
		t.Fatal("no playlist")
	}
	for _, line := range []string{
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.500\n",
		"#EXT-X-PART-INF:PART-TARGET=0.500\n",
		"#EXT-X-MAP:URI=\"init-" + blocks.NewBlock([]byte("init")).Cid().String() + ".mp4\"\n",
		"#EXT-X-PART:DURATION=0.50000,URI=\"0.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.50000,URI=\"0.1.m4s\"\n",
		"0.3.m4s\"\n#EXTINF:2.000,\n0.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.0.m4s\"\n",
	} {
		if !strings.Contains(string(p), line) {
			t.Errorf("the playlist lacks %q:\n%s", line, p)
		}
	}
	if strings.Contains(string(p), "1.2.m4s") {
		t.Errorf("part 1.2 is listed before 1.1 is held:\n%s", p)
	}
	if _, ok := s.Part("s", 1, 2); ok {
		t.Error("part 1.2 is served before those before it are listed")
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), "s", 1, 1) }()
	s.PartReady("s", 1, 0)
	select {
	case err := <-done:
		t.Fatalf("a reload for part 1.1 returned with 1.0 listed: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	_ = s.Accept(partAt(1, 1, now), Signed{}, now)
	s.PartReady("s", 1, 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p, _, _ = s.Playlist("s", PlaylistOptions{Window: 5})
	if !strings.HasSuffix(string(p), "URI=\"1.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.3.m4s\"\n") {
		t.Errorf("the segment being cut lists its three parts held and hints the fourth:\n%s", p)
	}
	if _, ok := s.Segment("s", 1); ok {
		t.Error("segment 1 is served before it is announced whole")
	}
	// With all 2 s of the target duration cut, less than a part is left: the hint
	// names the next segment's first part, not a fourth part that
	// most likely never comes.
	_ = s.Accept(partAt(1, 3, now), Signed{}, now)
	s.PartReady("s", 1, 2)
	s.PartReady("s", 1, 3)
	p, _, _ = s.Playlist("s", PlaylistOptions{Window: 5})
	if !strings.HasSuffix(string(p), "URI=\"1.3.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"2.0.m4s\"\n") {
		t.Errorf("with less than a part left, the hint is not the next segment's first part:\n%s", p)
	}
}

// TestAnAbandonedSegmentIsLeftOut: a segment whose encoder stopped in the
// middle of it (parts announced, the whole never) does not hold back the
// segments announced after it: they are listed after a discontinuity.
func TestAnAbandonedSegmentIsLeftOut(t *testing.T) {
	s := NewStreams()
	now := time.Now()
	for _, a := range []Announcement{wholeAt(0, now), partAt(1, 0, now), wholeAt(2, now)} {
		if err := s.Accept(a, Signed{}, now); err != nil {
			t.Fatal(err)
		}
	}
	s.Ready("s", 0)
	s.PartReady("s", 1, 0)
	s.Ready("s", 2)
	p, _, _ := s.Playlist("s", PlaylistOptions{Window: 5})
	if !strings.Contains(string(p), "0.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n2.m4s\n") {
		t.Errorf("segment 2 is not listed after 0, past the abandoned 1:\n%s", p)
	}
	if next, ok := s.Next("s"); !ok || next != 3 {
		t.Errorf("next %d, %v; want 3", next, ok)
	}
}

// TestDeltaUpdate: a live playlist offers delta updates with a skip
// boundary of six target durations (RFC 8216bis §4.4.3.8), and a delta
// update (§6.2.5.1, _HLS_skip=YES) replaces the segments before it with
// one EXT-X-SKIP, at version 9, keeping the media sequence number and the
// init segment of the first segment it lists.
func TestDeltaUpdate(t *testing.T) {
	s := NewStreams()
	now := time.Now()
	for seq := range uint64(20) {
		_ = s.Accept(wholeAt(seq, now), Signed{}, now)
		s.Ready("s", seq)
	}
	full, _, _ := s.Playlist("s", PlaylistOptions{History: true})
	delta, _, _ := s.Playlist("s", PlaylistOptions{History: true, Delta: true})
	if !strings.Contains(string(full), "CAN-SKIP-UNTIL=12,") || strings.Contains(string(full), "EXT-X-SKIP:") || !strings.Contains(string(full), "\n0.m4s\n") {
		t.Errorf("the full playlist:\n%s", full)
	}
	// 12 s from the end are the last six 2 s segments, 14 to 19.
	for _, line := range []string{"#EXT-X-VERSION:9\n", "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n#EXT-X-MAP:URI=", "\n14.m4s\n", "\n19.m4s\n"} {
		if !strings.Contains(string(delta), line) {
			t.Errorf("the delta update lacks %q:\n%s", line, delta)
		}
	}
	if strings.Contains(string(delta), "\n13.m4s\n") {
		t.Errorf("the delta update lists a segment past the skip boundary:\n%s", delta)
	}
	// A window shorter than the boundary has nothing to skip.
	short, _, _ := s.Playlist("s", PlaylistOptions{Window: 5, Delta: true})
	if strings.Contains(string(short), "EXT-X-SKIP") || !strings.Contains(string(short), "#EXT-X-VERSION:6\n") {
		t.Errorf("a five-segment window skipped:\n%s", short)
	}
}
