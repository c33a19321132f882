package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/pacman-cdn/pacman/hedge"
	"go.uber.org/zap"
)

// NameProtocol is the libp2p protocol of a member's question about a name
// (an origin URL) to the member that owns it.
const NameProtocol = "/pacman/fleet/name/1.0.0"

// HandoverProtocol is the libp2p protocol of the question a name's owner
// asks the member that would own the name without it: what that member
// learned of the name before this edge joined and took it over. It is
// answered from what the member knows, and never makes it fetch.
const HandoverProtocol = "/pacman/fleet/name-known/1.0.0"

// TellProtocol is the libp2p protocol of a member's word on a name that
// nobody asked for: what it learned pulling it, told to every member.
const TellProtocol = "/pacman/fleet/tell/1.0.0"

// maxAnswer bounds an answer about a name.
const maxAnswer = 16 << 10

// Answerer answers a member's question about name, and reports false when
// it does not know the name. The answer is the answerer's own encoding.
// fill says the asker leaves the name to this edge, its owner: an
// answerer that does not know the name may start learning it (pull it).
type Answerer func(ctx context.Context, name string, fill bool) ([]byte, bool)

// Learner learns a member's word on name, told to every member (Tell),
// and reports whether the name is its own; from is the member that told
// it, to fetch blocks from.
type Learner func(name string, answer []byte, from hedge.Fetcher) bool

// AddAnswerer makes a answer members' questions about names, after those
// added before it; the returned function removes it.
func (f *Fleet) AddAnswerer(a Answerer) (remove func()) { return f.answerers.add(a) }

// AddLearner makes l learn what members tell of names, after those added
// before it; the returned function removes it.
func (f *Fleet) AddLearner(l Learner) (remove func()) { return f.learners.add(l) }

// Ask asks the live member that owns name what it knows of it, and
// reports mine true when this edge owns it (or is alone). Then it asks
// the member that would own the name without this edge instead, which
// owned it until this edge joined, so that what the fleet knows of a
// name follows its ownership. known is false when the member asked does
// not know the name. The answer is signed by a member, and an answer
// that is not is an error.
func (f *Fleet) Ask(ctx context.Context, name string) (answer []byte, mine, known bool, err error) {
	if f.alone() {
		return nil, true, false, nil
	}
	sum := sha256.Sum256([]byte(name))
	live := f.live()
	p, proto := owner(live, sum[:]), protocol.ID(NameProtocol)
	if mine = p == f.self; mine {
		others := slices.DeleteFunc(live, func(q peer.ID) bool { return q == f.self })
		if len(others) == 0 {
			return nil, true, false, nil
		}
		p, proto = owner(others, sum[:]), HandoverProtocol
	}
	r, done, err := f.ask(ctx, p, proto, []byte(name))
	if err != nil {
		return nil, mine, false, err
	}
	defer done()
	code, err := r.ReadByte()
	if err != nil {
		return nil, mine, false, fmt.Errorf("reading fleet member %s: %w", p, ctxErr(ctx, err))
	}
	if code != answerBlock {
		return nil, mine, false, nil
	}
	sealed, err := readFrame(r, maxSealed)
	if err != nil {
		return nil, mine, false, fmt.Errorf("reading fleet member %s: %w", p, ctxErr(ctx, err))
	}
	if answer, err = f.open(sealed, name); err != nil {
		return nil, mine, false, fmt.Errorf("fleet member %s answered %s: %w", p, name, err)
	}
	return answer, mine, true, nil
}

// handleName answers one member's question about a name: answerBlock and
// the answer, signed, or answerNotFound. fill is false for a handover,
// which is answered from what the answerers know.
func (f *Fleet) handleName(fill bool) network.StreamHandler {
	return func(s network.Stream) { f.answer(s, fill) }
}

// answer answers the question on s.
func (f *Fleet) answer(s network.Stream, fill bool) {
	ctx, name, done, ok := f.accept(s, maxRequest)
	if !ok {
		return
	}
	defer done()
	for _, a := range f.answerers.all() {
		answer, ok := a(ctx, string(name), fill)
		if !ok || len(answer) > maxAnswer {
			continue
		}
		sealed, err := f.seal(string(name), answer)
		if err != nil {
			f.log.Warn("signing an answer about a name", zap.Error(err))
			break
		}
		if _, err := s.Write([]byte{answerBlock}); err == nil {
			_ = writeFrame(s, sealed)
		}
		return
	}
	_, _ = s.Write([]byte{answerNotFound})
}

// Tell tells every live member this edge's word on name, signed, at once,
// and returns how many took it as their own.
func (f *Fleet) Tell(ctx context.Context, name string, answer []byte) (told int, err error) {
	if len(answer) > maxAnswer {
		return 0, fmt.Errorf("telling the fleet of %s: a word of %d bytes, over %d", name, len(answer), maxAnswer)
	}
	sealed, err := f.seal(name, answer)
	if err != nil {
		return 0, fmt.Errorf("telling the fleet of %s: %w", name, err)
	}
	var mu sync.Mutex
	f.eachMember(func(p peer.ID) {
		r, done, err := f.ask(ctx, p, TellProtocol, sealed)
		if err != nil {
			return
		}
		defer done()
		if code, err := r.ReadByte(); err == nil && code == answerBlock {
			mu.Lock()
			told++
			mu.Unlock()
		}
	})
	return told, nil
}

// handleTell learns one member's signed word on a name, and answers
// answerBlock when a learner took it, answerNotFound when none did.
func (f *Fleet) handleTell(s network.Stream) {
	_, sealed, done, ok := f.accept(s, maxSealed)
	if !ok {
		return
	}
	defer done()
	name, answer, signer, err := f.openAny(sealed)
	if err != nil {
		f.log.Warn("a fleet member told a word that is not a member's", zap.Stringer("from", s.Conn().RemotePeer()), zap.Error(err))
		_ = s.Reset()
		return
	}
	for _, l := range f.learners.all() {
		if l(name, answer, member{f, s.Conn().RemotePeer()}) {
			f.log.Debug("learned a member's word on a name", zap.String("name", name), zap.Stringer("signer", signer))
			_, _ = s.Write([]byte{answerBlock})
			return
		}
	}
	_, _ = s.Write([]byte{answerNotFound})
}

// nameDomain is the domain of the signatures on members' words on names:
// a signature made for anything else does not verify as one.
const nameDomain = "pacman-fleet-name"

// maxSealed bounds a signed word on a name: the name, the answer, a key
// and a signature.
const maxSealed = maxRequest + maxAnswer + 1<<10

// word is a member's word on a name, the payload of a signed envelope.
type word struct {
	name   string
	answer []byte
}

// Domain implements record.Record.
func (*word) Domain() string { return nameDomain }

// Codec implements record.Record.
func (*word) Codec() []byte { return []byte(NameProtocol) }

// MarshalRecord implements record.Record: the name's length, the name,
// the answer.
func (w *word) MarshalRecord() ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(w.name)))
	return append(append(b, w.name...), w.answer...), nil
}

// UnmarshalRecord implements record.Record.
func (w *word) UnmarshalRecord(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxRequest || uint64(len(b)-k) < n {
		return errors.New("a word on a name with a bad name")
	}
	w.name, w.answer = string(b[k:k+int(n)]), b[k+int(n):]
	return nil
}

// seal signs this edge's answer about name with its libp2p key.
func (f *Fleet) seal(name string, answer []byte) ([]byte, error) {
	key := f.cfg.Host.Peerstore().PrivKey(f.self)
	if key == nil {
		return nil, errors.New("this edge's key is not in its peerstore")
	}
	env, err := record.Seal(&word{name, answer}, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// open returns the answer about name in sealed, which a member signed.
func (f *Fleet) open(sealed []byte, name string) ([]byte, error) {
	got, answer, _, err := f.openAny(sealed)
	if err == nil && got != name {
		err = fmt.Errorf("signed for another name, %q", got)
	}
	return answer, err
}

// openAny returns the name and answer in sealed, and the member that
// signed them; a word not signed by a member is an error.
func (f *Fleet) openAny(sealed []byte) (name string, answer []byte, signer peer.ID, err error) {
	var w word
	env, err := record.ConsumeTypedEnvelope(sealed, &w)
	if err != nil {
		return "", nil, "", fmt.Errorf("a word on a name that does not verify: %w", err)
	}
	if signer, err = peer.IDFromPublicKey(env.PublicKey); err != nil {
		return "", nil, "", fmt.Errorf("a word on a name signed by a bad key: %w", err)
	}
	if !f.isMember(signer) && signer != f.self {
		return "", nil, "", fmt.Errorf("a word on a name signed by %s, not a member", signer)
	}
	if len(w.answer) > maxAnswer {
		return "", nil, "", fmt.Errorf("a word on a name of %d bytes, over %d", len(w.answer), maxAnswer)
	}
	return w.name, w.answer, signer, nil
}
