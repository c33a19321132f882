package originpull

import (
	"testing"
	"time"
)

// TestSpoolWaitsOnlyWhenSoon: a range is read from a spool only if its
// first byte should arrive, at the pace the body has come less a fifth,
// within the origin's latency and spoolSlack; in the first paceAfter, within
// firstBytes of what has arrived.
func TestSpoolWaitsOnlyWhenSoon(t *testing.T) {
	const mib = 1 << 20
	s := &spool{latency: 50 * time.Millisecond, opened: time.Now().Add(-time.Second), written: 10 * mib} // 10 MiB/s
	for _, c := range []struct {
		off  int64
		soon bool
	}{
		{0, true},
		{10*mib - 1, true},
		{10*mib + mib/2, true},     // 50 ms away, 62 ms less a fifth: within 50 ms and the slack
		{10*mib + mib*6/10, false}, // 60 ms away, 75 ms less a fifth: a pace that slows would make it late
		{11 * mib, false},          // 100 ms away
		{100 * mib, false},
	} {
		if got := s.soon(c.off); got != c.soon {
			t.Errorf("off %d MiB: soon %v, want %v", c.off/mib, got, c.soon)
		}
	}
	s.opened = time.Now() // just answered: the pace is not known yet
	if !s.soon(10*mib+firstBytes-1) || s.soon(10*mib+firstBytes) {
		t.Errorf("in the first paceAfter: soon at firstBytes ahead %v, past it %v", s.soon(10*mib+firstBytes-1), s.soon(10*mib+firstBytes))
	}
	s.ended = true
	if s.soon(11*mib) || !s.soon(mib) {
		t.Error("an ended spool promised bytes it will never get, or refused ones it has")
	}
}
