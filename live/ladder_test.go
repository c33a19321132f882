package live

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// ladderAt is what the relay of a three-rendition ladder has taken by now:
// segments 0 to last of each rendition, whole, each of size bytes, and the
// first two parts of the next being cut. Parts of segment first may have
// been taken already, as the next being cut.
func ladderAt(t *testing.T, s *Streams, now time.Time, first, last uint64, renditions ...int) {
	t.Helper()
	for _, k := range renditions {
		name := RenditionName("show", k)
		for seq := first; seq <= last; seq++ {
			w := wholeAt(seq, now)
			w.Stream, w.Size = name, uint64(100_000*(k+1)+int(seq))
			w.Codecs, w.Width, w.Height = "avc1.64001f", 640>>k, 360>>k
			for n := range 4 {
				p := partAt(seq, n, now)
				p.Stream = name
				if err := s.Accept(p, Signed{}, now); err != nil && !errors.Is(err, ErrKnown) {
					t.Fatal(err)
				}
				s.PartReady(name, seq, n)
			}
			if err := s.Accept(w, Signed{}, now); err != nil {
				t.Fatal(err)
			}
			s.Ready(name, seq)
		}
		for n := range 2 {
			p := partAt(last+1, n, now)
			p.Stream = name
			if err := s.Accept(p, Signed{}, now); err != nil {
				t.Fatal(err)
			}
			s.PartReady(name, last+1, n)
		}
	}
}

// TestLadder: a stream's renditions are listed in its multivariant
// playlist with their peak and average bandwidth (from the sizes
// announced), codecs and resolution (RFC 8216bis §4.4.6.2); each
// rendition's low-latency playlist reports where the others stand
// (EXT-X-RENDITION-REPORT, §4.4.5.4, LAST-MSN and LAST-PART of the part
// being cut); a rendition that stops while the others go on is dropped
// from both after three target durations.
func TestLadder(t *testing.T) {
	s := NewStreams()
	start := time.Now()
	ladderAt(t, s, start, 0, 2, 0, 1, 2)
	m, ok := s.Multivariant("show")
	if !ok {
		t.Fatal("no multivariant playlist")
	}
	// Segment 2 of rendition 1 has 200 002 bytes in 2 s: 800 008 b/s
	// at its peak; its three average 200 001 bytes, 800 004 b/s.
	want := "#EXTM3U\n#EXT-X-VERSION:6\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=400008,AVERAGE-BANDWIDTH=400004,CODECS=\"avc1.64001f\",RESOLUTION=640x360\n../show/index.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=800008,AVERAGE-BANDWIDTH=800004,CODECS=\"avc1.64001f\",RESOLUTION=320x180\n../show.1/index.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1200008,AVERAGE-BANDWIDTH=1200004,CODECS=\"avc1.64001f\",RESOLUTION=160x90\n../show.2/index.m3u8\n"
	if string(m) != want {
		t.Errorf("multivariant playlist:\n%s\nwant:\n%s", m, want)
	}
	p, _, _ := s.Playlist("show.1", PlaylistOptions{Window: 5})
	for _, line := range []string{
		"#EXT-X-RENDITION-REPORT:URI=\"../show/index.m3u8\",LAST-MSN=3,LAST-PART=1\n",
		"#EXT-X-RENDITION-REPORT:URI=\"../show.2/index.m3u8\",LAST-MSN=3,LAST-PART=1\n",
	} {
		if !strings.Contains(string(p), line) {
			t.Errorf("rendition 1's playlist lacks %q:\n%s", line, p)
		}
	}
	if strings.Contains(string(p), "show.1/index.m3u8") {
		t.Errorf("rendition 1 reports itself:\n%s", p)
	}

	// Rendition 2 stops; 0 and 1 go on for 8 s (four 2 s segments).
	ladderAt(t, s, start.Add(8*time.Second), 3, 6, 0, 1)
	m, _ = s.Multivariant("show")
	if strings.Contains(string(m), "show.2") || !strings.Contains(string(m), "show.1") {
		t.Errorf("the stopped rendition 2 is still offered, or 1 is not:\n%s", m)
	}
	p, _, _ = s.Playlist("show", PlaylistOptions{Window: 5})
	if strings.Contains(string(p), "show.2") || !strings.Contains(string(p), "URI=\"../show.1/index.m3u8\",LAST-MSN=7,LAST-PART=1\n") {
		t.Errorf("rendition 0 reports the stopped rendition 2, or not rendition 1 where it is:\n%s", p)
	}
}

// TestRenditionNames: renditions past the first are relayed as
// "{stream}.{k}", which an encoder cannot publish under.
func TestRenditionNames(t *testing.T) {
	for _, c := range []struct {
		name   string
		stream string
		k      int
		valid  bool
	}{{"show", "show", 0, true}, {"show.1", "show", 1, true}, {"show.7", "show", 7, true}, {"show.8", "", 0, false}, {"show.0", "", 0, false}, {"a.b", "", 0, false}} {
		if ValidName(c.name) != c.valid {
			t.Errorf("ValidName(%q) = %v", c.name, !c.valid)
		}
		if Publishable(c.name) != (c.valid && c.k == 0) {
			t.Errorf("Publishable(%q) = %v: an encoder publishes a stream, not a rendition", c.name, !(c.valid && c.k == 0))
		}
		if !c.valid {
			continue
		}
		if stream, k := Rendition(c.name); stream != c.stream || k != c.k || RenditionName(stream, k) != c.name {
			t.Errorf("Rendition(%q) = %q, %d", c.name, stream, k)
		}
	}
}
