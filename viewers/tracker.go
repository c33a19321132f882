package viewers

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxSwarm bounds a swarm's name, in bytes.
const MaxSwarm = 256

// maxAnswer bounds the viewers one answer names: enough to find holders,
// few enough that a viewer dials a small mesh.
const maxAnswer = 16

// ErrFull says the edge tracks as many viewers as it may.
var ErrFull = errors.New("the edge has as many viewers as it takes (max_viewers)")

// tracker knows which viewers play which swarm.
type tracker struct {
	mu     sync.Mutex // guards swarms and where
	max    int
	swarms map[string][]peer.ID // each swarm's viewers, newest last
	where  map[peer.ID]string
}

func newTracker(max int) *tracker {
	return &tracker{max: max, swarms: map[string][]peer.ID{}, where: map[peer.ID]string{}}
}

// join puts p in swarm (out of any other it was in) and returns the other
// viewers of the swarm still connected, newest first.
func (t *tracker) join(p peer.ID, swarm string, connected func(peer.ID) bool) ([]peer.ID, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.where[p]; ok {
		t.remove(p, old)
	} else if len(t.where) >= t.max {
		return nil, ErrFull
	}
	var others []peer.ID
	kept := t.swarms[swarm][:0]
	for _, m := range t.swarms[swarm] {
		if !connected(m) {
			delete(t.where, m)
			continue
		}
		kept = append(kept, m)
	}
	for _, m := range slices.Backward(kept) {
		if len(others) == maxAnswer {
			break
		}
		others = append(others, m)
	}
	t.swarms[swarm] = append(kept, p)
	t.where[p] = swarm
	return others, nil
}

// leave takes p out of its swarm.
func (t *tracker) leave(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if swarm, ok := t.where[p]; ok {
		t.remove(p, swarm)
	}
}

// remove takes p out of swarm. The caller holds t.mu.
func (t *tracker) remove(p peer.ID, swarm string) {
	delete(t.where, p)
	ms := slices.DeleteFunc(t.swarms[swarm], func(m peer.ID) bool { return m == p })
	if len(ms) == 0 {
		delete(t.swarms, swarm)
		return
	}
	t.swarms[swarm] = ms
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.where)
}

// A request is the swarm's name, a varint length and its UTF-8 bytes. An
// answer is a varint length and JSON: the peers, or an error.
type answer struct {
	Peers []string `json:"peers,omitempty"`
	Error string   `json:"error,omitempty"`
}

// readRequest reads a swarm's name.
func readRequest(r io.Reader) (string, error) {
	br := byteReader{r}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return "", fmt.Errorf("reading the swarm's name: %w", err)
	}
	if n == 0 || n > MaxSwarm {
		return "", fmt.Errorf("a swarm's name is 1 to %d bytes, not %d", MaxSwarm, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("reading the swarm's name: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("a swarm's name is UTF-8")
	}
	return string(b), nil
}

// writeAnswer writes a.
func writeAnswer(w io.Writer, a answer) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(body))), body...))
	return err
}

// byteReader reads one byte at a time from a stream, for the varint.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}
