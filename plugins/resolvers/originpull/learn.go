package originpull

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/dag"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/httpurl"
	"go.uber.org/zap"
)

// indexTimeout bounds the fetch of a told file's index.
const indexTimeout = time.Minute

// tell tells the fleet's members the record of a URL pulled here, so
// that they serve it warm without asking its owner, and keep serving it
// should the owner leave.
func (p *Puller) tell(rec Record) {
	if p.cfg.Fleet == nil {
		return
	}
	data, err := json.Marshal(rec)
	if err == nil {
		ctx, cancel := context.WithTimeout(p.ctx, askTimeout)
		_, err = p.cfg.Fleet.Tell(ctx, rec.URL, data)
		cancel()
	}
	if err != nil {
		p.cfg.Log.Warn("telling the fleet what was pulled", zap.String("url", rec.URL), zap.Error(err))
	}
}

// Learn keeps the record of a URL of this origin that a fleet member
// pulled and told the fleet of (the fleet checks that a member signed
// it), and fetches the file's index from that member in the background:
// then the URL is warm here, with no question to its owner, and stays
// warm should the member that pulled it leave. It reports whether the
// URL is this origin's. A record here that the origin confirmed later is
// kept instead.
func (p *Puller) Learn(u string, answer []byte, from hedge.Fetcher) bool {
	path, ok := strings.CutPrefix(u, p.base)
	if !ok || !httpurl.SafePath("/"+path) {
		return false
	}
	var rec Record
	if json.Unmarshal(answer, &rec) != nil || rec.URL != u || !rec.Root.Defined() || rec.Size < 0 {
		p.cfg.Log.Warn("a fleet member told a malformed record", zap.String("url", u))
		return true
	}
	if old, ok := p.records.get(u); ok && old.Checked.After(rec.Checked) {
		return true
	}
	if err := p.records.put(rec); err != nil {
		p.cfg.Log.Warn("keeping a fleet member's record", zap.Error(err))
		return true
	}
	p.fetchIndex(rec, from)
	return true
}

// fetchIndex fetches the index of rec's file (its root and inner nodes,
// not its leaves) from the member that holds it, in the background,
// unless every slot is busy: the URL's first request then asks its owner.
func (p *Puller) fetchIndex(rec Record, from hedge.Fetcher) {
	select {
	case p.indexing <- struct{}{}:
	default:
		return
	}
	p.wg.Go(func() {
		defer func() { <-p.indexing }()
		ctx, cancel := context.WithTimeout(p.ctx, indexTimeout)
		defer cancel()
		ix, err := dag.NewIndex(64)
		if err == nil {
			for _, err = range ix.Leaves(ctx, indexGetter{p.cfg.Store, from}, rec.Root, 0, max(rec.Size, 1)) {
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			p.cfg.Log.Debug("fetching a told file's index", zap.String("url", rec.URL), zap.Stringer("cid", rec.Root), zap.Error(err))
		}
	})
}

// indexGetter reads blocks from the store, and fetches the ones it lacks
// from a fleet member into it.
type indexGetter struct {
	store Store
	from  hedge.Fetcher
}

// GetBlock implements dag.BlockGetter.
func (g indexGetter) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if blk, err := g.store.Get(ctx, c); err == nil {
		return blk, nil
	}
	blk, err := g.from.Fetch(ctx, hedge.Want{Cid: c, Ahead: true})
	if err != nil {
		return nil, err
	}
	if err := g.store.Put(ctx, blk); err != nil {
		return nil, fmt.Errorf("keeping %s: %w", c, err)
	}
	return blk, nil
}

// has reports whether the store holds c.
func (p *Puller) has(ctx context.Context, c cid.Cid) bool {
	held, err := p.cfg.Store.Has(ctx, c)
	return err == nil && held
}
