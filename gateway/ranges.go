package gateway

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// byteRange is one satisfiable range of a representation, resolved against
// its size: bytes [start, start+length).
type byteRange struct {
	start, length int64
}

func (r byteRange) contentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.start, r.start+r.length-1, size)
}

func (r byteRange) mimeHeader(contentType string, size int64) textproto.MIMEHeader {
	return textproto.MIMEHeader{
		"Content-Range": {r.contentRange(size)},
		"Content-Type":  {contentType},
	}
}

var (
	// errUnsatisfiable means no range of the header overlaps the
	// representation (RFC 9110 §15.5.17).
	errUnsatisfiable = errors.New("no requested range overlaps the content")
	// errTooManyRanges means the header lists more ranges than the gateway
	// serves in one response (RFC 9110 §14.2 lets a server reject those).
	errTooManyRanges = errors.New("too many ranges in one request")
	// errInvalidRange means the header does not follow the ranges-specifier
	// grammar of RFC 9110 §14.1.1.
	errInvalidRange = errors.New("malformed Range header")
)

// parseRange parses a Range header value (RFC 9110 §14.1.2) for a
// representation of size bytes. It returns ignore=true when the header must
// be ignored and the whole representation served: a unit other than bytes
// (RFC 9110 §14.2). Unsatisfiable ranges are dropped; if none is left the
// error is errUnsatisfiable. At most maxRanges ranges are accepted, and the
// header is rejected before any of it is parsed when it has more, so a
// hostile header costs O(maxRanges) work.
func parseRange(s string, size int64, maxRanges int) (ranges []byteRange, ignore bool, err error) {
	unit, set, ok := strings.Cut(s, "=")
	if !ok {
		return nil, false, errInvalidRange
	}
	if !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, true, nil
	}
	if strings.Count(set, ",") >= maxRanges {
		return nil, false, errTooManyRanges
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
			return nil, false, errInvalidRange
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		var r byteRange
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
			r.length = min(n, size)
			r.start = size - r.length
			if r.length == 0 {
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
			r.start = start
			if last == "" {
				r.length = size - start
			} else {
				end, err := parseDigits(last)
				if err != nil {
					return nil, false, err
				}
				if end < start {
					return nil, false, errInvalidRange
				}
				r.length = min(end, size-1) - start + 1
			}
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		if noOverlap {
			return nil, false, errUnsatisfiable
		}
		return nil, false, errInvalidRange
	}
	return ranges, false, nil
}

// parseDigits parses a non-empty run of ASCII digits; values past 2^63-1 are
// clamped, which is harmless because any position past the end behaves alike.
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, errInvalidRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errInvalidRange
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Only overflow is left: every character is a digit.
		return 1<<63 - 1, nil
	}
	return n, nil
}

// sumLength returns the total number of bytes the ranges cover, counting
// overlaps as many times as they are requested.
func sumLength(ranges []byteRange) int64 {
	var n int64
	for _, r := range ranges {
		n += r.length
	}
	return n
}
