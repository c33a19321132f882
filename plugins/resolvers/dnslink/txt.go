package dnslink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/miekg/dns"
)

// maxDoHAnswer bounds a DNS-over-HTTPS answer read.
const maxDoHAnswer = 64 << 10

// NewTXTLookup returns the TXT lookup of a DNS server: "" is the system's
// resolver; host:port or udp://host:port a server asked over UDP (and
// TCP when an answer is truncated); tcp://host:port one asked over TCP
// only; and an https:// URL a DNS-over-HTTPS endpoint (RFC 8484).
func NewTXTLookup(server string) (TXTLookup, error) {
	switch {
	case server == "":
		return net.DefaultResolver.LookupTXT, nil
	case strings.HasPrefix(server, "https://"):
		u, err := url.Parse(server)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("DNS-over-HTTPS endpoint %q is not a URL", server)
		}
		return (&dohClient{url: u.String(), client: &http.Client{}}).lookupTXT, nil
	}
	network, addr := "udp", server
	if n, a, ok := strings.Cut(server, "://"); ok {
		if n != "udp" && n != "tcp" {
			return nil, fmt.Errorf("DNS server %q: the scheme must be udp://, tcp:// or https://", server)
		}
		network, addr = n, a
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("DNS server %q is not host:port: %v", server, err)
	}
	var d net.Dialer
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, n, _ string) (net.Conn, error) {
		if network == "tcp" {
			n = "tcp"
		}
		return d.DialContext(ctx, n, addr)
	}}
	return r.LookupTXT, nil
}

// dohClient asks a DNS-over-HTTPS endpoint.
type dohClient struct {
	url    string
	client *http.Client
}

// lookupTXT asks for name's TXT records with a POST of the wire-format
// query, and returns each record's strings joined, as net.LookupTXT does.
func (d *dohClient) lookupTXT(ctx context.Context, name string) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	q.Id = 0 // RFC 8484 §4.1: cache-friendly
	wire, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the query for %s: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/dns-message")
	req.Header.Set("Accept", "application/dns-message")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", d.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("asking %s: %s", d.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoHAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", d.url, err)
	}
	if len(body) > maxDoHAnswer {
		return nil, fmt.Errorf("the answer of %s is over %d bytes", d.url, maxDoHAnswer)
	}
	var a dns.Msg
	if err := a.Unpack(body); err != nil {
		return nil, fmt.Errorf("the answer of %s does not parse: %w", d.url, err)
	}
	switch a.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	default:
		return nil, fmt.Errorf("%s answered %s for %s", d.url, dns.RcodeToString[a.Rcode], name)
	}
	var txts []string
	for _, rr := range a.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, dns.Fqdn(name)) {
			txts = append(txts, strings.Join(t.Txt, ""))
		}
	}
	return txts, nil
}
