// Package catalog is the pacman.resolvers.catalog module: friendly names,
// such as /videos/movie.mp4, for content, read from a file the operator
// edits while the gateway runs.
package catalog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
	"go.uber.org/zap"
)

// recheck is how often the file is looked at for changes.
const recheck = time.Second

// maxFile bounds the catalog file's size.
const maxFile = 64 << 20

// entry is what a name maps to.
type entry struct {
	root     cid.Cid
	segments []string
}

// Catalog maps names to content paths, from a file re-read when it
// changes. A Catalog is safe for concurrent use.
type Catalog struct {
	path string
	ttl  time.Duration
	log  *zap.Logger

	mu      sync.Mutex // guards everything below
	names   map[string]entry
	modTime time.Time
	size    int64
	checked time.Time
}

// Open loads the catalog at path. Its names are served with ttl as their
// Cache-Control max-age.
func Open(path string, ttl time.Duration, log *zap.Logger) (*Catalog, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c := &Catalog{path: path, ttl: ttl, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Resolve claims the request paths the catalog names: the longest name
// that is the path or a directory above it, the rest of the path then
// walked from the name's content.
func (c *Catalog) Resolve(r *http.Request) (gateway.Content, bool, error) {
	p := strings.Trim(r.URL.Path, "/")
	c.mu.Lock()
	if time.Since(c.checked) >= recheck {
		if err := c.reloadIfChanged(); err != nil {
			c.log.Error("reloading the catalog; keeping its previous names", zap.Error(err))
		}
	}
	names := c.names
	c.mu.Unlock()
	name, rest := p, []string(nil)
	for {
		if e, ok := names[name]; ok {
			segs := append(append([]string(nil), e.segments...), rest...)
			return gateway.Content{Root: e.root, Segments: segs, TTL: c.ttl, Path: contentPath(e.root, segs)}, true, nil
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return gateway.Content{}, false, nil
		}
		rest = append([]string{name[i+1:]}, rest...)
		name = name[:i]
	}
}

// contentPath is the /ipfs/ path a name resolved to, escaped.
func contentPath(root cid.Cid, segs []string) string {
	var b strings.Builder
	b.WriteString("/ipfs/")
	b.WriteString(root.String())
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func (c *Catalog) reloadIfChanged() error {
	c.checked = time.Now()
	fi, err := os.Stat(c.path)
	if err != nil {
		return fmt.Errorf("checking the catalog: %w", err)
	}
	if fi.ModTime().Equal(c.modTime) && fi.Size() == c.size {
		return nil
	}
	return c.reload()
}

// reload reads the file; the caller holds mu or owns c.
func (c *Catalog) reload() error {
	f, err := os.Open(c.path)
	if err != nil {
		return fmt.Errorf("opening the catalog: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	if fi.Size() > maxFile {
		return fmt.Errorf("the catalog %s is over %d bytes", c.path, maxFile)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	names, err := parse(c.path, data)
	if err != nil {
		return err
	}
	c.names, c.modTime, c.size, c.checked = names, fi.ModTime(), fi.Size(), time.Now()
	return nil
}

// parse reads a catalog: a JSON object of names to content paths, or
// lines "name /ipfs/{cid}[/path]" (or a bare CID), # starting a comment.
func parse(path string, data []byte) (map[string]entry, error) {
	names := map[string]entry{}
	add := func(where, name, target string) error {
		name = strings.Trim(name, "/")
		if name == "" {
			return fmt.Errorf("%s: an empty name", where)
		}
		if _, dup := names[name]; dup {
			return fmt.Errorf("%s: %q is named twice", where, name)
		}
		e, err := parseTarget(target)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", where, target, err)
		}
		names[name] = e
		return nil
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for name, target := range m {
			if err := add(path, name, target); err != nil {
				return nil, err
			}
		}
		return names, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"name /ipfs/{cid}[/path]\"", path, n)
		}
		if err := add(fmt.Sprintf("%s:%d", path, n), fields[0], fields[1]); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	return names, nil
}

// parseTarget reads /ipfs/{cid}[/path] or a bare CID.
func parseTarget(s string) (entry, error) {
	if !strings.HasPrefix(s, "/ipfs/") {
		s = "/ipfs/" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return entry{}, fmt.Errorf("not a content path")
	}
	root, segs, err := contentpath.Parse(u)
	if err != nil {
		return entry{}, err
	}
	return entry{root, segs}, nil
}
