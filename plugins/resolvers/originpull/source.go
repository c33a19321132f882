package originpull

import (
	"context"
	"errors"

	blocks "github.com/ipfs/go-block-format"
	"github.com/pacman-cdn/pacman/hedge"
	"go.uber.org/zap"
)

// leafSource is the origin a route fetches the evicted leaves of pulled
// files from, by byte range. A leaf whose bytes do not hash to its CID
// means the origin changed the file under the same validators: the
// hedge serves none of them, and the URL's record is dropped, so that
// the next request pulls the file as it is now.
type leafSource struct {
	hedge.Source
	p *Puller
}

// Open implements hedge.Source.
func (s leafSource) Open(t hedge.Target) (hedge.Fetcher, func(), error) {
	f, release, err := s.Source.Open(t)
	if err != nil || f == nil {
		return f, release, err
	}
	of, ok := f.(hedge.OriginFetcher)
	if !ok {
		return f, release, nil
	}
	return leafFetcher{of, s.p}, release, nil
}

// leafFetcher is one file's leaves on the origin.
type leafFetcher struct {
	hedge.OriginFetcher
	p *Puller
}

// Fetch implements hedge.Fetcher.
func (f leafFetcher) Fetch(ctx context.Context, w hedge.Want) (blocks.Block, error) {
	blk, err := f.OriginFetcher.Fetch(ctx, w)
	if errors.Is(err, hedge.ErrMismatch) {
		f.p.changed(f.OriginURL())
	}
	return blk, err
}

// changed drops the record of u, whose origin file no longer holds the
// bytes it was pulled as.
func (p *Puller) changed(u string) {
	if _, ok := p.records.get(u); !ok {
		return
	}
	p.cfg.Log.Warn("the origin changed a pulled file without changing its validators: pulling it again", zap.String("url", u))
	p.cfg.Observer.Changed()
	if err := p.records.drop(u); err != nil {
		p.cfg.Log.Warn("dropping a record", zap.Error(err))
	}
}

// Interface guard.
var _ hedge.OriginFetcher = leafFetcher{}
