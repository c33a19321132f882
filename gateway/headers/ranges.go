// Package headers parses the RFC 9110 request headers a byte-serving
// gateway acts on: Range (§14.2) and the entity-tag lists of If-Match,
// If-None-Match and If-Range (§13.1). It does no I/O and bounds its work by
// the size of its input.
package headers

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// Range is one satisfiable range of a representation, resolved against
// its size: bytes [Start, Start+Length).
type Range struct {
	Start, Length int64
}

// ContentRange formats r as a Content-Range value (RFC 9110 §14.4).
func (r Range) ContentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.Start, r.Start+r.Length-1, size)
}

// MIMEHeader returns the headers of r's part in a multipart/byteranges
// body (RFC 9110 §14.6).
func (r Range) MIMEHeader(contentType string, size int64) textproto.MIMEHeader {
	return textproto.MIMEHeader{
		"Content-Range": {r.ContentRange(size)},
		"Content-Type":  {contentType},
	}
}

var (
	// ErrUnsatisfiable means no range of the header overlaps the
	// representation (RFC 9110 §15.5.17).
	ErrUnsatisfiable = errors.New("no requested range overlaps the content")
	// ErrTooManyRanges means the header lists more ranges than the gateway
	// serves in one response (RFC 9110 §14.2 lets a server reject those).
	ErrTooManyRanges = errors.New("too many ranges in one request")
	// ErrInvalidRange means the header does not follow the ranges-specifier
	// grammar of RFC 9110 §14.1.1.
	ErrInvalidRange = errors.New("malformed Range header")
)

// ParseRange parses a Range header value (RFC 9110 §14.1.2) for a
// representation of size bytes. It returns ignore=true when the header must
// be ignored and the whole representation served: a unit other than bytes
// (RFC 9110 §14.2). Unsatisfiable ranges are dropped; if none is left the
// error is ErrUnsatisfiable. At most maxRanges ranges are accepted, and the
// header is rejected before any of it is parsed when it has more, so a
// hostile header costs O(maxRanges) work.
func ParseRange(s string, size int64, maxRanges int) (ranges []Range, ignore bool, err error) {
	unit, set, ok := strings.Cut(s, "=")
	if !ok {
		return nil, false, ErrInvalidRange
	}
	if !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, true, nil
	}
	if strings.Count(set, ",") >= maxRanges {
		return nil, false, ErrTooManyRanges
	}
	noOverlap := false
	for ra := range strings.SplitSeq(set, ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			// RFC 9110 §5.6.1: recipients accept empty list elements.
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, false, ErrInvalidRange
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		var r Range
		if first == "" {
			// suffix-range: the last N bytes (RFC 9110 §14.1.1).
			n, err := parseDigits(last)
			if err != nil {
				return nil, false, err
			}
			if n == 0 {
				noOverlap = true
				continue
			}
			r.Length = min(n, size)
			r.Start = size - r.Length
			if r.Length == 0 {
				noOverlap = true
				continue
			}
		} else {
			start, err := parseDigits(first)
			if err != nil {
				return nil, false, err
			}
			if start >= size {
				// RFC 9110 §14.1.1: a first-pos past the end is unsatisfiable.
				noOverlap = true
				continue
			}
			r.Start = start
			if last == "" {
				r.Length = size - start
			} else {
				end, err := parseDigits(last)
				if err != nil {
					return nil, false, err
				}
				if end < start {
					return nil, false, ErrInvalidRange
				}
				r.Length = min(end, size-1) - start + 1
			}
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		if noOverlap {
			return nil, false, ErrUnsatisfiable
		}
		return nil, false, ErrInvalidRange
	}
	return ranges, false, nil
}

// parseDigits parses a non-empty run of ASCII digits; values past 2^63-1 are
// clamped, which is harmless because any position past the end behaves alike.
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, ErrInvalidRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrInvalidRange
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Only overflow is left: every character is a digit.
		return 1<<63 - 1, nil
	}
	return n, nil
}

// SumLength returns the total number of bytes the ranges cover, counting
// overlaps as many times as they are requested.
func SumLength(ranges []Range) int64 {
	var n int64
	for _, r := range ranges {
		n += r.Length
	}
	return n
}

// ParseContentRange parses the Content-Range of a 206 response for one
// range (RFC 9110 §14.4): "bytes first-last/complete" or
// "bytes first-last/*". It returns the first and last byte positions.
func ParseContentRange(s string) (first, last int64, ok bool) {
	spec, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, complete, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var err error
	if first, err = parseDigits(a); err != nil {
		return 0, 0, false
	}
	if last, err = parseDigits(b); err != nil || last < first {
		return 0, 0, false
	}
	if complete != "*" {
		n, err := parseDigits(complete)
		if err != nil || last >= n {
			return 0, 0, false
		}
	}
	return first, last, true
}
