package live

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Journal keeps what a publisher announced, so that a restart or a reload
// continues its streams: the same sequence numbers are never announced
// twice with other segments, and an event's recording lists every segment
// announced, not only those since the last start.
type Journal interface {
	// Append records s; it is durable when Append returns.
	Append(stream string, s Signed) error
	// Read returns the announcements recorded of stream, in the order
	// they were appended.
	Read(stream string) ([]Signed, error)
	// Streams lists the streams with announcements recorded.
	Streams() ([]string, error)
}

// memJournal is a Journal that lasts as long as the process: a relay
// without a data directory uses it.
type memJournal struct {
	mu      sync.Mutex // guards streams
	streams map[string][]Signed
}

func (j *memJournal) Append(stream string, s Signed) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.streams == nil {
		j.streams = map[string][]Signed{}
	}
	j.streams[stream] = append(j.streams[stream], s)
	return nil
}

func (j *memJournal) Read(stream string) ([]Signed, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Signed(nil), j.streams[stream]...), nil
}

func (j *memJournal) Streams() ([]string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]string, 0, len(j.streams))
	for k := range j.streams {
		out = append(out, k)
	}
	return out, nil
}

// FileJournal is a Journal in a directory: one file per stream, one JSON
// line per announcement, synced as each is appended.
type FileJournal struct {
	dir string
	mu  sync.Mutex // serializes appends
}

// NewFileJournal returns the journal in dir, creating dir if needed.
func NewFileJournal(dir string) (*FileJournal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening the live journal: %w", err)
	}
	return &FileJournal{dir: dir}, nil
}

// Append implements Journal.
func (j *FileJournal) Append(stream string, s Signed) error {
	if !ValidName(stream) {
		return fmt.Errorf("journal: %q is not a stream name", stream)
	}
	line, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("journal: encoding an announcement: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(j.dir, stream+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Streams implements Journal.
func (j *FileJournal) Streams() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(j.dir, "*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []string
	for _, name := range names {
		if stream := strings.TrimSuffix(filepath.Base(name), ".jsonl"); ValidName(stream) {
			out = append(out, stream)
		}
	}
	return out, nil
}

// Read implements Journal. A last line cut short by a crash is skipped.
func (j *FileJournal) Read(stream string) ([]Signed, error) {
	if !ValidName(stream) {
		return nil, fmt.Errorf("journal: %q is not a stream name", stream)
	}
	f, err := os.Open(filepath.Join(j.dir, stream+".jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	var out []Signed
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxWindowAnswer)
	for sc.Scan() {
		var s Signed
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal: reading %s: %w", stream, err)
	}
	return out, nil
}

// Interface guards.
var (
	_ Journal = (*memJournal)(nil)
	_ Journal = (*FileJournal)(nil)
)
