package headers

import "strings"

// ETagMatch reports whether the If-Match / If-None-Match / If-Range style
// list in header matches etag. weak selects the weak comparison of RFC 9110
// §8.8.3.2 (used by If-None-Match); otherwise the strong comparison applies
// (If-Match, If-Range). etag is always strong here: CIDs name exact bytes.
func ETagMatch(header, etag string, weak bool) bool {
	header = strings.TrimSpace(header)
	if header == "*" {
		return true
	}
	for header != "" {
		header = strings.TrimLeft(header, " \t,")
		if header == "" {
			break
		}
		tag, rest, ok := scanETag(header)
		if !ok {
			// A malformed list matches nothing, as in net/http.
			return false
		}
		isWeak := strings.HasPrefix(tag, "W/")
		if isWeak {
			tag = tag[2:]
		}
		if tag == etag && (weak || !isWeak) {
			return true
		}
		header = rest
	}
	return false
}

// scanETag cuts the entity-tag at the start of s (RFC 9110 §8.8.3) and
// returns it with the rest of s.
func scanETag(s string) (etag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s)-start < 2 || s[start] != '"' {
		return "", "", false
	}
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return s[:i+1], s[i+1:], true
		// etagc = %x21 / %x23-7E / obs-text
		case c == 0x21 || c >= 0x23 && c != 0x7f:
		default:
			return "", "", false
		}
	}
	return "", "", false
}
