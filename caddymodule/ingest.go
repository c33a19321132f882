package caddymodule

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/live"
)

func init() {
	caddy.RegisterModule(Ingest{})
}

// defaultMaxSegmentSize is the largest segment taken by default.
const defaultMaxSegmentSize = 64 << 20

// IngestToken lets an encoder publish.
type IngestToken struct {
	// Token is the secret an encoder sends as "Authorization: Bearer
	// <token>". Placeholders such as {env.LIVE_TOKEN} are replaced.
	Token string `json:"token"`
	// Streams limits the token to these stream names. Default: every
	// stream.
	Streams []string `json:"streams,omitempty"`
}

// Ingest is the http.handlers.pacman_live_ingest handler: it takes a live
// HLS stream that an encoder PUTs (ffmpeg -f hls -method PUT) to
// .../{stream}/index.m3u8, imports each segment as it arrives and
// announces it, signed with the node's key, to every edge that trusts the
// key. At #EXT-X-ENDLIST, or DELETE of the playlist, the event becomes one
// directory served at /ipfs/{cid}/index.m3u8.
type Ingest struct {
	// Tokens are the encoders' secrets; at least one is required.
	Tokens []IngestToken `json:"tokens,omitempty"`
	// MaxSegmentSize is the largest segment taken, in bytes; larger ones
	// are refused with 413. Default: 64 MiB.
	MaxSegmentSize int64 `json:"max_segment_size,omitempty"`
	// PartTarget is a low-latency stream's part target (LL-HLS
	// PART-TARGET): an encoder's fragments must not be longer, and
	// edges list them as parts. Zero, the default, takes no
	// low-latency stream.
	PartTarget caddy.Duration `json:"part_target,omitempty"`

	ingest *live.Ingest
}

// CaddyModule returns the Caddy module information.
func (Ingest) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pacman_live_ingest",
		New: func() caddy.Module { return new(Ingest) },
	}
}

// envPlaceholder matches a token given as an environment variable.
var envPlaceholder = regexp.MustCompile(`\{env\.([^}]+)\}`)

// Provision sets the handler up over the pacman app's node.
func (h *Ingest) Provision(ctx caddy.Context) error {
	app, err := AppFrom(ctx)
	if err != nil {
		return err
	}
	if h.MaxSegmentSize == 0 {
		h.MaxSegmentSize = defaultMaxSegmentSize
	}
	repl := caddy.NewReplacer()
	tokens := make([]live.Token, len(h.Tokens))
	for i, t := range h.Tokens {
		secret := repl.ReplaceKnown(t.Token, "")
		if secret == "" {
			if m := envPlaceholder.FindStringSubmatch(t.Token); m != nil {
				return fmt.Errorf("pacman_live_ingest: token %s: the environment variable %s is unset or empty", t.Token, m[1])
			}
		}
		tokens[i] = live.Token{Secret: secret, Streams: t.Streams}
	}
	e := app.edge
	h.ingest = &live.Ingest{
		Relay:          e.Live(),
		Import:         e.ImportSegment,
		ImportPart:     e.ImportPart,
		Join:           e.JoinParts,
		PartTarget:     time.Duration(h.PartTarget),
		Discard:        e.DiscardSegment,
		Directory:      e.Record,
		Tokens:         tokens,
		MaxSegmentSize: h.MaxSegmentSize,
		Log:            ctx.Logger(),
	}
	return nil
}

// Validate checks the settings.
func (h *Ingest) Validate() error {
	if len(h.Tokens) == 0 {
		return fmt.Errorf("pacman_live_ingest needs at least one token")
	}
	for _, t := range h.ingest.Tokens {
		if len(t.Secret) < 16 {
			return fmt.Errorf("pacman_live_ingest: a token must have at least 16 characters")
		}
		for _, s := range t.Streams {
			if !live.Publishable(s) {
				return fmt.Errorf("pacman_live_ingest: %q is not a stream name (1 to 64 of A-Z, a-z, 0-9, _ and -)", s)
			}
		}
	}
	if h.MaxSegmentSize < 0 {
		return fmt.Errorf("pacman_live_ingest: max_segment_size must not be negative")
	}
	if pt := time.Duration(h.PartTarget); pt != 0 && (pt < 100*time.Millisecond || pt > 5*time.Second) {
		return fmt.Errorf("pacman_live_ingest: part_target %v: from 100ms to 5s", pt)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; the ingest route
// answers every request itself.
func (h *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.ingest.ServeHTTP(w, r)
	return nil
}

// parseIngest reads
//
//	pacman_live_ingest [<matcher>] {
//		token <secret> [<stream>...]
//		max_segment_size <size>
//		part_target <duration>
//	}
func parseIngest(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	in := new(Ingest)
	return in, in.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (h *Ingest) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "token":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Tokens = append(h.Tokens, IngestToken{Token: args[0], Streams: args[1:]})
		case "max_segment_size":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := parseSize(v)
			if err != nil {
				return d.Errf("max_segment_size: %v", err)
			}
			h.MaxSegmentSize = n
		case "part_target":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("part_target: %v", err)
			}
			h.PartTarget = caddy.Duration(dur)
		default:
			return d.Errf("unknown pacman_live_ingest option %q", d.Val())
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Ingest)(nil)
	_ caddy.Provisioner           = (*Ingest)(nil)
	_ caddy.Validator             = (*Ingest)(nil)
	_ caddyfile.Unmarshaler       = (*Ingest)(nil)
)
