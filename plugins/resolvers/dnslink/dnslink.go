// Package dnslink is the pacman.resolvers.dnslink module: /ipns/{domain}
// through the domain's DNSLink (a _dnslink TXT record, or the IPFS_NS_MAP
// environment variable in Kubo's format), and, if asked, any path of a
// site whose Host has a DNSLink.
package dnslink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/pacman-cdn/pacman/caddymodule"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/gateway/contentpath"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
	"github.com/pacman-cdn/pacman/names"
)

func init() {
	caddy.RegisterModule(new(Resolver))
}

const (
	// lookupTimeout bounds one TXT lookup.
	lookupTimeout = 5 * time.Second
	// maxCached bounds the domains whose answers are kept.
	maxCached = 4096
)

// TXTLookup returns a name's TXT records; net.Resolver.LookupTXT is one.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// Links resolves DNSLink names.
type Links struct {
	// Static maps domains to content paths, as IPFS_NS_MAP does; it wins
	// over DNS.
	Static map[string]string
	// TXT looks up _dnslink records; nil means DNS is not asked.
	TXT TXTLookup
	// IPNS resolves the keys DNSLinks may name; nil means they cannot.
	IPNS names.Resolver
	// TTL is how long an answer (or its absence) is kept and responses
	// may be cached.
	TTL time.Duration
	// ByHost also serves every path of a request whose Host has a
	// DNSLink, as a DNSLink gateway (the site's own domain).
	ByHost bool

	mu    sync.Mutex // guards cache
	cache map[string]cached
}

type cached struct {
	value string // "" when the domain has no DNSLink
	until time.Time
}

// ParseNSMap reads IPFS_NS_MAP's format: domain:/ipfs/cid,domain2:/ipns/name.
func ParseNSMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		domain, value, ok := strings.Cut(entry, ":")
		if !ok || domain == "" || !strings.HasPrefix(value, "/ipfs/") && !strings.HasPrefix(value, "/ipns/") {
			return nil, fmt.Errorf("IPFS_NS_MAP entry %q is not domain:/ipfs/... or domain:/ipns/...", entry)
		}
		m[strings.ToLower(domain)] = value
	}
	return m, nil
}

// Resolve implements gateway.Resolver.
func (l *Links) Resolve(r *http.Request) (gateway.Content, bool, error) {
	var domain string
	var rest []string
	if name, segs, err := contentpath.ParseName(r.URL, "ipns"); err == nil {
		if _, err := ipns.NameFromString(name); err == nil {
			return gateway.Content{}, false, nil // a key, not a domain
		}
		domain, rest = name, segs
	} else if l.ByHost && !strings.HasPrefix(r.URL.Path, "/ipfs/") {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		v, err := l.lookup(r.Context(), host)
		if err != nil || v == "" {
			return gateway.Content{}, false, nil
		}
		domain = host
		if rest, err = contentpath.Segments(r.URL.EscapedPath()); err != nil {
			return gateway.Content{}, true, err
		}
	} else {
		return gateway.Content{}, false, nil
	}
	c, err := l.resolve(r.Context(), domain, rest)
	if err != nil {
		return gateway.Content{}, true, err
	}
	c.Path = r.URL.EscapedPath()
	if l.ByHost && !strings.HasPrefix(c.Path, "/ipns/") {
		// The site's own host: its _redirects file applies.
		c.Path, c.Site = "/ipns/"+domain+c.Path, true
	}
	return c, true, nil
}

// resolve follows domain's DNSLink, and the names it leads to.
func (l *Links) resolve(ctx context.Context, domain string, rest []string) (gateway.Content, error) {
	ttl := l.TTL
	name := domain
	for range names.MaxDepth {
		v, err := l.lookup(ctx, name)
		if err != nil {
			return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("looking up the DNSLink of %s: %v", name, err))
		}
		if v == "" {
			return gateway.Content{}, gateway.Errorf(http.StatusNotFound, fmt.Sprintf("%s has no DNSLink", name))
		}
		p, err := path.NewPath(v)
		if err != nil {
			return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("the DNSLink of %s, %q, is not a content path", name, v))
		}
		if l.IPNS != nil {
			if p, ttl, err = names.Follow(ctx, l.IPNS, p, ttl); err != nil {
				return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("resolving the DNSLink of %s: %v", name, err))
			}
		}
		segs := p.Segments()
		if p.Namespace() == path.IPNSNamespace {
			if _, err := ipns.NameFromString(segs[1]); err == nil {
				return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("%s names an IPNS key, and no IPNS records are kept here", name))
			}
			name = segs[1]
			rest = append(append([]string{}, segs[2:]...), rest...)
			continue
		}
		ip, err := path.NewImmutablePath(p)
		if err != nil {
			return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, err.Error())
		}
		return gateway.Content{Root: ip.RootCid(), Segments: append(append([]string{}, segs[2:]...), rest...), TTL: max(ttl, time.Second)}, nil
	}
	return gateway.Content{}, gateway.Errorf(http.StatusBadGateway, fmt.Sprintf("%s leads through more than %d names", domain, names.MaxDepth))
}

// lookup returns domain's DNSLink value, "" if it has none.
func (l *Links) lookup(ctx context.Context, domain string) (string, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if v, ok := l.Static[domain]; ok {
		return v, nil
	}
	if l.TXT == nil {
		return "", nil
	}
	l.mu.Lock()
	if c, ok := l.cache[domain]; ok && time.Now().Before(c.until) {
		l.mu.Unlock()
		return c.value, nil
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	txts, err := l.TXT(ctx, "_dnslink."+domain)
	var v string
	if err != nil {
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			return "", err
		}
	}
	for _, t := range txts {
		if s, ok := strings.CutPrefix(t, "dnslink="); ok {
			v = s
			break
		}
	}
	l.mu.Lock()
	if l.cache == nil || len(l.cache) >= maxCached {
		l.cache = map[string]cached{}
	}
	l.cache[domain] = cached{value: v, until: time.Now().Add(l.TTL)}
	l.mu.Unlock()
	return v, nil
}

// Resolver is the Caddy module.
type Resolver struct {
	// TTL is how long a DNSLink answer is kept, and responses cached.
	// Default: 1m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// ByHost serves a site whose Host has a DNSLink at its own paths.
	ByHost bool `json:"by_host,omitempty"`
	// NoDNS asks no DNS server: only IPFS_NS_MAP.
	NoDNS bool `json:"no_dns,omitempty"`
	// DNS is the server asked for _dnslink TXT records: host:port or
	// udp://host:port, tcp://host:port, or a DNS-over-HTTPS URL
	// (https://…/dns-query). Default: the system's resolver.
	DNS string `json:"dns,omitempty"`

	*Links `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (*Resolver) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "pacman.resolvers.dnslink",
		New: func() caddy.Module { return new(Resolver) },
	}
}

// Provision reads IPFS_NS_MAP and sets up the lookups.
func (r *Resolver) Provision(ctx caddy.Context) error {
	app, err := caddymodule.AppFrom(ctx)
	if err != nil {
		return err
	}
	if r.TTL == 0 {
		r.TTL = caddy.Duration(time.Minute)
	}
	static, err := ParseNSMap(os.Getenv("IPFS_NS_MAP"))
	if err != nil {
		return fmt.Errorf("dnslink: %w", err)
	}
	r.Links = &Links{Static: static, TTL: time.Duration(r.TTL), ByHost: r.ByHost, IPNS: app.Names()}
	switch {
	case r.NoDNS && r.DNS != "":
		return fmt.Errorf("dnslink: no_dns and dns %s contradict each other", r.DNS)
	case !r.NoDNS:
		if r.Links.TXT, err = NewTXTLookup(r.DNS); err != nil {
			return fmt.Errorf("dnslink: %w", err)
		}
	}
	return nil
}

// UnmarshalCaddyfile reads
//
//	resolve dnslink {
//		ttl <duration>
//		by_host
//		no_dns
//		dns <host:port|udp://…|tcp://…|https://…>
//	}
func (r *Resolver) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "ttl":
			if err := caddyargs.Duration(d, &r.TTL); err != nil {
				return err
			}
		case "by_host":
			r.ByHost = true
		case "no_dns":
			r.NoDNS = true
		case "dns":
			if !d.Args(&r.DNS) || d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown dnslink option %q", d.Val())
		}
	}
	return nil
}

// Interface guards.
var (
	_ gateway.Resolver      = (*Resolver)(nil)
	_ caddy.Provisioner     = (*Resolver)(nil)
	_ caddyfile.Unmarshaler = (*Resolver)(nil)
)
