package ipns

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/names"
)

const (
	keyA = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam"
	keyB = "k51qzi5uqu5dghjous0agrwavl8vzl64xckoqzwqeqwudfr74kfd11zcyk3b7l"
	keyC = "k51qzi5uqu5dhjghbwdvbo6mi40htrq6e2z4pwgp15pgv3ho1azvidttzh8yy2"
	dir  = "bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i"
)

// records are fixed answers, by name.
type records map[string]struct {
	value string
	ttl   time.Duration
	err   error
}

func (rs records) Resolve(_ context.Context, n ipns.Name) (path.Path, time.Duration, error) {
	r, ok := rs[n.String()]
	if !ok {
		return nil, 0, names.ErrNoRecord
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	p, err := path.NewPath(r.value)
	return p, r.ttl, err
}

func (rs records) Raw(_ context.Context, n ipns.Name) ([]byte, error) { return nil, names.ErrNoRecord }

// TestNames: a name resolves to its record's path with the rest of the
// URL after it and the record's TTL; a name naming a name is followed, the
// shortest TTL kept; a missing record is 404, a bad one 502, a loop 502;
// a domain is left to the next resolver.
func TestNames(t *testing.T) {
	n := Names{Records: records{
		keyA: {"/ipfs/" + dir + "/sub", time.Minute, nil},
		keyB: {"/ipns/" + keyA + "/deeper", 10 * time.Second, nil},
		keyC: {"", 0, errors.New("the record does not verify")},
	}}
	for _, c := range []struct {
		target   string
		segments []string
		ttl      time.Duration
		status   int
	}{
		{"/ipns/" + keyA + "/x.mp4", []string{"sub", "x.mp4"}, time.Minute, 0},
		{"/ipns/" + keyB + "/y", []string{"sub", "deeper", "y"}, 10 * time.Second, 0},
		{"/ipns/" + keyC, nil, 0, http.StatusBadGateway},
		{"/ipns/k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe", nil, 0, http.StatusNotFound},
	} {
		content, ok, err := n.Resolve(httptest.NewRequest("GET", c.target, nil))
		if c.status != 0 {
			var se *gateway.StatusError
			if !ok || !errors.As(err, &se) || se.Status != c.status {
				t.Errorf("%s: %v %v, want status %d", c.target, ok, err, c.status)
			}
			continue
		}
		if !ok || err != nil || content.Root.String() != dir || !slices.Equal(content.Segments, c.segments) || content.TTL != c.ttl || content.Path != c.target {
			t.Errorf("%s: %+v %v %v", c.target, content, ok, err)
		}
	}
	loop := Names{Records: records{keyA: {"/ipns/" + keyB, time.Minute, nil}, keyB: {"/ipns/" + keyA, time.Minute, nil}}}
	var se *gateway.StatusError
	if _, ok, err := loop.Resolve(httptest.NewRequest("GET", "/ipns/"+keyA, nil)); !ok || !errors.As(err, &se) || se.Status != http.StatusBadGateway {
		t.Errorf("a loop of names: %v %v, want 502", ok, err)
	}
	if _, ok, _ := n.Resolve(httptest.NewRequest("GET", "/ipns/example.org/", nil)); ok {
		t.Error("a domain was claimed")
	}
}
