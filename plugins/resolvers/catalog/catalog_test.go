package catalog

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
)

var (
	movie = blocks.NewBlock([]byte("movie")).Cid()
	site  = blocks.NewBlock([]byte("site")).Cid()
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResolve: names map to their content, a directory's name to the
// paths below it, the longest name winning; other paths are not claimed.
func TestResolve(t *testing.T) {
	p := filepath.Join(t.TempDir(), "catalog.txt")
	write(t, p, "# friendly names\n"+
		"videos/movie.mp4 "+movie.String()+"\n"+
		"site /ipfs/"+site.String()+"/public   # a directory\n"+
		"site/special.txt /ipfs/"+movie.String()+"\n")
	c, err := Open(p, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path     string
		claimed  bool
		root     string
		segments []string
		xpath    string
	}{
		{"/videos/movie.mp4", true, movie.String(), nil, "/ipfs/" + movie.String()},
		{"/site/", true, site.String(), []string{"public"}, "/ipfs/" + site.String() + "/public"},
		{"/site/css/a%20b.css", true, site.String(), []string{"public", "css", "a b.css"}, "/ipfs/" + site.String() + "/public/css/a%20b.css"},
		{"/site/special.txt", true, movie.String(), nil, "/ipfs/" + movie.String()},
		{"/videos/other.mp4", false, "", nil, ""},
		{"/videos", false, "", nil, ""},
		{"/sitemap.xml", false, "", nil, ""},
	}
	for _, tc := range cases {
		content, ok, err := c.Resolve(httptest.NewRequest("GET", tc.path, nil))
		if err != nil || ok != tc.claimed {
			t.Errorf("%s: claimed %v, err %v; want claimed %v", tc.path, ok, err, tc.claimed)
			continue
		}
		if !ok {
			continue
		}
		if content.Root.String() != tc.root || !slices.Equal(content.Segments, tc.segments) || content.Path != tc.xpath || content.TTL != time.Minute {
			t.Errorf("%s: %v %q %q ttl %v; want %s %q %q", tc.path, content.Root, content.Segments, content.Path, content.TTL, tc.root, tc.segments, tc.xpath)
		}
	}
}

// TestReload: an edited catalog is read again within a second; a broken
// edit keeps the previous names.
func TestReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "catalog.json")
	write(t, p, `{"a.mp4": "/ipfs/`+movie.String()+`"}`)
	c, err := Open(p, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := func() string {
		content, ok, _ := c.Resolve(httptest.NewRequest("GET", "/a.mp4", nil))
		if !ok {
			return ""
		}
		return content.Root.String()
	}
	if root() != movie.String() {
		t.Fatalf("a.mp4 resolved to %q", root())
	}
	write(t, p, `{"a.mp4": "`+site.String()+`"}`)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for root() != site.String() {
		if time.Now().After(deadline) {
			t.Fatal("the edited catalog was not read again within a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	write(t, p, `{"a.mp4": "not a cid"`)
	time.Sleep(1100 * time.Millisecond)
	if root() != site.String() {
		t.Errorf("a broken catalog replaced the names: a.mp4 resolved to %q", root())
	}
}

// TestParseErrors: a broken catalog is refused with its line.
func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"videos/a.mp4":  ":1: want",
		"a.mp4 notacid": `:1: "notacid"`,
		"a " + movie.String() + "\na " + site.String(): `:2: "a" is named twice`,
		"/ " + movie.String():                          "an empty name",
		`{"a": 1}`:                                     "cannot unmarshal",
		"a /ipfs/" + movie.String() + "/../x":          "not allowed",
	}
	for text, want := range cases {
		p := filepath.Join(t.TempDir(), "catalog.txt")
		write(t, p, text)
		if _, err := Open(p, time.Minute, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", text, err, want)
		}
	}
}
