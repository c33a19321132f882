package scheduler

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Holders are the peers a session knows to hold its content.
type Holders struct {
	mu        sync.Mutex
	m         map[peer.ID]*holding
	cands     []peer.ID // the candidates, nil until needed again
	lastProbe time.Time
}

// holding is what a session heard from a peer: blocks, HAVEs, DONT_HAVEs.
type holding struct {
	got, haves, lacks int
}

// candidates returns the peers worth asking: every peer that delivered a
// block, and those that announced one unless they refused many since.
// The slice is shared: callers must not change it.
func (h *Holders) candidates() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cands == nil {
		h.cands = make([]peer.ID, 0, len(h.m))
		for p, hd := range h.m {
			if hd.candidate() {
				h.cands = append(h.cands, p)
			}
		}
	}
	return h.cands
}

func (hd *holding) candidate() bool {
	return hd.got > 0 || hd.haves > 0 && hd.lacks < lacksTolerated
}

// toProbe returns, at most once per probeEvery and once h has heard from
// any peer, the connected peers that h has heard neither a block nor a
// HAVE from and that have not refused often.
func (h *Holders) toProbe(connected func() []peer.ID, now time.Time) []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.m) == 0 || now.Sub(h.lastProbe) < probeEvery {
		// Knowing no one, the session asks through bitswap, which asks
		// every connected peer.
		return nil
	}
	h.lastProbe = now
	var ps []peer.ID
	for _, p := range connected() {
		if hd := h.m[p]; hd == nil || hd.got+hd.haves == 0 && hd.lacks < lacksTolerated {
			ps = append(ps, p)
		}
	}
	return ps
}

func (h *Holders) has(p peer.ID, delivered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := h.entry(p)
	was := hd.candidate()
	if delivered {
		hd.got++
	} else {
		hd.haves++
	}
	if hd.candidate() != was {
		h.cands = nil
	}
}

func (h *Holders) lacks(p peer.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := h.entry(p)
	was := hd.candidate()
	hd.lacks++
	if hd.candidate() != was {
		h.cands = nil
	}
}

// entry returns p's holding, adding it. The caller holds h.mu.
func (h *Holders) entry(p peer.ID) *holding {
	hd := h.m[p]
	if hd == nil {
		if h.m == nil {
			h.m = map[peer.ID]*holding{}
		}
		hd = &holding{}
		h.m[p] = hd
	}
	return hd
}
