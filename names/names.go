// Package names keeps IPNS records: each is verified (V2 signature, V1 and
// V2 values agreeing, validity) before it is kept and again when it is
// read, and a record replaces another only with a higher sequence number.
package names

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
)

// ErrNoRecord says no record is kept for a name.
var ErrNoRecord = errors.New("no IPNS record for this name")

// Store keeps one IPNS record per name, as files in a directory.
type Store struct {
	dir string
}

// Open returns the store in dir, making it if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening the IPNS record store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// file is where name's record is kept: under its canonical string form,
// so every encoding of one name finds one file.
func (s *Store) file(name ipns.Name) string { return filepath.Join(s.dir, name.String()) }

// Put verifies data as a record of name and keeps it, unless the record
// kept has a sequence number as high.
func (s *Store) Put(name ipns.Name, data []byte) error {
	rec, err := verify(name, data)
	if err != nil {
		return err
	}
	if old, err := s.Get(name); err == nil {
		oldSeq, _ := old.Sequence()
		newSeq, _ := rec.Sequence()
		if newSeq <= oldSeq {
			return fmt.Errorf("the record kept for %s has sequence %d, this one %d: keeping the newer", name, oldSeq, newSeq)
		}
	}
	tmp, err := os.CreateTemp(s.dir, ".record-*")
	if err != nil {
		return fmt.Errorf("storing the record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("storing the record: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("storing the record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing the record: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.file(name)); err != nil {
		return fmt.Errorf("storing the record: %w", err)
	}
	return nil
}

// Raw returns the bytes of name's record, verified.
func (s *Store) Raw(_ context.Context, name ipns.Name) ([]byte, error) {
	data, _, err := s.read(name)
	return data, err
}

// read returns the bytes of name's record, verified, and its file's
// information. Every Put writes a new file, so a file that is the same
// (os.SameFile) holds the same record.
func (s *Store) read(name ipns.Name) ([]byte, os.FileInfo, error) {
	f, err := os.Open(s.file(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w %s", ErrNoRecord, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the record of %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the record of %s: %w", name, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(ipns.MaxRecordSize)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the record of %s: %w", name, err)
	}
	if _, err := verify(name, data); err != nil {
		return nil, nil, err
	}
	return data, fi, nil
}

// changed reports whether name's record is not the one in the file prev
// (nil: none) names, without reading it.
func (s *Store) changed(name ipns.Name, prev os.FileInfo) bool {
	fi, err := os.Stat(s.file(name))
	return err != nil || prev == nil || !os.SameFile(fi, prev)
}

// Get returns name's record, verified.
func (s *Store) Get(name ipns.Name) (*ipns.Record, error) {
	data, err := s.Raw(context.Background(), name)
	if err != nil {
		return nil, err
	}
	return ipns.UnmarshalRecord(data)
}

// Resolve returns the path name's record points to and how long it may be
// cached.
func (s *Store) Resolve(_ context.Context, name ipns.Name) (path.Path, time.Duration, error) {
	rec, err := s.Get(name)
	if err != nil {
		return nil, 0, err
	}
	return valueOf(name, rec)
}

// Names lists the names of the records kept.
func (s *Store) Names() ([]ipns.Name, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing the IPNS records: %w", err)
	}
	var out []ipns.Name
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if n, err := ipns.NameFromString(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// fresh reports whether name's record, data (just read and verified), was
// kept or confirmed within its TTL, so that it needs no lookup.
func (s *Store) fresh(name ipns.Name, data []byte) bool {
	fi, err := os.Stat(s.file(name))
	if err != nil {
		return false
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return false
	}
	_, ttl, err := valueOf(name, rec)
	return err == nil && time.Since(fi.ModTime()) < ttl
}

// confirm marks name's record as fresh again.
func (s *Store) confirm(name ipns.Name) {
	now := time.Now()
	_ = os.Chtimes(s.file(name), now, now)
}

// valueOf returns a record's value and TTL.
func valueOf(name ipns.Name, rec *ipns.Record) (path.Path, time.Duration, error) {
	p, err := rec.Value()
	if err != nil {
		return nil, 0, fmt.Errorf("the record of %s: %w", name, err)
	}
	ttl, err := rec.TTL()
	if err != nil {
		ttl = time.Minute
	}
	return p, ttl, nil
}

// verify decodes data and checks it is a valid record of name.
func verify(name ipns.Name, data []byte) (*ipns.Record, error) {
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return nil, fmt.Errorf("not an IPNS record: %w", err)
	}
	if err := ipns.ValidateWithName(rec, name); err != nil {
		return nil, fmt.Errorf("the record of %s does not verify: %w", name, err)
	}
	return rec, nil
}
