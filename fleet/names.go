package fleet

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// NameProtocol is the libp2p protocol of a member's question about a name
// (an origin URL) to the member that owns it.
const NameProtocol = "/pacman/fleet/name/1.0.0"

// maxAnswer bounds an answer about a name.
const maxAnswer = 16 << 10

// Answerer answers a member's question about name, and reports false when
// it does not know the name. The answer is the answerer's own encoding.
type Answerer func(ctx context.Context, name string) ([]byte, bool)

// AddAnswerer makes a answer members' questions about names, after those
// added before it; the returned function removes it.
func (f *Fleet) AddAnswerer(a Answerer) (remove func()) { return f.answerers.add(a) }

// Ask asks the live member that owns name what it knows of it. It reports
// asked false when this edge owns the name (or is alone); known false
// when the owner does not know it.
func (f *Fleet) Ask(ctx context.Context, name string) (answer []byte, asked, known bool, err error) {
	if f.alone() {
		return nil, false, false, nil
	}
	sum := sha256.Sum256([]byte(name))
	p := owner(f.live(), sum[:])
	if p == f.self {
		return nil, false, false, nil
	}
	r, done, err := f.ask(ctx, p, NameProtocol, []byte(name))
	if err != nil {
		return nil, true, false, err
	}
	defer done()
	code, err := r.ReadByte()
	if err != nil {
		return nil, true, false, fmt.Errorf("reading fleet member %s: %w", p, ctxErr(ctx, err))
	}
	if code != answerBlock {
		return nil, true, false, nil
	}
	answer, err = readFrame(r, maxAnswer)
	if err != nil {
		return nil, true, false, fmt.Errorf("reading fleet member %s: %w", p, ctxErr(ctx, err))
	}
	return answer, true, true, nil
}

// handleName answers one member's question about a name: answerBlock and
// the answer, or answerNotFound.
func (f *Fleet) handleName(s network.Stream) {
	ctx, name, done, ok := f.accept(s)
	if !ok {
		return
	}
	defer done()
	for _, a := range f.answerers.all() {
		if answer, ok := a(ctx, string(name)); ok && len(answer) <= maxAnswer {
			if _, err := s.Write([]byte{answerBlock}); err == nil {
				_ = writeFrame(s, answer)
			}
			return
		}
	}
	_, _ = s.Write([]byte{answerNotFound})
}
