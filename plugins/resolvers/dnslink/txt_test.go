package dnslink

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone answers TXT questions from a map; other names are NXDOMAIN.
type zone map[string][]string

func (z zone) answer(q *dns.Msg) *dns.Msg {
	a := new(dns.Msg)
	a.SetReply(q)
	txts, ok := z[strings.ToLower(q.Question[0].Name)]
	if !ok {
		a.Rcode = dns.RcodeNameError
		return a
	}
	for _, t := range txts {
		// A long value is split into strings of at most 255 bytes, as
		// zone files do.
		var parts []string
		for len(t) > 255 {
			parts, t = append(parts, t[:255]), t[255:]
		}
		a.Answer = append(a.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: append(parts, t)})
	}
	return a
}

func (z zone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) { _ = w.WriteMsg(z.answer(q)) }

// TestTXTLookupServers asks a DNS server started here, over UDP and TCP,
// and a DNS-over-HTTPS endpoint, for the same zone: DNSLinks are found
// (values over 255 bytes joined), absent names are "not found", and the
// resolver follows them.
func TestTXTLookupServers(t *testing.T) {
	long := "dnslink=/ipfs/" + dir + "/" + strings.Repeat("a", 300)
	z := zone{"_dnslink.site.example.": {"v=spf1 -all", "dnslink=/ipfs/" + dir + "/www"}, "_dnslink.long.example.": {long}}

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: udp, Handler: z}, {Listener: tcp, Handler: z}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	var dohAsked int
	doh := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dohAsked++
		body, _ := io.ReadAll(r.Body)
		var q dns.Msg
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" || q.Unpack(body) != nil {
			http.Error(w, "not a DNS query", http.StatusBadRequest)
			return
		}
		wire, _ := z.answer(&q).Pack()
		w.Header().Set("Content-Type", "application/dns-message")
		_, _ = w.Write(wire)
	}))
	t.Cleanup(doh.Close)

	if _, err := NewTXTLookup(doh.URL + "/dns-query"); err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{udp.LocalAddr().String(), "udp://" + udp.LocalAddr().String(), "tcp://" + tcp.Addr().String(), doh.URL + "/dns-query"} {
		lookup, err := NewTXTLookup(server)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(server, "https://") {
			// The test's endpoint has a certificate of its own.
			lookup = (&dohClient{url: server, client: doh.Client()}).lookupTXT
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := lookup(ctx, "_dnslink.site.example")
		if err != nil || !slices.Contains(got, "dnslink=/ipfs/"+dir+"/www") {
			t.Errorf("%s: %q, %v", server, got, err)
		}
		if got, err := lookup(ctx, "_dnslink.long.example"); err != nil || !slices.Equal(got, []string{long}) {
			t.Errorf("%s: a long value: %d strings, %v", server, len(got), err)
		}
		_, err = lookup(ctx, "_dnslink.absent.example")
		if dnsErr, ok := err.(*net.DNSError); !ok || !dnsErr.IsNotFound {
			t.Errorf("%s: an absent name: %v, want not found", server, err)
		}
		cancel()

		l := &Links{TXT: lookup, TTL: time.Minute}
		c, err := l.resolve(context.Background(), "site.example", []string{"index.html"})
		if err != nil || c.Root.String() != dir || !slices.Equal(c.Segments, []string{"www", "index.html"}) {
			t.Errorf("%s: resolved to %v %v, %v", server, c.Root, c.Segments, err)
		}
	}
	if dohAsked == 0 {
		t.Error("the DNS-over-HTTPS endpoint was never asked")
	}
	for _, bad := range []string{"ftp://x:53", "no-port", "https://", "http://127.0.0.1:80/dns-query"} {
		if _, err := NewTXTLookup(bad); err == nil {
			t.Errorf("DNS server %q accepted", bad)
		}
	}
}
