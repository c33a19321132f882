package fleet

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"go.uber.org/zap"
)

const (
	// maxRequest bounds a want's encoding: a CID and an origin URL.
	maxRequest = 8 << 10
)

// Answer codes, the first byte of a member's answer. answerWorking may
// come any number of times before the others, to a want that asked for
// progress: the owner is still filling it.
const (
	answerBlock    byte = 0
	answerNotFound byte = 1
	answerFailed   byte = 2
	answerWorking  byte = 3
	// answerNotMember: the asker is not this edge's member. A publisher
	// that edges list as a peer, and which lists none of them, says so.
	answerNotMember byte = 4
)

// heartbeat is how often an owner filling a member's want says it is
// still working on it.
const heartbeat = 100 * time.Millisecond

// request is a want as it crosses the wire.
type request struct {
	Cid       string `json:"cid"`
	Offset    int64  `json:"offset,omitempty"`
	Size      int64  `json:"size,omitempty"`
	OriginURL string `json:"origin_url,omitempty"`
	// Ahead marks a want of the member's readahead: served from what
	// this edge holds, never from the origin.
	Ahead bool `json:"ahead,omitempty"`
	// Network says the member may fetch the block from the open network:
	// the owner fills it from its peers too.
	Network bool `json:"network,omitempty"`
	// Progress asks the owner to say, every heartbeat, that it is still
	// filling the want (answerWorking). Owners that predate it ignore it.
	Progress bool `json:"progress,omitempty"`
}

// member is another edge, asked for blocks.
type member struct {
	f  *Fleet
	id peer.ID
}

// Fetch asks the member for w and checks the answer against w's CID; the
// block is kept in the store.
func (m member) Fetch(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	ctx, cancel := context.WithTimeout(ctx, m.f.cfg.Timeout)
	defer cancel()
	s, err := m.f.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "fleet"), m.id, Protocol)
	if err != nil {
		return nil, fmt.Errorf("asking fleet member %s: %w", m.id, err)
	}
	defer s.Close()
	// The stream obeys ctx: a member that goes silent costs no more than
	// the want's time.
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	req, err := json.Marshal(request{Cid: w.Cid.String(), Offset: w.Offset, Size: w.Size, OriginURL: w.OriginURL,
		Ahead: w.Ahead || w.Reason == hedge.ForReadahead, Network: w.Network, Progress: w.Progress != nil})
	if err != nil {
		return nil, err
	}
	if err := writeFrame(s, req); err != nil {
		return nil, fmt.Errorf("asking fleet member %s: %w", m.id, err)
	}
	if err := s.CloseWrite(); err != nil {
		return nil, fmt.Errorf("asking fleet member %s: %w", m.id, err)
	}
	// Every byte from the owner is progress: its heartbeats while it
	// fills the want, and the block on its way over a slow link.
	r := bufio.NewReader(progressReader{s, w.Progress})
	code, err := r.ReadByte()
	for err == nil && code == answerWorking && w.Progress != nil {
		code, err = r.ReadByte()
	}
	if err != nil {
		return nil, fmt.Errorf("reading fleet member %s: %w", m.id, ctxErr(ctx, err))
	}
	switch code {
	case answerBlock:
	case answerNotFound:
		return nil, ipld.ErrNotFound{Cid: w.Cid}
	case answerNotMember:
		// One-sided: it is no owner of this edge's blocks.
		m.f.refusers.add(m.id)
		return nil, fmt.Errorf("fleet member %s does not count this edge as its member", m.id)
	default:
		return nil, fmt.Errorf("fleet member %s could not fetch %s", m.id, w.Cid)
	}
	data, err := readFrame(r, dag.MaxBlockSize)
	if err != nil {
		return nil, fmt.Errorf("reading fleet member %s: %w", m.id, ctxErr(ctx, err))
	}
	blk, err := hedge.Verify(w.Cid, data)
	if err != nil {
		return nil, fmt.Errorf("fleet member %s: %w", m.id, err)
	}
	m.f.count(len(data), 0)
	return blk, nil
}

// handle answers one member's want.
func (f *Fleet) handle(s network.Stream) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	if !f.isMember(from) {
		// Only the operator's own edges may make this one fetch. An
		// edge that lists this one says so, so that it stops counting
		// on it; anyone else learns nothing it could not by asking.
		_ = s.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.Write([]byte{answerNotMember})
		return
	}
	select {
	case f.serving <- struct{}{}:
		defer func() { <-f.serving }()
	default:
		_, _ = s.Write([]byte{answerFailed})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	raw, err := readFrame(bufio.NewReader(s), maxRequest)
	if err != nil {
		_ = s.Reset()
		return
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		_ = s.Reset()
		return
	}
	c, err := cid.Decode(req.Cid)
	if err != nil || req.Offset < 0 || req.Size < 0 || req.Size > dag.MaxBlockSize {
		_ = s.Reset()
		return
	}
	// Serving ends when the member gives up: its reset fails the read
	// (its close of its side ends the read cleanly).
	go func() {
		if _, err := io.Copy(io.Discard, s); err != nil {
			cancel()
		}
	}()
	f.mu.RLock()
	serve := f.serve
	f.mu.RUnlock()
	var blk blocks.Block
	if serve == nil {
		err = ipld.ErrNotFound{Cid: c}
	} else {
		working := f.working(s, req.Progress)
		blk, err = serve(ctx, hedge.Want{Cid: c, Offset: req.Offset, Size: req.Size, Reason: hedge.ForFleet, OriginURL: req.OriginURL, Ahead: req.Ahead, Network: req.Network})
		if err == nil && f.cfg.Uploads != nil {
			// The block waits on the node's upload caps like every
			// other byte it sends; the member hears it is coming.
			if werr := f.cfg.Uploads.WaitUpload(ctx, from, len(blk.RawData())); werr != nil {
				working()
				_ = s.Reset()
				return
			}
		}
		working()
	}
	_ = s.SetWriteDeadline(time.Now().Add(f.cfg.Timeout))
	switch {
	case err == nil:
		data := blk.RawData()
		if _, err := s.Write([]byte{answerBlock}); err == nil && writeFrame(s, data) == nil {
			f.count(0, len(data))
		}
	case ipld.IsNotFound(err):
		_, _ = s.Write([]byte{answerNotFound})
	default:
		if ce := f.log.Check(zap.DebugLevel, "serving a fleet member's want failed"); ce != nil {
			ce.Write(zap.Stringer("peer", from), zap.Stringer("cid", c), zap.Error(err))
		}
		_, _ = s.Write([]byte{answerFailed})
	}
}

// working says answerWorking on s at once and then every heartbeat, if
// the member asked for progress, until the returned function is called;
// that function returns once nothing more is written. The first is said
// as the want is taken: a member waits on an owner that has its want from
// then on, not from its first heartbeat.
func (f *Fleet) working(s network.Stream, asked bool) (done func()) {
	if !asked {
		return func() {}
	}
	quit, stopped := make(chan struct{}), make(chan struct{})
	say := func() error {
		_ = s.SetWriteDeadline(time.Now().Add(f.cfg.Timeout))
		_, err := s.Write([]byte{answerWorking})
		return err
	}
	go func() {
		defer close(stopped)
		if say() != nil {
			return
		}
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if say() != nil {
					return
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-stopped
	}
}

// progressReader calls progress after each read that returns bytes: a
// block on its way over a slow link is progress too.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.progress != nil {
		p.progress()
	}
	return n, err
}

func writeFrame(w io.Writer, p []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("frame of %d bytes is over %d", n, limit)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ctxErr prefers ctx's error over the stream's reset that ctx caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
