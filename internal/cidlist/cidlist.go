// Package cidlist loads sets of CIDs from text files (one CID per line,
// # comments) and reloads them when the file changes, for allow and deny
// lists an operator edits while the gateway runs.
package cidlist

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// recheck is how often Contains looks at the file for changes.
const recheck = time.Second

// Matching says when a CID is on a list.
type Matching int

const (
	// ByMultihash matches every CID of the same bytes: a CIDv0 entry also
	// matches the CIDv1 of the same bytes, whatever its codec. Right for
	// deny lists, which must not be evaded by re-encoding a CID.
	ByMultihash Matching = iota
	// ByCID matches the CID itself (CIDv0 and its CIDv1 dag-pb twin are
	// one CID): right for allow lists, where another codec over the same
	// bytes is other content.
	ByCID
)

// List is a set of CIDs backed by a file. A List is safe for concurrent
// use.
type List struct {
	path    string
	match   Matching
	expand  func(cid.Cid) []cid.Cid
	onError func(error)

	mu      sync.Mutex // guards everything below
	set     map[string]struct{}
	modTime time.Time
	size    int64
	checked time.Time
}

// Open loads the list at path. onError, if not nil, is told when a later
// reload fails; the list then keeps its previous contents.
//
// expand, if not nil, is called at each load for every entry: the CIDs it
// returns are on the list too (the blocks of a listed DAG).
func Open(path string, match Matching, expand func(cid.Cid) []cid.Cid, onError func(error)) (*List, error) {
	l := &List{path: path, match: match, expand: expand, onError: onError}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Contains reports whether c is on the list, first reloading the file if
// it changed since it was last looked at (at most once a second).
func (l *List) Contains(c cid.Cid) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.checked) >= recheck {
		if err := l.reloadIfChanged(); err != nil && l.onError != nil {
			l.onError(err)
		}
	}
	_, ok := l.set[l.key(c)]
	return ok
}

// Len returns the number of entries.
func (l *List) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.set)
}

// key is what c is matched by.
func (l *List) key(c cid.Cid) string {
	if l.match == ByCID {
		// CIDv0 is dag-pb with sha2-256: the same CID as its CIDv1.
		return cid.NewCidV1(c.Type(), c.Hash()).KeyString()
	}
	return string(c.Hash())
}

func (l *List) reloadIfChanged() error {
	l.checked = time.Now()
	fi, err := os.Stat(l.path)
	if err != nil {
		return fmt.Errorf("checking CID list: %w", err)
	}
	if fi.ModTime().Equal(l.modTime) && fi.Size() == l.size {
		return nil
	}
	return l.reload()
}

// reload reads the file; the caller holds mu or owns l.
func (l *List) reload() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("opening CID list: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading CID list: %w", err)
	}
	set := map[string]struct{}{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c, err := cid.Decode(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %q is not a CID", l.path, n, line)
		}
		set[l.key(c)] = struct{}{}
		if l.expand != nil {
			for _, d := range l.expand(c) {
				set[l.key(d)] = struct{}{}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading CID list: %w", err)
	}
	l.set, l.modTime, l.size, l.checked = set, fi.ModTime(), fi.Size(), time.Now()
	return nil
}
