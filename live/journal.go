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
//
// An event's end is announced once its recording is stored, and the
// recording holds its segments from then on: appending the end replaces
// what the journal kept of the stream, so an ended event costs one line,
// which keeps its name from naming a second event.
type Journal interface {
	// Append records s, which the end of an event replaces the stream's
	// record with; it is durable when Append returns.
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
	end, err := ends(s)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.streams == nil {
		j.streams = map[string][]Signed{}
	}
	if end {
		j.streams[stream] = nil
	}
	j.streams[stream] = append(j.streams[stream], s)
	return nil
}

// ends reports whether s announces the end of an event.
func ends(s Signed) (bool, error) {
	var a Announcement
	if err := json.Unmarshal(s.Payload, &a); err != nil {
		return false, fmt.Errorf("journal: decoding an announcement: %w", err)
	}
	return a.End, nil
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
	end, err := ends(s)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	name := filepath.Join(j.dir, stream+".jsonl")
	if end {
		return j.replace(name, append(line, '\n'))
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// replace makes data the whole of the file name, durably: a crash leaves
// either the old file or the new one.
func (j *FileJournal) replace(name string, data []byte) error {
	tmp, err := os.CreateTemp(j.dir, ".replace-*")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err = errors.Join(err, tmp.Close()); err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("journal: %w", err)
	}
	d, err := os.Open(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("journal: syncing its directory: %w", err)
	}
	return nil
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
