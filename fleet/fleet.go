// Package fleet lets the edges in front of one origin share its work. Each
// block has an owner among the live members, chosen by rendezvous
// (highest-random-weight) hashing of its CID, so members joining or leaving
// move only their own share. An edge that misses a block asks its owner
// over a libp2p protocol; the owner fills the miss from the origin once
// for the whole fleet. Only members may ask, and every answer is checked
// against the block's CID. Names (an origin's URLs) have owners too: a
// member asks a name's owner what it knows of it (Ask, AddAnswerer), and
// for the body it is taking from the origin, as it arrives (Body,
// AddBodyServer); a member tells every other what it learned of a name
// (Tell, AddLearner). Every word on a name is signed by the member that
// gave it, and one not signed by a member is refused.
package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/hedge"
	"go.uber.org/zap"
)

// Protocol is the libp2p protocol of a member's want to another.
const Protocol = "/pacman/fleet/block/1.0.0"

// maxServing bounds the wants a member serves at once.
const maxServing = 256

// probeEvery spaces the probes of one connected member whose protocols
// this edge does not know (see probe).
const probeEvery = 2 * time.Second

// Serve answers a member's want: from the store, or by the hedge's owned
// sources. It must verify what it returns.
type Serve func(ctx context.Context, w hedge.Want) (blocks.Block, error)

// Uploads caps what this edge sends peers: the node's upload caps.
type Uploads interface {
	// WaitUpload returns once size bytes to p are within the caps, or
	// ctx is done.
	WaitUpload(ctx context.Context, p peer.ID, size int) error
}

// Config describes a fleet.
type Config struct {
	// Host is this edge's libp2p host. Required.
	Host host.Host
	// Members are the other edges. Each is trusted: it may ask this edge
	// to fetch from the origin.
	Members []peer.ID
	// Swarm makes every peer of this edge's private swarm a member as
	// well: only holders of the swarm key can connect, so each is the
	// operator's own. Members find each other through the swarm: each
	// tells the members it reaches of the others it knows (see
	// MembersProtocol). Set it only on a private swarm (swarm_key).
	Swarm bool
	// Uploads, if not nil, caps the blocks sent to members, with
	// everything else the node uploads. Nil means no cap.
	Uploads Uploads
	// Timeout bounds one want to a member. Default 30s.
	Timeout time.Duration
	// Logger receives the fleet's logs. Nil means none.
	Logger *zap.Logger
}

// Fleet is this edge's view of its fleet: it implements hedge.Fleet, and
// serves members' wants once SetServe is called.
type Fleet struct {
	cfg     Config
	self    peer.ID
	members map[peer.ID]bool
	serving chan struct{}
	log     *zap.Logger

	mu    sync.RWMutex // guards serve
	serve Serve

	probes probes
	// refusers are the members that said this edge is not theirs, and
	// when: one-sided, they own none of its blocks for a while.
	refusers refusers

	counts    counts
	answerers registry[Answerer]
	learners  registry[Learner]
	bodies    registry[BodyServer]
	// bodiesServing holds one token per body streamed to a member.
	bodiesServing chan struct{}
	purge         purge
}

// probes are the times members were last probed, and the probes' context.
type probes struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards last
	last   map[peer.ID]time.Time
}

// refusedFor is how long a member that refused this edge owns none of its
// blocks: then it is asked again, as a reload of its configuration may
// have made this edge its member.
const refusedFor = time.Minute

// refusers are the members that refused this edge, and when.
type refusers struct {
	mu sync.Mutex // guards at
	at map[peer.ID]time.Time
}

// add records that p refused this edge now.
func (r *refusers) add(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[peer.ID]time.Time)
	}
	r.at[p] = time.Now()
}

// refused reports whether p refused this edge within refusedFor.
func (r *refusers) refused(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[p]
	return ok && time.Since(at) < refusedFor
}

// New returns the fleet of cfg.Members and registers its protocol on the
// host. Close removes it.
func New(cfg Config) (*Fleet, error) {
	if cfg.Host == nil {
		return nil, fmt.Errorf("a fleet needs a host")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	f := &Fleet{
		cfg:     cfg,
		self:    cfg.Host.ID(),
		members: make(map[peer.ID]bool, len(cfg.Members)),
		serving: make(chan struct{}, maxServing),
		log:     cfg.Logger,
	}
	f.bodiesServing = make(chan struct{}, maxBodies)
	f.probes.ctx, f.probes.cancel = context.WithCancel(context.Background())
	f.probes.last = make(map[peer.ID]time.Time)
	for _, p := range cfg.Members {
		if p != f.self {
			f.members[p] = true
		}
	}
	cfg.Host.SetStreamHandler(Protocol, f.handle)
	cfg.Host.SetStreamHandler(NameProtocol, f.handleName(true))
	cfg.Host.SetStreamHandler(HandoverProtocol, f.handleName(false))
	cfg.Host.SetStreamHandler(BodyProtocol, f.handleBody)
	cfg.Host.SetStreamHandler(PurgeProtocol, f.handlePurge)
	cfg.Host.SetStreamHandler(TellProtocol, f.handleTell)
	if cfg.Swarm {
		cfg.Host.SetStreamHandler(MembersProtocol, f.handleMembers)
		go f.discover()
	}
	return f, nil
}

// SetServe sets how members' wants are answered; until it is called, and
// after it is called with nil, they are answered "not found".
func (f *Fleet) SetServe(s Serve) {
	f.mu.Lock()
	f.serve = s
	f.mu.Unlock()
}

// Close stops serving members and probing them.
func (f *Fleet) Close() {
	f.probes.cancel()
	f.cfg.Host.RemoveStreamHandler(Protocol)
	f.cfg.Host.RemoveStreamHandler(NameProtocol)
	f.cfg.Host.RemoveStreamHandler(HandoverProtocol)
	f.cfg.Host.RemoveStreamHandler(BodyProtocol)
	f.cfg.Host.RemoveStreamHandler(PurgeProtocol)
	f.cfg.Host.RemoveStreamHandler(TellProtocol)
	f.cfg.Host.RemoveStreamHandler(MembersProtocol)
}

// isMember reports whether p is one of the operator's edges.
func (f *Fleet) isMember(p peer.ID) bool {
	return p != f.self && (f.members[p] || f.cfg.Swarm)
}

// alone reports whether this edge has no members to ask.
func (f *Fleet) alone() bool { return len(f.members) == 0 && !f.cfg.Swarm }

// live returns the members connected now that speak the protocol and
// have not refused this edge, and this edge, sorted.
func (f *Fleet) live() []peer.ID {
	ids := []peer.ID{f.self}
	candidates := slices.Collect(maps.Keys(f.members))
	if f.cfg.Swarm {
		for _, p := range f.cfg.Host.Network().Peers() {
			if !f.members[p] {
				candidates = append(candidates, p)
			}
		}
	}
	for _, p := range candidates {
		if f.cfg.Host.Network().Connectedness(p) != network.Connected || f.refusers.refused(p) {
			continue
		}
		if protos, err := f.cfg.Host.Peerstore().SupportsProtocols(p, Protocol); err == nil && len(protos) > 0 {
			ids = append(ids, p)
		} else {
			f.probe(p)
		}
	}
	slices.Sort(ids)
	return ids
}

// probe asks a connected member whether it speaks the protocol, at most
// once per probeEvery, in the background. What a peer speaks is learnt
// from identify, which runs when the connection opens: a member whose
// fleet started after that is known only through identify's push, and a
// lost or reordered push would leave it out of the fleet for as long as
// the connection lasts. A stream that negotiates the protocol records it
// in the peerstore (the host does), and the next live() counts the member.
func (f *Fleet) probe(p peer.ID) {
	f.probes.mu.Lock()
	if time.Since(f.probes.last[p]) < probeEvery {
		f.probes.mu.Unlock()
		return
	}
	f.probes.last[p] = time.Now()
	f.probes.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(f.probes.ctx, probeEvery)
		defer cancel()
		s, err := f.cfg.Host.NewStream(network.WithNoDial(ctx, "fleet probe"), p, Protocol)
		if err != nil {
			f.log.Debug("fleet member does not answer the protocol yet", zap.Stringer("peer", p), zap.Error(err))
			return
		}
		// The member reads no want and drops the stream.
		_ = s.Close()
	}()
}

// owner returns the member of ids that owns key (a block's multihash, a
// name's hash): the highest weight of hash(member, key).
func owner(ids []peer.ID, key []byte) peer.ID {
	var best peer.ID
	var bestW uint64
	for _, p := range ids {
		h := sha256.New()
		h.Write([]byte(p))
		h.Write(key)
		w := binary.BigEndian.Uint64(h.Sum(nil))
		if best == "" || w > bestW {
			best, bestW = p, w
		}
	}
	return best
}

// Owner implements hedge.Fleet.
func (f *Fleet) Owner(c cid.Cid) hedge.Fetcher {
	if f.alone() {
		return nil
	}
	if p := owner(f.live(), c.Hash()); p != f.self {
		return member{f, p}
	}
	return nil
}

// Members implements hedge.Fleet.
func (f *Fleet) Members() []hedge.Fetcher {
	var out []hedge.Fetcher
	for _, p := range f.live() {
		if p != f.self {
			out = append(out, member{f, p})
		}
	}
	return out
}

// counts are the block bytes received from and sent to members.
type counts struct {
	mu       sync.Mutex // guards from and to
	from, to int64
}

// Counts returns the block bytes received from and sent to members.
func (f *Fleet) Counts() (from, to int64) {
	f.counts.mu.Lock()
	defer f.counts.mu.Unlock()
	return f.counts.from, f.counts.to
}

func (f *Fleet) count(from, to int) {
	f.counts.mu.Lock()
	f.counts.from += int64(from)
	f.counts.to += int64(to)
	f.counts.mu.Unlock()
}

var _ hedge.Fleet = (*Fleet)(nil)
