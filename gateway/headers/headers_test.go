package headers

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 10_000
	cases := []struct {
		rfc    string // the RFC 9110 section the case checks
		header string
		want   []Range
		ignore bool
		err    error
	}{
		{"§14.1.2 first 500 bytes", "bytes=0-499", []Range{{0, 500}}, false, nil},
		{"§14.1.2 second 500 bytes", "bytes=500-999", []Range{{500, 500}}, false, nil},
		{"§14.1.2 suffix: final 500 bytes", "bytes=-500", []Range{{9500, 500}}, false, nil},
		{"§14.1.2 open-ended: from 9500 on", "bytes=9500-", []Range{{9500, 500}}, false, nil},
		{"§14.1.2 first and last byte", "bytes=0-0,-1", []Range{{0, 1}, {9999, 1}}, false, nil},
		{"§14.1.1 last-pos past the end is clamped", "bytes=9000-99999", []Range{{9000, 1000}}, false, nil},
		{"§14.1.1 suffix longer than the content is the whole content", "bytes=-20000", []Range{{0, size}}, false, nil},
		{"§14.1.1 last byte exactly", "bytes=9999-9999", []Range{{9999, 1}}, false, nil},
		{"§5.6.1 optional whitespace and empty list elements", "bytes= 0-1 , ,2-3", []Range{{0, 2}, {2, 2}}, false, nil},
		{"§14.1.1 unit is case-insensitive", "Bytes=1-2", []Range{{1, 2}}, false, nil},
		{"§14.1.1 unsatisfiable ranges are dropped", "bytes=20000-,0-0", []Range{{0, 1}}, false, nil},
		{"§14.1.1 first-pos at the end is unsatisfiable", "bytes=10000-", nil, false, ErrUnsatisfiable},
		{"§14.1.1 suffix of zero is unsatisfiable", "bytes=-0", nil, false, ErrUnsatisfiable},
		{"§14.1.1 positions past 2^63 are unsatisfiable", "bytes=99999999999999999999-", nil, false, ErrUnsatisfiable},
		{"§14.1.1 last-pos before first-pos is invalid", "bytes=5-4", nil, false, ErrInvalidRange},
		{"§14.1.1 no dash", "bytes=5", nil, false, ErrInvalidRange},
		{"§14.1.1 not digits", "bytes=a-b", nil, false, ErrInvalidRange},
		{"§14.1.1 signs are not digits", "bytes=+1-2", nil, false, ErrInvalidRange},
		{"§14.1.1 lone dash", "bytes=-", nil, false, ErrInvalidRange},
		{"§14.1.1 empty set", "bytes=", nil, false, ErrInvalidRange},
		{"§14.1.1 no unit", "0-5", nil, false, ErrInvalidRange},
		{"§14.2 unknown unit is ignored", "items=0-5", nil, true, nil},
		{"§14.2 too many ranges may be rejected", "bytes=" + strings.Repeat("0-0,", 32) + "0-0", nil, false, ErrTooManyRanges},
	}
	for _, tc := range cases {
		t.Run(tc.rfc, func(t *testing.T) {
			got, ignore, err := ParseRange(tc.header, size, 32)
			if !errors.Is(err, tc.err) || ignore != tc.ignore || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseRange(%q) = %v, %v, %v; want %v, %v, %v", tc.header, got, ignore, err, tc.want, tc.ignore, tc.err)
			}
		})
	}
}

// TestParseRangeEmptyContent checks RFC 9110 §14.1.1: every range of a
// zero-length representation is unsatisfiable.
func TestParseRangeEmptyContent(t *testing.T) {
	for _, h := range []string{"bytes=0-", "bytes=-5", "bytes=0-0"} {
		if _, _, err := ParseRange(h, 0, 32); !errors.Is(err, ErrUnsatisfiable) {
			t.Errorf("ParseRange(%q, 0) error %v, want ErrUnsatisfiable", h, err)
		}
	}
}

// FuzzParseRange checks the parser's invariants on any input: no panic,
// every range inside the content and non-empty, never more than the cap.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-499", "bytes=-500", "bytes=9500-", "bytes=0-0,-1", "bytes=5-4", "items=1-2", "bytes=99999999999999999999-", "bytes= , ,1-"} {
		f.Add(s, int64(10_000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		ranges, ignore, err := ParseRange(h, size, 8)
		if err != nil || ignore {
			if len(ranges) != 0 {
				t.Fatalf("ranges %v returned with error %v / ignore %v", ranges, err, ignore)
			}
			return
		}
		if len(ranges) == 0 || len(ranges) > 8 {
			t.Fatalf("%d ranges", len(ranges))
		}
		for _, r := range ranges {
			if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size || r.Start+r.Length < r.Start {
				t.Fatalf("range %+v outside content of %d bytes", r, size)
			}
		}
	})
}

func TestETagMatch(t *testing.T) {
	const etag = `"bafy"`
	cases := []struct {
		rfc    string
		header string
		weak   bool
		want   bool
	}{
		{"§8.8.3.2 strong match", `"bafy"`, false, true},
		{"§8.8.3.2 weak tag never matches strongly", `W/"bafy"`, false, false},
		{"§8.8.3.2 weak comparison ignores W/", `W/"bafy"`, true, true},
		{"§13.1.2 any of a list", `"x", "bafy"`, true, true},
		{"§13.1.1 * matches a current representation", `*`, false, true},
		{"§8.8.3 different tag", `"bafz"`, true, false},
		{"§8.8.3 unquoted tags are malformed", `bafy`, true, false},
		{"§8.8.3 unterminated tag", `"bafy`, true, false},
	}
	for _, tc := range cases {
		if got := ETagMatch(tc.header, etag, tc.weak); got != tc.want {
			t.Errorf("%s: ETagMatch(%q, weak=%v) = %v", tc.rfc, tc.header, tc.weak, got)
		}
	}
}

func FuzzETagMatch(f *testing.F) {
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, `"`, `W/`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		strong := ETagMatch(h, `"a"`, false)
		if strong && !ETagMatch(h, `"a"`, true) {
			t.Fatalf("%q matches strongly but not weakly", h)
		}
	})
}
