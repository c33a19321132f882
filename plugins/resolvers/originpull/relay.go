package originpull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pacman-cdn/pacman/httpurl"
	"go.uber.org/zap"
)

// bodyHead is what a URL's owner tells a member of the body it streams:
// its length (-1 if the origin did not say) and the origin's headers that
// a response carries.
type bodyHead struct {
	Size   int64       `json:"size"`
	Header http.Header `json:"header"`
}

// ServeBody serves a fleet member's request for the body of u while this
// edge pulls it: the origin's body as it arrives, read from the pull's
// spool, so the members' cold viewers cost the origin nothing more. It
// reports false when no pull of u is under way here, or its body is not
// to be kept.
func (p *Puller) ServeBody(ctx context.Context, u string) ([]byte, io.ReadCloser, bool) {
	path, ok := strings.CutPrefix(u, p.base)
	if !ok || !httpurl.SafePath("/"+path) {
		return nil, nil, false
	}
	p.mu.Lock()
	sp := p.pulling[u]
	if sp != nil {
		sp.acquire()
	}
	p.mu.Unlock()
	if sp == nil {
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	select {
	case <-sp.ready:
	case <-ctx.Done():
	}
	if ctx.Err() != nil || !sp.usable {
		sp.release()
		return nil, nil, false
	}
	head, err := json.Marshal(bodyHead{Size: sp.size, Header: sp.header})
	if err != nil {
		sp.release()
		return nil, nil, false
	}
	return head, &spoolReader{sp: sp, ctx: p.ctx}, true
}

// relay starts streaming u's body from its owner, which is pulling it
// from the origin, into a spool that this edge's cold requests for u read:
// the fleet's viewers of a new file cost the origin one copy of it. A
// relay already under way is reused; when every relay is busy, or the
// owner has no body to stream, the requests are proxied.
func (p *Puller) relay(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.relays[u] != nil || p.pulling[u] != nil || p.ctx.Err() != nil {
		return
	}
	sp := p.newSpool(p.relaying, u)
	if sp == nil {
		return
	}
	p.relays[u] = sp
	p.wg.Go(func() {
		err := p.fill(u, sp)
		sp.end(err)
		if err != nil {
			p.cfg.Log.Debug("relaying from the URL's owner ended", zap.String("url", u), zap.Error(err))
		}
		p.mu.Lock()
		delete(p.relays, u)
		sp.release()
		p.mu.Unlock()
		<-p.relaying
	})
}

// fill copies u's body from its owner into sp.
func (p *Puller) fill(u string, sp *spool) error {
	asked := time.Now()
	raw, body, _, found, err := p.cfg.Fleet.Body(p.ctx, u)
	if err != nil || !found {
		return err // the spool never opens: its readers proxy
	}
	defer body.Close()
	var head bodyHead
	if err := json.Unmarshal(raw, &head); err != nil || head.Size < -1 || head.Size > p.cfg.MaxPullSize {
		return fmt.Errorf("the URL's owner described its body badly: %q", raw)
	}
	sp.open(head.Header, head.Size, time.Since(asked))
	n, err := io.Copy(sp, io.LimitReader(body, p.cfg.MaxPullSize+1))
	switch {
	case err != nil:
		return fmt.Errorf("relaying from the URL's owner after %d bytes: %w", n, err)
	case n > p.cfg.MaxPullSize || (head.Size >= 0 && n != head.Size):
		return fmt.Errorf("the URL's owner sent %d bytes of the %d it announced", n, head.Size)
	}
	return nil
}
