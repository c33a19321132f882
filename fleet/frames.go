package fleet

import (
	"bufio"
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ask sends p a one-frame request on proto and returns the reader of its
// answer; done closes the stream. The stream obeys ctx, bounded by the
// fleet's timeout.
func (f *Fleet) ask(ctx context.Context, p peer.ID, proto protocol.ID, req []byte) (answer *bufio.Reader, done func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	s, err := f.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "fleet"), p, proto)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("asking fleet member %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	done = func() { stop(); cancel(); _ = s.Close() }
	if err := writeFrame(s, req); err != nil {
		done()
		return nil, nil, fmt.Errorf("asking fleet member %s: %w", p, err)
	}
	if err := s.CloseWrite(); err != nil {
		done()
		return nil, nil, fmt.Errorf("asking fleet member %s: %w", p, err)
	}
	return bufio.NewReader(s), done, nil
}

// accept reads a member's one-frame request on s, of at most limit bytes,
// bounded by the fleet's timeout, as the context that serving it obeys;
// done closes s. A stream
// from an edge that is not a member, or with a bad frame, is reset.
func (f *Fleet) accept(s network.Stream, limit int) (ctx context.Context, req []byte, done func(), ok bool) {
	if !f.isMember(s.Conn().RemotePeer()) {
		_ = s.Reset()
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	done = func() { stop(); cancel(); _ = s.Close() }
	req, err := readFrame(bufio.NewReader(s), limit)
	if err != nil {
		_ = s.Reset()
		done()
		return nil, nil, nil, false
	}
	return ctx, req, done, true
}
