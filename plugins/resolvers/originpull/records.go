package originpull

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
)

// rememberedRecords bounds the records kept in memory; the others are
// read from disk when asked for.
const rememberedRecords = 1 << 16

// Record is what an edge knows of one URL of the origin: the CID its
// bytes were imported as, and the origin's validators for those bytes.
type Record struct {
	// URL is the file on the origin.
	URL string `json:"url"`
	// Root is the file's CID, imported as `caddy pacman add` would.
	Root cid.Cid `json:"root"`
	// ETag and LastModified are the origin's validators of the bytes
	// imported; Size is their length.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size"`
	// MaxAge is the origin's Cache-Control max-age, if it gave one.
	MaxAge time.Duration `json:"max_age,omitempty"`
	// Checked is when the origin last said the file is these bytes.
	Checked time.Time `json:"checked"`
}

// Records keeps the records of URLs pulled, one file per URL under a
// directory, so that an edge that restarts remembers them; a record lost
// in a crash only costs a pull. The pullers of one data directory share
// one Records.
type Records struct {
	dir   string
	known func(delta int)

	mu  sync.Mutex // guards lru
	lru *simplelru.LRU[string, Record]

	files sync.Mutex // serialises the changes to the files, and guards n
	n     int        // the records kept
}

// OpenRecords returns the records kept in dir, creating it if needed.
// known, if not nil, learns the count of URLs the records know as it
// changes, from the count found in dir to zero at Close.
func OpenRecords(dir string, known func(delta int)) (*Records, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("origin_pull: opening its records: %w", err)
	}
	lru, err := simplelru.NewLRU[string, Record](rememberedRecords, nil)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("origin_pull: opening its records: %w", err)
	}
	if known == nil {
		known = func(int) {}
	}
	rs := &Records{dir: dir, known: known, lru: lru}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") {
			rs.n++
		}
	}
	known(rs.n)
	return rs, nil
}

// Close takes the records' count back from known.
func (rs *Records) Close() {
	rs.files.Lock()
	rs.known(-rs.n)
	rs.n = 0
	rs.files.Unlock()
}

// file is where the record of u is kept.
func (rs *Records) file(u string) string {
	sum := sha256.Sum256([]byte(u))
	return filepath.Join(rs.dir, hex.EncodeToString(sum[:])+".json")
}

// get returns the record of u, and false if there is none.
func (rs *Records) get(u string) (Record, bool) {
	rs.mu.Lock()
	rec, ok := rs.lru.Get(u)
	rs.mu.Unlock()
	if ok {
		return rec, true
	}
	data, err := os.ReadFile(rs.file(u))
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.URL != u || !rec.Root.Defined() {
		return Record{}, false // none, or torn by a crash: pulled again
	}
	rs.mu.Lock()
	rs.lru.Add(u, rec)
	rs.mu.Unlock()
	return rec, true
}

// put keeps rec, replacing the file whole: a crash leaves the old record
// or the new one.
func (rs *Records) put(rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("origin_pull: encoding a record: %w", err)
	}
	tmp, err := os.CreateTemp(rs.dir, ".record-*")
	if err != nil {
		return fmt.Errorf("origin_pull: %w", err)
	}
	_, err = tmp.Write(data)
	if err = errors.Join(err, tmp.Close()); err == nil {
		rs.files.Lock()
		_, had := os.Lstat(rs.file(rec.URL))
		if err = os.Rename(tmp.Name(), rs.file(rec.URL)); err == nil && errors.Is(had, os.ErrNotExist) {
			rs.n++
			rs.known(1)
		}
		rs.files.Unlock()
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("origin_pull: keeping the record of %s: %w", rec.URL, err)
	}
	rs.mu.Lock()
	rs.lru.Add(rec.URL, rec)
	rs.mu.Unlock()
	return nil
}

// drop forgets the record of u.
func (rs *Records) drop(u string) error {
	rs.mu.Lock()
	rs.lru.Remove(u)
	rs.mu.Unlock()
	rs.files.Lock()
	defer rs.files.Unlock()
	switch err := os.Remove(rs.file(u)); {
	case err == nil:
		rs.n--
		rs.known(-1)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("origin_pull: forgetting %s: %w", u, err)
	}
	return nil
}

// stale marks stale every record whose URL starts with prefix, so that
// the next request for it revalidates, and returns how many it marked.
func (rs *Records) stale(prefix string) (int, error) {
	names, err := filepath.Glob(filepath.Join(rs.dir, "*.json"))
	if err != nil {
		return 0, fmt.Errorf("origin_pull: %w", err)
	}
	n := 0
	for _, name := range names {
		var rec Record
		data, err := os.ReadFile(name)
		if err != nil || json.Unmarshal(data, &rec) != nil || !strings.HasPrefix(rec.URL, prefix) || rec.Checked.IsZero() {
			continue
		}
		rec.Checked = time.Time{}
		if err := rs.put(rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
