package fleet

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// BodyProtocol is the libp2p protocol of a member's request for the body
// of a name (an origin URL's file) that the name's owner is taking from
// the origin: the owner streams it as it arrives, so that the fleet's
// viewers of a new file cost the origin one copy of it.
const BodyProtocol = "/pacman/fleet/body/1.0.0"

// bodyIdle bounds how long a body stream may carry nothing, either way,
// before it is reset: a body has no total bound, a stalled one does.
const bodyIdle = 30 * time.Second

// maxBodies bounds the bodies a member streams to others at once.
const maxBodies = 64

// BodyServer serves a member's request for the body of name: a head (the
// server's own encoding of what the body is) and the body itself, read as
// it arrives and closed when the stream ends; false when it has none.
type BodyServer func(ctx context.Context, name string) (head []byte, body io.ReadCloser, ok bool)

// AddBodyServer makes b serve members' requests for bodies, after those
// added before it; the returned function removes it.
func (f *Fleet) AddBodyServer(b BodyServer) (remove func()) { return f.bodies.add(b) }

// Body asks the live member that owns name for its body. It reports asked
// false when this edge owns the name (or is alone), and found false when
// the owner has no body of it. The body ends at its end, or with an error
// when the owner's copy ends short or the stream stalls for bodyIdle;
// closing it ends the stream.
func (f *Fleet) Body(ctx context.Context, name string) (head []byte, body io.ReadCloser, asked, found bool, err error) {
	if f.alone() {
		return nil, nil, false, false, nil
	}
	sum := sha256.Sum256([]byte(name))
	p := owner(f.live(), sum[:])
	if p == f.self {
		return nil, nil, false, false, nil
	}
	s, err := f.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "fleet"), p, BodyProtocol)
	if err != nil {
		return nil, nil, true, false, fmt.Errorf("asking fleet member %s for a body: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	fail := func(err error) ([]byte, io.ReadCloser, bool, bool, error) {
		stop()
		_ = s.Reset()
		return nil, nil, true, false, fmt.Errorf("asking fleet member %s for a body: %w", p, ctxErr(ctx, err))
	}
	if err := writeFrame(&idleWriter{s}, []byte(name)); err != nil {
		return fail(err)
	}
	if err := s.CloseWrite(); err != nil {
		return fail(err)
	}
	r := newIdleReader(s)
	code, err := r.ReadByte()
	if err != nil {
		return fail(err)
	}
	if code != answerBlock {
		stop()
		_ = s.Close()
		return nil, nil, true, false, nil
	}
	head, err = readFrame(r.Reader, maxAnswer)
	if err != nil {
		return fail(err)
	}
	return head, &bodyReader{idleReader: r, s: s, stop: stop}, true, true, nil
}

// bodyReader is a body as a member streams it: a reset or a stall is an
// error, the stream's end its end.
type bodyReader struct {
	*idleReader
	s    network.Stream
	stop func() bool
}

func (b *bodyReader) Close() error {
	b.stop()
	return b.s.Reset() // what was not read is not wanted
}

// handleBody serves one member's request for a body: answerBlock, the
// head and the body, or answerNotFound.
func (f *Fleet) handleBody(s network.Stream) {
	if !f.isMember(s.Conn().RemotePeer()) {
		_ = s.Reset()
		return
	}
	select {
	case f.bodiesServing <- struct{}{}:
		defer func() { <-f.bodiesServing }()
	default:
		_ = s.Reset() // busy: the member proxies
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newIdleReader(s)
	name, err := readFrame(r.Reader, maxRequest)
	if err != nil {
		_ = s.Reset()
		return
	}
	for _, b := range f.bodies.all() {
		head, body, ok := b(ctx, string(name))
		if !ok || len(head) > maxAnswer {
			if body != nil {
				body.Close()
			}
			continue
		}
		defer body.Close()
		w := &idleWriter{s: s}
		if _, err := w.Write([]byte{answerBlock}); err != nil || writeFrame(w, head) != nil {
			_ = s.Reset()
			return
		}
		buf := make([]byte, 32<<10)
		// A member that resets the stream (its viewers left) ends the
		// copy at the next write.
		if _, err := io.CopyBuffer(w, body, buf); err != nil {
			_ = s.Reset() // the member sees a body cut short
			return
		}
		_ = s.Close()
		return
	}
	_, _ = s.Write([]byte{answerNotFound})
	_ = s.Close()
}

// idleReader reads a stream whose deadline moves on with every read, so
// that only a stall of bodyIdle ends it.
type idleReader struct {
	*bufio.Reader
}

func newIdleReader(s network.Stream) *idleReader {
	return &idleReader{bufio.NewReader(readerFunc(func(b []byte) (int, error) {
		_ = s.SetReadDeadline(time.Now().Add(bodyIdle))
		return s.Read(b)
	}))}
}

// readerFunc is a function as an io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// idleWriter writes a stream whose deadline moves on with every write.
type idleWriter struct{ s network.Stream }

func (w *idleWriter) Write(b []byte) (int, error) {
	_ = w.s.SetWriteDeadline(time.Now().Add(bodyIdle))
	return w.s.Write(b)
}
