package contentpath

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseContentPath(t *testing.T) {
	const c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	cases := []struct {
		path string
		segs []string
		ok   bool
	}{
		{"/ipfs/" + c, nil, true},
		{"/ipfs/" + c + "/", nil, true},
		{"/ipfs/" + c + "/a/b.mp4", []string{"a", "b.mp4"}, true},
		{"/ipfs/" + c + "/a%20b/%E2%9C%93", []string{"a b", "✓"}, true},
		{"/ipfs/" + c + "/a%2Fb", []string{"a/b"}, true}, // an encoded slash stays in its segment
		{"/ipfs/" + c + "/../x", nil, false},
		{"/ipfs/" + c + "/%2e%2e/x", nil, false},
		{"/ipfs/" + c + "/./x", nil, false},
		{"/ipfs/" + c + "//x", nil, false},
		{"/ipfs/" + c + "/" + strings.Repeat("a/", 100), nil, true}, // the gateway bounds the walk, not the parser
		{"/ipfs/", nil, false},
		{"/ipfs/notacid", nil, false},
		{"/ipns/" + c, nil, false},
		{"/" + c, nil, false},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		root, segs, err := Parse(u)
		if (err == nil) != tc.ok {
			t.Errorf("%.60s: error %v, want ok=%v", tc.path, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if root.String() != c {
			t.Errorf("%s: root %s", tc.path, root)
		}
		if tc.segs != nil && !reflect.DeepEqual(segs, tc.segs) {
			t.Errorf("%s: segments %q, want %q", tc.path, segs, tc.segs)
		}
	}
}

// FuzzContentPath: any request path is parsed without panic, and a parsed
// one never yields a "." or ".." segment or an empty one.
func FuzzContentPath(f *testing.F) {
	for _, s := range []string{"/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku/a/b", "/ipfs/Qm/%2e%2e", "/ipfs//", "/ipfs/x%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil {
			return
		}
		_, segs, err := Parse(u)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("%q: segment %q", p, s)
			}
		}
	})
}
