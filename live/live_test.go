package live

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func segmentAt(seq uint64, at time.Time) Announcement {
	return Announcement{Stream: "s", Seq: seq, CID: blocks.NewBlock([]byte{byte(seq)}).Cid(), Duration: 2, Ext: ".ts", At: at}
}

// TestVerify: a signed announcement verifies against its key when that
// key is trusted; another key, a changed payload, a signature moved to
// another publisher's name and a malformed segment are each refused with
// their own error.
func TestVerify(t *testing.T) {
	key, id := newKey(t)
	other, otherID := newKey(t)
	trust := func(p peer.ID) bool { return p == id }
	s, err := Sign(key, segmentAt(7, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := Verify(s, trust); err != nil || a.Seq != 7 {
		t.Fatalf("a trusted announcement: %v, seq %d", err, a.Seq)
	}
	stranger, _ := Sign(other, segmentAt(7, time.Now()))
	tampered := s
	tampered.Payload = []byte(strings.Replace(string(s.Payload), `"seq":7`, `"seq":8`, 1))
	renamed := stranger
	renamed.From = id
	bad, _ := Sign(key, Announcement{Stream: "s", Seq: 1, Duration: 2, Ext: ".exe"})
	huge, _ := Sign(key, segmentAt(1<<64-1, time.Now()))
	for name, c := range map[string]struct {
		s    Signed
		want error
	}{
		"another key":             {stranger, ErrUntrusted},
		"a changed payload":       {tampered, ErrForged},
		"another key's signature": {renamed, ErrForged},
		"a malformed segment":     {bad, ErrMalformed},
		"sequence 2⁶⁴−1":          {huge, ErrMalformed},
	} {
		if _, err := Verify(c.s, trust); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := Verify(stranger, func(p peer.ID) bool { return p == otherID }); err != nil {
		t.Errorf("the stranger's own announcement, trusting it: %v", err)
	}
}

// TestStreamsAccept: announcements are kept in sequence order whatever
// order they come in; a replay, a second CID for a known segment, one
// older than maxAge and one after the end are refused; segments are
// listed only once held, contiguously.
func TestStreamsAccept(t *testing.T) {
	s := NewStreams()
	now := time.Now()
	for _, seq := range []uint64{0, 2, 1} {
		if err := s.Accept(segmentAt(seq, now), Signed{}, now); err != nil {
			t.Fatalf("segment %d: %v", seq, err)
		}
	}
	if err := s.Accept(segmentAt(1, now), Signed{}, now); !errors.Is(err, ErrKnown) {
		t.Errorf("a replay: %v, want ErrKnown", err)
	}
	second := segmentAt(1, now)
	second.CID = blocks.NewBlock([]byte("other")).Cid()
	if err := s.Accept(second, Signed{}, now); !errors.Is(err, ErrKnown) {
		t.Errorf("another CID for segment 1: %v, want ErrKnown", err)
	}
	if err := s.Accept(segmentAt(2+maxHistory+1, now), Signed{}, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("a leap past the history kept: %v, want ErrMalformed", err)
	}
	if err := s.Accept(segmentAt(3, now.Add(-maxAge-time.Second)), Signed{}, now); !errors.Is(err, ErrStale) {
		t.Errorf("an old announcement: %v, want ErrStale", err)
	}
	if _, _, ok := s.Playlist("s", PlaylistOptions{Window: 6}); ok {
		t.Error("a playlist before any segment is held")
	}
	s.Ready("s", 0)
	s.Ready("s", 2)
	p, _, _ := s.Playlist("s", PlaylistOptions{Window: 6})
	if strings.Contains(string(p), "2.ts") || !strings.Contains(string(p), "0.ts") {
		t.Errorf("segment 2 is listed before 1 is held:\n%s", p)
	}
	if next, ok := s.Next("s"); !ok || next != 1 {
		t.Errorf("next: %d %v, want 1", next, ok)
	}
	s.Ready("s", 1)
	p, target, _ := s.Playlist("s", PlaylistOptions{Window: 2})
	if want := "#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2.000,\n1.ts\n#EXTINF:2.000,\n2.ts\n"; !strings.HasSuffix(string(p), want) || target != 2*time.Second {
		t.Errorf("a window of 2: target %v\n%s\nwant it to end\n%s", target, p, want)
	}
	end := Announcement{Stream: "s", Seq: 2, End: true, VOD: segmentAt(9, now).CID, At: now}
	if err := s.Accept(end, Signed{}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Accept(segmentAt(3, now), Signed{}, now); !errors.Is(err, ErrStale) {
		t.Errorf("a segment after the end: %v, want ErrStale", err)
	}
	p, _, _ = s.Playlist("s", PlaylistOptions{Window: 2})
	if !strings.HasSuffix(string(p), "2.ts\n#EXT-X-ENDLIST\n") || !strings.Contains(string(p), "#EXT-X-MEDIA-SEQUENCE:0\n") {
		t.Errorf("an ended event lists everything and ends:\n%s", p)
	}
	if _, ok := s.Next("s"); ok {
		t.Error("an ended stream has a next segment to wait for")
	}
}

// TestWait: a blocking reload returns when its segment is listed, at once
// when it is already, and when its context ends; an unknown stream is an
// error, and waiting creates no stream.
func TestWait(t *testing.T) {
	s := NewStreams()
	now := time.Now()
	_ = s.Accept(segmentAt(0, now), Signed{}, now)
	s.Ready("s", 0)
	if err := s.Wait(context.Background(), "s", 0, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), "s", 1, -1) }()
	select {
	case err := <-done:
		t.Fatalf("returned before segment 1: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	_ = s.Accept(segmentAt(1, now), Signed{}, now)
	select {
	case err := <-done:
		t.Fatalf("returned once segment 1 was announced but not held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Ready("s", 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, "s", 5, -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past the context: %v", err)
	}
	if err := s.Wait(context.Background(), "nope", 0, -1); err == nil || s.Known("nope") {
		t.Errorf("waiting for an unknown stream: %v, known %v", err, s.Known("nope"))
	}
}

// TestParseEncoderPlaylist reads what ffmpeg's HLS muxer writes, and
// refuses what is not a playlist.
func TestParseEncoderPlaylist(t *testing.T) {
	p, err := parseEncoderPlaylist([]byte(`#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T05:00:00.000+0000
#EXTINF:2.000000,
index41.ts
#EXT-X-DISCONTINUITY
#EXTINF:1.960000,
index42.ts
#EXT-X-ENDLIST
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.entries) != 2 || !p.ended {
		t.Fatalf("%d entries, ended %v", len(p.entries), p.ended)
	}
	a, b := p.entries[0], p.entries[1]
	if a.seq != 41 || a.uri != "index41.ts" || a.duration != 2 || a.discontinuity || a.pdt.IsZero() {
		t.Errorf("first entry: %+v", a)
	}
	if b.seq != 42 || b.duration != 1.96 || !b.discontinuity {
		t.Errorf("second entry: %+v", b)
	}
	for name, data := range map[string]string{
		"empty":            "",
		"not HLS":          "hello\n",
		"no EXTINF":        "#EXTM3U\nindex0.ts\n",
		"a negative time":  "#EXTM3U\n#EXTINF:-1,\nindex0.ts\n",
		"an hour segment":  "#EXTM3U\n#EXTINF:3600,\nindex0.ts\n",
		"a bad sequence":   "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n",
		"a huge sequence":  "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n",
		"a very long line": "#EXTM3U\n" + strings.Repeat("a", 100<<10) + "\n",
	} {
		if _, err := parseEncoderPlaylist([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzEncoderPlaylist: whatever an encoder sends as its playlist is parsed
// or refused, never more than maxEncoderEntries segments, each with a
// duration in (0, 60] and consecutive sequence numbers.
func FuzzEncoderPlaylist(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.0,\nindex3.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nindex4.ts\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T05:00:00.000+0000\n#EXTINF:2,\na.ts\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n"))
	f.Add([]byte("#EXTM3U\n#EXTINF:2,\na.ts\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2,\nb.ts\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseEncoderPlaylist(data)
		if err != nil {
			return
		}
		if len(p.entries) > maxEncoderEntries {
			t.Fatalf("%d entries", len(p.entries))
		}
		for i, e := range p.entries {
			if e.duration <= 0 || e.duration > 60 || e.uri == "" {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if i > 0 && e.seq != p.entries[i-1].seq+1 {
				t.Fatalf("entry %d: sequence %d after %d", i, e.seq, p.entries[i-1].seq)
			}
		}
	})
}
