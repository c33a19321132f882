package live

import (
	"testing"
	"time"
)

// BenchmarkLadderPlaylist renders one rendition's low-latency playlist of
// a three-rendition ladder two hours in (the history kept, maxHistory
// segments each), as every blocking reload of every viewer does.
func BenchmarkLadderPlaylist(b *testing.B) {
	s := NewStreams()
	now := time.Now()
	for k := range 3 {
		name := RenditionName("show", k)
		for seq := range uint64(maxHistory) {
			w := wholeAt(seq, now)
			w.Stream, w.Size = name, 100_000
			_ = s.Accept(w, Signed{}, now)
			s.Ready(name, seq)
		}
		p := partAt(maxHistory, 0, now)
		p.Stream = name
		_ = s.Accept(p, Signed{}, now)
		s.PartReady(name, maxHistory, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := s.Playlist("show.1", PlaylistOptions{Window: 6}); !ok {
			b.Fatal("no playlist")
		}
	}
}
