package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
)

// dnsLabelMax is the longest DNS label (RFC 1034 §3.1).
const dnsLabelMax = 63

// subdomains is the subdomain gateway
// (specs.ipfs.tech/http-gateways/subdomain-gateway/): each CID and name
// served under a hostname of its own, {cid}.ipfs.{host} and
// {name}.ipns.{host}, so that web content on one origin cannot read
// another's cookies or storage.
type subdomains map[string]bool // the gateway hostnames, lower case, no port

// newSubdomains checks hosts: DNS names without a port or a scheme.
func newSubdomains(hosts []string) (subdomains, error) {
	s := subdomains{}
	for _, h := range hosts {
		name := strings.ToLower(strings.TrimSuffix(h, "."))
		if name == "" || len(name) > 253 || strings.ContainsAny(name, ":/ ") {
			return nil, fmt.Errorf("subdomain gateway host %q is not a DNS name without a port", h)
		}
		for label := range strings.SplitSeq(name, ".") {
			if label == "" || len(label) > dnsLabelMax {
				return nil, fmt.Errorf("subdomain gateway host %q is not a DNS name", h)
			}
		}
		s[name] = true
	}
	return s, nil
}

// route returns the request the resolvers are to see: on a subdomain
// origin, {id}.{ns}.{host}/path is /{ns}/{id}/path on host; on a gateway
// host, /ipfs/ and /ipns/ paths are redirected to their origin; on a path
// gateway, a key written the old way is redirected to its canonical path.
// Links and redirects keep the request's own path. It reports false when
// it has answered the request itself.
func (s subdomains) route(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if r.URL.Path == "/ipfs/" || r.URL.Path == "/ipns/" {
		if uri := r.URL.Query().Get("uri"); uri != "" {
			protocolRedirect(w, r, uri)
			return nil, false
		}
	}
	host := r.Host
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" {
		// What the client asked of the proxy in front; Host itself is
		// the client's to choose, so this grants nothing more.
		host = fwd
	}
	name, port := splitHost(host)
	if s[name] {
		loc, err := subdomainURL(r, name+port, r.URL.EscapedPath())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return nil, false
		}
		if loc != "" {
			http.Redirect(w, r, loc, http.StatusMovedPermanently)
			return nil, false
		}
		return r, true
	}
	ns, id, gw, ok := s.origin(name)
	if !ok {
		// A path gateway.
		if loc, ok := canonicalKey(r.URL); ok {
			http.Redirect(w, r, loc, http.StatusFound)
			return nil, false
		}
		return r, true
	}
	gwHost := gw + port
	if c, err := cid.Decode(id); err == nil {
		label, err := dnsLabel(c, id)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return nil, false
		}
		if label != id || ns == "ipns" && c.Type() != cid.Libp2pKey {
			// One origin per CID: its canonical label.
			loc, err := subdomainURL(r, gwHost, "/"+ns+"/"+label+r.URL.EscapedPath())
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return nil, false
			}
			http.Redirect(w, r, loc, http.StatusMovedPermanently)
			return nil, false
		}
	} else if ns == "ipfs" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid path %q: %q is not a CID", "/ipfs/"+id, id))
		return nil, false
	} else if !strings.Contains(id, ".") {
		id = uninlineDNSLink(id) // my-v--long-example-com → my.v-long.example.com
	}
	rr := r.Clone(r.Context())
	rr.Host = gwHost
	prefix := "/" + ns + "/" + id
	rr.URL.Path = prefix + r.URL.Path
	rr.URL.RawPath = ""
	if r.URL.RawPath != "" {
		rr.URL.RawPath = "/" + ns + "/" + url.PathEscape(id) + r.URL.RawPath
	}
	return rr, true
}

// canonicalKey returns the canonical path of /ipns/{key}/rest when key is
// written as a base58 multihash, the old form of a peer ID: a base36
// libp2p-key CID, which fits in a DNS label and is case-insensitive.
func canonicalKey(u *url.URL) (string, bool) {
	parts := strings.SplitN(u.EscapedPath(), "/", 4)
	if len(parts) < 3 || parts[0] != "" || parts[1] != "ipns" {
		return "", false
	}
	if _, err := mh.FromB58String(parts[2]); err != nil {
		return "", false
	}
	id, err := peer.Decode(parts[2])
	if err != nil {
		return "", false
	}
	key, err := peer.ToCid(id).StringOfBase(multibase.Base36)
	if err != nil {
		return "", false
	}
	parts[2] = key
	loc := strings.Join(parts, "/")
	if u.RawQuery != "" {
		loc += "?" + u.RawQuery
	}
	return loc, true
}

// origin splits a subdomain origin's hostname, {id}.{ns}.{gateway host},
// where id may itself hold dots (a DNSLink name not inlined).
func (s subdomains) origin(name string) (ns, id, gw string, ok bool) {
	labels := strings.Split(name, ".")
	for i := len(labels) - 1; i >= 2; i-- {
		gw = strings.Join(labels[i:], ".")
		if !s[gw] {
			continue
		}
		if ns = labels[i-1]; ns != "ipfs" && ns != "ipns" {
			return "", "", "", false
		}
		return ns, strings.Join(labels[:i-1], "."), gw, true
	}
	return "", "", "", false
}

// subdomainURL returns where a path request for escaped, /{ns}/{id}/rest,
// lives on the subdomain gateway at host, or "" when escaped is not such a
// path (it is then served as a path request, or refused by a resolver).
func subdomainURL(r *http.Request, host, escaped string) (string, error) {
	parts := strings.SplitN(escaped, "/", 4)
	if len(parts) < 3 || parts[0] != "" || parts[1] != "ipfs" && parts[1] != "ipns" || parts[2] == "" {
		return "", nil
	}
	ns, rest := parts[1], "/"
	if len(parts) == 4 {
		rest += parts[3]
	}
	id, err := url.PathUnescape(parts[2])
	if err != nil {
		return "", nil
	}
	if ns == "ipns" && !strings.Contains(id, ".") {
		if p, err := peer.Decode(id); err == nil {
			id = peer.ToCid(p).String()
		}
	}
	if c, err := cid.Decode(id); err == nil {
		codec, base := c.Type(), multibase.Encoding(multibase.Base32)
		if ns == "ipns" {
			// Keys are written in base36, and as libp2p-key CIDs.
			codec, base = cid.Libp2pKey, multibase.Base36
		}
		c = cid.NewCidV1(codec, c.Hash())
		if id, err = c.StringOfBase(base); err != nil {
			return "", fmt.Errorf("encoding %s: %w", c, err)
		}
		if id, err = dnsLabel(c, id); err != nil {
			return "", err
		}
	} else if ns == "ipfs" {
		return "", nil // not a CID: the path resolver says why
	} else if strings.Contains(id, ".") {
		// A DNSLink name, inlined into one label so that a wildcard TLS
		// certificate covers it.
		if id, err = inlineDNSLink(id); err != nil {
			return "", err
		}
	}
	loc := scheme(r) + "://" + id + "." + ns + "." + host + rest
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return loc, nil
}

// dnsLabel returns a CID's text s, or its base36 form when s is too long
// for a DNS label.
func dnsLabel(c cid.Cid, s string) (string, error) {
	if len(s) <= dnsLabelMax {
		return s, nil
	}
	s, err := cid.NewCidV1(c.Type(), c.Hash()).StringOfBase(multibase.Base36)
	if err == nil && len(s) <= dnsLabelMax {
		return s, nil
	}
	return "", fmt.Errorf("CID incompatible with DNS label length limit of %d: %s", dnsLabelMax, s)
}

// inlineDNSLink writes a domain as one DNS label: - becomes --, and .
// becomes -.
func inlineDNSLink(fqdn string) (string, error) {
	label := strings.ReplaceAll(strings.ReplaceAll(fqdn, "-", "--"), ".", "-")
	if len(label) > dnsLabelMax {
		return "", fmt.Errorf("DNSLink name %q inlined is longer than the DNS label length limit of %d", fqdn, dnsLabelMax)
	}
	return label, nil
}

// uninlineDNSLink reverses inlineDNSLink.
func uninlineDNSLink(label string) string {
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		switch {
		case label[i] != '-':
			b.WriteByte(label[i])
		case i+1 < len(label) && label[i+1] == '-':
			b.WriteByte('-')
			i++
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// protocolRedirect answers /ipfs/?uri=ipfs://{id}/path, the URL a browser
// opens for a registered ipfs:// or ipns:// protocol handler, with a
// redirect to the content path.
func protocolRedirect(w http.ResponseWriter, r *http.Request, uri string) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "ipfs" && u.Scheme != "ipns" || u.Host == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("uri %q is not an ipfs:// or ipns:// URL", uri))
		return
	}
	loc := path.Join("/", u.Scheme, u.Host, u.EscapedPath())
	if u.RawQuery != "" {
		loc += "?" + u.RawQuery
	}
	http.Redirect(w, r, loc, http.StatusMovedPermanently)
}

// scheme returns the scheme the client used: https behind a TLS proxy that
// says so, or when served over TLS.
func scheme(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https"
	}
	return "http"
}

// splitHost returns a Host's name, lower case, and its ":port" or "".
func splitHost(host string) (name, port string) {
	if h, p, err := net.SplitHostPort(host); err == nil {
		return strings.ToLower(h), ":" + p
	}
	return strings.ToLower(host), ""
}

// tunnel reports whether a CONNECT request is for this gateway itself or
// one of its subdomain origins, which proxies that tunnel each request
// (as the conformance suite's do) ask for: its answer is a 200, and the
// connection then carries ordinary requests to this server.
func (s subdomains) tunnel(r *http.Request) bool {
	if len(s) == 0 {
		return false
	}
	name, _ := splitHost(r.Host)
	if _, _, _, ok := s.origin(name); ok || s[name] {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && local.String() == r.Host
}
