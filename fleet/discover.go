package fleet

import (
	"context"
	"encoding/json"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"
)

// MembersProtocol is the libp2p protocol of a member's question, in a
// swarm fleet, about the other members the answerer reaches: each edge
// needs one way into the swarm (a peer line, the DHT), and finds every
// member from there.
const MembersProtocol = "/pacman/fleet/members/1.0.0"

const (
	// discoverEvery spaces the rounds in which an edge asks its members
	// for the members they reach.
	discoverEvery = 5 * time.Second
	// maxTold bounds the members one answer tells of, and the addresses
	// told of each.
	maxTold, maxAddrs = 256, 8
	// maxDials bounds the members one round dials.
	maxDials = 16
)

// told is a member as another tells of it.
type told struct {
	ID    peer.ID  `json:"id"`
	Addrs []string `json:"addrs"`
}

// discover asks, every discoverEvery, each live member for the members it
// reaches, and dials those this edge is not connected to, until Close.
func (f *Fleet) discover() {
	t := time.NewTicker(discoverEvery)
	defer t.Stop()
	for {
		f.discoverOnce(f.probes.ctx)
		select {
		case <-f.probes.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// discoverOnce runs one round of discover.
func (f *Fleet) discoverOnce(ctx context.Context) {
	h := f.cfg.Host
	dials := 0
	for _, p := range f.live() {
		if p == f.self || ctx.Err() != nil {
			continue
		}
		for _, m := range f.askMembers(ctx, p) {
			if m.ID == f.self || h.Network().Connectedness(m.ID) == network.Connected || dials >= maxDials {
				continue
			}
			info := peer.AddrInfo{ID: m.ID}
			for _, a := range m.Addrs[:min(len(m.Addrs), maxAddrs)] {
				if ma, err := multiaddr.NewMultiaddr(a); err == nil {
					info.Addrs = append(info.Addrs, ma)
				}
			}
			dials++
			go func() {
				ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
				defer cancel()
				if err := h.Connect(ctx, info); err != nil {
					f.log.Debug("dialling a member another told of", zap.Stringer("peer", info.ID), zap.Error(err))
				}
			}()
		}
	}
}

// askMembers asks member p for the members it reaches.
func (f *Fleet) askMembers(ctx context.Context, p peer.ID) []told {
	r, done, err := f.ask(ctx, p, MembersProtocol, nil)
	if err != nil {
		return nil
	}
	defer done()
	raw, err := readFrame(r, maxAnswer)
	if err != nil {
		return nil
	}
	var list []told
	if json.Unmarshal(raw, &list) != nil || len(list) > maxTold {
		return nil
	}
	return list
}

// handleMembers tells a member of the other members this edge reaches.
func (f *Fleet) handleMembers(s network.Stream) {
	_, _, done, ok := f.accept(s, maxRequest)
	if !ok {
		return
	}
	defer done()
	asker := s.Conn().RemotePeer()
	var list []told
	for _, p := range f.live() {
		if p == f.self || p == asker || len(list) == maxTold {
			continue
		}
		m := told{ID: p}
		for _, a := range f.cfg.Host.Peerstore().Addrs(p) {
			if len(m.Addrs) < maxAddrs {
				m.Addrs = append(m.Addrs, a.String())
			}
		}
		list = append(list, m)
	}
	raw, err := json.Marshal(list)
	for err == nil && len(raw) > maxAnswer && len(list) > 0 {
		list = list[:len(list)/2]
		raw, err = json.Marshal(list)
	}
	if err == nil {
		_ = writeFrame(s, raw)
	}
}
