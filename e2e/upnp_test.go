package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacman-cdn/pacman/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestPortMapThroughNAT: a seeder behind a home router that speaks UPnP
// IGD, with nat_port_map on, has the router forward a port to it and
// announces the router's outside address with that port. A gateway behind
// another NAT, with no relay anywhere, dials that address and fetches a
// file byte-exact over the direct connection. Without a mapping the router
// lets nothing in: the seeder's own port is shut from outside.
func TestPortMapThroughNAT(t *testing.T) {
	notShort(t)
	n := newNetwork(t)
	igd := n.igd(t, "natA", "192.168.1.1", "6.0.1.2")

	seedDir, seedID := newDataDir(t)
	data := testutil.Bytes("port-map", 4<<20+3)
	file := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := addContent(t, seedDir, file)
	start := time.Now()
	n.caddy(t, "seed", seedDir, `
		nat_port_map on
		relay_client off`)

	// The seeder asks for a mapping of its TCP port, and then tells
	// peers the router's address with the mapped port.
	var announced string
	for deadline := time.Now().Add(30 * time.Second); announced == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the seeder announced no address at its router within 30 s (mappings made: %v)", igd.made())
		}
		ext, ok := igd.mapping("TCP", 4001)
		if !ok {
			continue
		}
		want := fmt.Sprintf("/ip4/6.0.1.2/tcp/%d", ext)
		for _, a := range n.listen(t, "seed") {
			if a == want {
				announced = a
			}
		}
	}
	t.Logf("mapped and announced after %v: %s", time.Since(start), announced)

	// The router lets in only what was mapped.
	if out, err := exec.Command("ip", "netns", "exec", n.prefix+"gw", "timeout", "3", "bash", "-c", "</dev/tcp/6.0.1.2/4001").CombinedOutput(); err == nil {
		t.Fatalf("the seeder's own port answered from outside with no mapping for it: the NAT lets anything in (%s)", out)
	}

	gwDir, _ := newDataDir(t)
	n.caddy(t, "gw", gwDir, `
		peer `+announced+`/p2p/`+seedID.String()+`
		relay_client off`)
	got := filepath.Join(t.TempDir(), "got.bin")
	out := n.run(t, "gw", 60*time.Second, n.curl, "-sS", "--max-time", "50", "-o", got, "-w", "%{http_code}", "http://127.0.0.1:8080/ipfs/"+c)
	body, _ := os.ReadFile(got)
	if out != "200" || !bytes.Equal(body, data) {
		t.Fatalf("the file through the gateway: status %s, %d bytes, equal %v", out, len(body), bytes.Equal(body, data))
	}
	for _, p := range n.peers(t, "gw") {
		if p.ID == seedID.String() && (p.Relayed || p.Addr != announced) {
			t.Errorf("the gateway reaches the seeder at %s (relayed %v), want %s direct", p.Addr, p.Relayed, announced)
		}
	}
}

// listen returns the addresses the node in namespace ns tells peers, from
// its admin endpoint's /pacman/stat.
func (n *network) listen(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.prefix+ns, "curl", "-sf", "--max-time", "5", "http://localhost:2019/pacman/stat").Output()
	if err != nil {
		t.Fatalf("%s: reading its status: %v", ns, err)
	}
	var st []struct{ Listen []string }
	if err := json.Unmarshal(out, &st); err != nil || len(st) != 1 {
		t.Fatalf("%s: status %q: %v", ns, out, err)
	}
	return st[0].Listen
}

// igd is the UPnP Internet Gateway Device of a router namespace, as
// miniupnpd is on a home router: it answers SSDP searches on its LAN,
// describes a WANIPConnection:1 service, and makes each port mapping asked
// for into iptables rules that forward the router's outside port to the
// asker.
type igd struct {
	t      *testing.T
	ns     string // the router's namespace
	wan    string
	mu     sync.Mutex
	mapped map[string]int // "TCP/4001" → the outside port
}

const (
	ssdpGroup    = "239.255.255.250:1900"
	igdDevice    = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	wanConnDev   = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
	wanIPService = "urn:schemas-upnp-org:service:WANIPConnection:1"
)

// igd serves UPnP on the interface "lan" of the router namespace router,
// whose LAN address is lan and outside address wan, until the test ends.
func (n *network) igd(t *testing.T, router, lan, wan string) *igd {
	t.Helper()
	g := &igd{t: t, ns: n.prefix + router, wan: wan, mapped: map[string]int{}}
	web := inNetns(t, g.ns, func() (net.Listener, error) { return net.Listen("tcp4", lan+":0") })
	location := fmt.Sprintf("http://%s/rootDesc.xml", web.Addr())
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(web) }()
	t.Cleanup(func() { _ = srv.Close() })

	search := inNetns(t, g.ns, func() (*net.UDPConn, error) {
		iface, err := net.InterfaceByName("lan")
		if err != nil {
			return nil, err
		}
		group, _ := net.ResolveUDPAddr("udp4", ssdpGroup)
		return net.ListenMulticastUDP("udp4", iface, group)
	})
	reply := inNetns(t, g.ns, func() (*net.UDPConn, error) { return net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(lan)}) })
	done := make(chan struct{})
	t.Cleanup(func() { search.Close(); reply.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			k, from, err := search.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if st := searchTarget(buf[:k]); st != "" {
				msg := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nSERVER: test/1 UPnP/1.0 igd/1\r\n" +
					"ST: " + st + "\r\nUSN: uuid:pacman-test-igd::" + st + "\r\nLOCATION: " + location + "\r\n\r\n"
				_, _ = reply.WriteToUDP([]byte(msg), from)
			}
		}
	}()
	return g
}

// searchTarget returns what an SSDP M-SEARCH looks for, if the device is
// that: "" for anything else.
func searchTarget(msg []byte) string {
	lines := strings.Split(string(msg), "\r\n")
	if !strings.HasPrefix(lines[0], "M-SEARCH ") {
		return ""
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "ST") {
			continue
		}
		switch v = strings.TrimSpace(v); v {
		case "ssdp:all", "upnp:rootdevice":
			return igdDevice
		case igdDevice, wanConnDev, wanIPService:
			return v
		}
	}
	return ""
}

// ServeHTTP serves the device description and the service's SOAP actions.
func (g *igd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rootDesc.xml" {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		fmt.Fprint(w, `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>`+igdDevice+`</deviceType><friendlyName>test router</friendlyName><UDN>uuid:pacman-test-igd</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><UDN>uuid:pacman-test-wan</UDN>
<deviceList><device><deviceType>`+wanConnDev+`</deviceType><UDN>uuid:pacman-test-conn</UDN>
<serviceList><service><serviceType>`+wanIPService+`</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`)
		return
	}
	if r.URL.Path != "/ctl/IPConn" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	_, action, _ := strings.Cut(strings.Trim(r.Header.Get("SOAPAction"), `"`), "#")
	var args struct {
		ExternalPort int    `xml:"Body>AddPortMapping>NewExternalPort"`
		Protocol     string `xml:"Body>AddPortMapping>NewProtocol"`
		InternalPort int    `xml:"Body>AddPortMapping>NewInternalPort"`
		Client       string `xml:"Body>AddPortMapping>NewInternalClient"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err := xml.Unmarshal(body, &args); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var out string
	switch action {
	case "GetNATRSIPStatus":
		out = "<NewRSIPAvailable>0</NewRSIPAvailable><NewNATEnabled>1</NewNATEnabled>"
	case "GetExternalIPAddress":
		out = "<NewExternalIPAddress>" + g.wan + "</NewExternalIPAddress>"
	case "AddPortMapping":
		if err := g.forward(args.Protocol, args.InternalPort, args.ExternalPort, args.Client); err != nil {
			g.t.Errorf("mapping %s %d: %v", args.Protocol, args.ExternalPort, err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	case "DeletePortMapping":
	default:
		http.Error(w, "no such action", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`, action, wanIPService, out, action)
}

// forward makes the router send what reaches its outside address at
// external to client:internal, once per mapping.
func (g *igd) forward(proto string, internal, external int, client string) error {
	key := fmt.Sprintf("%s/%d", proto, internal)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mapped[key] == external {
		return nil
	}
	p := strings.ToLower(proto)
	dest := fmt.Sprintf("%s:%d", client, internal)
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", p, "-d", g.wan, "--dport", fmt.Sprint(external), "-j", "DNAT", "--to-destination", dest},
		// Ahead of the rule that drops unsolicited packets.
		{"-I", "FORWARD", "1", "-i", "wan", "-p", p, "-d", client, "--dport", fmt.Sprint(internal), "-j", "ACCEPT"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", g.ns, "iptables"}, rule...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s: %v\n%s", strings.Join(rule, " "), err, out)
		}
	}
	g.mapped[key] = external
	return nil
}

// mapping returns the outside port mapped to a port of the asker.
func (g *igd) mapping(proto string, internal int) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ext, ok := g.mapped[fmt.Sprintf("%s/%d", proto, internal)]
	return ext, ok
}

// made lists the mappings made.
func (g *igd) made() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.mapped))
	for k, v := range g.mapped {
		out[k] = v
	}
	return out
}

// inNetns runs open, which makes a socket, in the network namespace ns. A
// socket stays in the namespace it was made in, whichever thread uses it
// after.
func inNetns[T any](t *testing.T, ns string, open func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays locked and in the namespace: it ends with
		// this goroutine, and no other goroutine runs on it.
		runtime.LockOSThread()
		var r result
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			r.err = err
			ch <- r
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("entering %s: %w", ns, err)
			ch <- r
			return
		}
		r.v, r.err = open()
		ch <- r
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("opening a socket in %s: %v", ns, r.err)
	}
	return r.v
}
