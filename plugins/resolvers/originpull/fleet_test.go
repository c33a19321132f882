package originpull

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

// newFleetEdges runs k edges in one fleet, each a puller of o behind a
// gateway that takes blocks from the fleet and the origin, as the Caddy
// module wires them; obs observes every puller.
func newFleetEdges(t *testing.T, k int, o *webOrigin, obs Observer) []*edge {
	nodes := make([]*node.Node, k)
	for i := range nodes {
		nodes[i] = testutil.NewNode(t)
	}
	for i, n := range nodes {
		for _, m := range nodes[i+1:] {
			if err := n.Host().Connect(context.Background(), m.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	edges := make([]*edge, k)
	fleets := make([]*fleet.Fleet, k)
	for i, n := range nodes {
		var members []peer.ID
		for j, m := range nodes {
			if j != i {
				members = append(members, m.Host().ID())
			}
		}
		f, err := fleet.New(fleet.Config{Host: n.Host(), Members: members, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		fleets[i] = f
		p, err := New(Config{
			Origin:     o.srv.URL,
			Dir:        t.TempDir(),
			Import:     func(ctx context.Context, r io.Reader) (cid.Cid, error) { return ingest.Import(ctx, n.DAG(), r) },
			Store:      n.Blockstore(),
			Revalidate: time.Hour,
			Fleet:      f,
			Observer:   obs,
			Log:        testutil.Logger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		t.Cleanup(f.AddAnswerer(p.Answer))
		t.Cleanup(f.AddBodyServer(p.ServeBody))
		t.Cleanup(f.AddLearner(p.Learn))
		src := &origin.Source{URL: o.srv.URL}
		if err := src.Init(); err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.NewHandler(gateway.Config{
			Resolvers: []gateway.Resolver{p},
			Sources:   []hedge.Source{src},
			Fleet:     f,
			Local:     n.Store(),
			Store:     n,
			Logger:    testutil.Logger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		f.SetServe(func(ctx context.Context, w hedge.Want) (blocks.Block, error) {
			req, err := gw.Hedge().Open(hedge.Target{OriginURL: w.OriginURL}, false, nil)
			if err != nil {
				return nil, err
			}
			defer req.Release()
			return req.Get(ctx, w)
		})
		srv := httptest.NewServer(gw)
		t.Cleanup(srv.Close)
		edges[i] = &edge{p: p, n: n, url: srv.URL}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range fleets {
		for len(f.Members()) < k-1 {
			if time.Now().After(deadline) {
				t.Fatalf("an edge sees %d live members, want %d", len(f.Members()), k-1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return edges
}

// TestFleetPullsOnce: in a fleet of three, a URL is pulled once, by the
// member that owns it, whichever edge its first request came to; the
// others learn its CID from that member and take its blocks from the
// members that hold them. The origin sends the file once: the first
// response is read from the pull's body (at the owner, or relayed from
// it), and the other edges' viewers cost it nothing.
func TestFleetPullsOnce(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("fleet pull", 6<<20+99)
	o.set("/v/film.mp4", originFile{data: data, etag: `"f1"`})
	obs := &countingObserver{}
	edges := newFleetEdges(t, 3, o, obs)

	if resp, body := get(t, edges[0].url+"/v/film.mp4"); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("cold GET: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data))
	}
	for _, e := range edges {
		e.waitWarm(t, "/v/film.mp4", data)
	}
	for _, e := range edges {
		if resp, body := get(t, e.url+"/v/film.mp4"); resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Errorf("warm GET through %s: status %d, equal %v", e.url, resp.StatusCode, bytes.Equal(body, data))
		}
	}
	t.Logf("the origin sent %.3f× the file", float64(o.sent.Load())/float64(len(data)))
	if sent, max := o.sent.Load(), int64(len(data)); sent > max {
		t.Errorf("the origin sent %.2f× the file, want one pull (1×)", float64(sent)/float64(len(data)))
	}
	if n := obs.pulls(); n != 1 {
		t.Errorf("the fleet pulled the file %d times, want once", n)
	}
	for _, e := range edges {
		if rec, ok := e.p.records.get(e.p.base + "v/film.mp4"); !ok || rec.Root != cidOf(t, data) {
			t.Errorf("an edge's record: %s (%v), want %s", rec.Root, ok, cidOf(t, data))
		}
	}
	before := o.sent.Load()
	for _, e := range edges {
		get(t, e.url+"/v/film.mp4")
	}
	if extra := o.sent.Load() - before; extra != 0 {
		t.Errorf("a second round took %d bytes from the origin, want none", extra)
	}
}

// TestFleetViewersShareOnePull: viewers who start a new file on every
// edge of a fleet at once are served from the owner's one pull as it
// arrives (relayed to the other members), byte-exact, and the origin sends
// the file once. Before, every edge but the owner proxied its viewer's
// request from the origin: 3 edges cost it 3× the file, or 4× when the
// owner's viewer was proxied too.
func TestFleetViewersShareOnePull(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("fleet premiere", 16<<20)
	o.set("/v/premiere.mp4", originFile{data: data, etag: `"p1"`, rate: 8 << 20, latency: 50 * time.Millisecond}) // the pull takes 2 s
	edges := newFleetEdges(t, 3, o, &countingObserver{})

	type result struct {
		url string
		ok  bool
	}
	results := make(chan result, 2*len(edges))
	for round := range 2 {
		for _, e := range edges {
			go func() {
				hdr := []string{}
				want := data
				if round == 1 {
					hdr, want = []string{"Range", "bytes=100000-2999999"}, data[100000:3000000]
				}
				resp, body := get(t, e.url+"/v/premiere.mp4", hdr...)
				results <- result{e.url, (resp.StatusCode == 200 || resp.StatusCode == 206) && bytes.Equal(body, want)}
			}()
		}
	}
	for range 2 * len(edges) {
		if r := <-results; !r.ok {
			t.Errorf("a cold viewer through %s did not get the file's bytes", r.url)
		}
	}
	ratio := float64(o.sent.Load()) / float64(len(data))
	t.Logf("the origin sent %.3f× the file", ratio)
	if ratio > 1.01 {
		t.Errorf("the origin sent %.2f× the file for six cold viewers on three edges, want one pull (1×)", ratio)
	}
}

// TestOwnerKilledMidPull: the member that owns a URL dies while it pulls
// it. The live members left own the URL between them now: the next
// request makes one of them pull it, and both serve it under one CID.
func TestOwnerKilledMidPull(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("killed mid-pull", 4<<20+1)
	o.set("/v/film.mp4", originFile{data: data, etag: `"k"`, rate: 2 << 20})
	edges := newFleetEdges(t, 3, o, nil)
	go func() { // cold: the owner starts pulling
		if resp, err := http.Get(edges[0].url + "/v/film.mp4"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	u := edges[0].p.base + "v/film.mp4"
	var owner int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		owner = -1
		for i, e := range edges {
			e.p.mu.Lock()
			if e.p.pulling[u] != nil {
				owner = i
			}
			e.p.mu.Unlock()
		}
		if owner >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no edge started pulling")
		}
	}
	time.Sleep(300 * time.Millisecond) // part-way through
	edges[owner].p.Close()
	if err := edges[owner].n.Close(); err != nil {
		t.Fatal(err)
	}
	var left []*edge
	for i, e := range edges {
		if i != owner {
			left = append(left, e)
		}
	}
	for _, e := range left {
		get(t, e.url+"/v/film.mp4")
	}
	want := cidOf(t, data)
	for _, e := range left {
		e.waitWarm(t, "/v/film.mp4", data)
		if resp, body := get(t, e.url+"/v/film.mp4"); resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Errorf("after the owner died, through %s: status %d, equal %v", e.url, resp.StatusCode, bytes.Equal(body, data))
		}
		if rec, ok := e.p.records.get(u); !ok || rec.Root != want {
			t.Errorf("an edge left records %v (%v), want %s", rec.Root, ok, want)
		}
	}
}

// TestMembersLearnWhatWasPulled: the member that pulls a URL tells every
// other member its record, signed, before any of them is asked for the
// URL; and a member that learned it serves the URL warm (under its CID)
// even once the member that pulled it is gone, with no second pull.
// Before, members only learned a record by asking the URL's owner, so
// the owner's death made the fleet pull the file again.
func TestMembersLearnWhatWasPulled(t *testing.T) {
	o := newOrigin(t)
	data := testutil.Bytes("told", 3<<20+7)
	o.set("/v/film.mp4", originFile{data: data, etag: `"t1"`})
	obs := &countingObserver{}
	edges := newFleetEdges(t, 3, o, obs)
	if resp, body := get(t, edges[0].url+"/v/film.mp4"); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("cold GET: status %d, equal %v", resp.StatusCode, bytes.Equal(body, data))
	}
	u, want := edges[0].p.base+"v/film.mp4", cidOf(t, data)
	puller := -1
	for deadline := time.Now().Add(10 * time.Second); puller < 0; time.Sleep(10 * time.Millisecond) {
		for i, e := range edges {
			if held, _ := e.n.Blockstore().Has(context.Background(), want); held && obs.pulls() == 1 {
				puller = i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no edge pulled the file")
		}
	}
	for i, e := range edges {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if rec, ok := e.p.records.get(u); ok && rec.Root == want && rec.ETag == `"t1"` {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge %d (the puller is %d) never learned the record", i, puller)
			}
		}
	}
	edges[puller].p.Close()
	if err := edges[puller].n.Close(); err != nil {
		t.Fatal(err)
	}
	for i, e := range edges {
		if i == puller {
			continue
		}
		resp, body := get(t, e.url+"/v/film.mp4")
		if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("ETag") != `"`+want.String()+`"` {
			t.Errorf("edge %d after the puller left: status %d, ETag %s, equal %v", i, resp.StatusCode, resp.Header.Get("ETag"), bytes.Equal(body, data))
		}
	}
	if n := obs.pulls(); n != 1 {
		t.Errorf("the fleet pulled the file %d times, want once", n)
	}
}

// TestJoiningOwnerAsksThePreviousOwner: an edge that joins the fleet
// takes over the URLs it now owns, and what the fleet knows of them with
// them: asked for one it does not know, it asks the member that owned it
// before (a handover) and serves it warm, with no second pull. Before,
// the new owner pulled each of its URLs from the origin again.
func TestJoiningOwnerAsksThePreviousOwner(t *testing.T) {
	o := newOrigin(t)
	const files = 12 // the late edge owns none of them 1 time in 130
	datas := make([][]byte, files)
	for i := range datas {
		datas[i] = testutil.Bytes(fmt.Sprint("handover ", i), 200<<10+i)
		o.set(fmt.Sprintf("/v/%d.mp4", i), originFile{data: datas[i], etag: fmt.Sprintf(`"h%d"`, i)})
	}
	obs := &countingObserver{}
	edges := newFleetEdges(t, 3, o, obs)
	late := edges[2]
	for _, e := range edges[:2] {
		if err := late.n.Host().Network().ClosePeer(e.n.Host().ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range datas {
		path := fmt.Sprintf("/v/%d.mp4", i)
		get(t, edges[0].url+path)
		edges[0].waitWarm(t, path, data)
		edges[1].waitWarm(t, path, data)
	}
	if n := obs.pulls(); n != files {
		t.Fatalf("two edges pulled %d files, want %d", n, files)
	}
	for _, e := range edges[:2] {
		if err := late.n.Host().Connect(context.Background(), e.n.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range datas {
		resp, body := get(t, late.url+fmt.Sprintf("/v/%d.mp4", i))
		if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("ETag") != `"`+cidOf(t, data).String()+`"` {
			t.Errorf("file %d through the edge that joined: status %d, ETag %s, equal %v", i, resp.StatusCode, resp.Header.Get("ETag"), bytes.Equal(body, data))
		}
	}
	if n := obs.pulls(); n != files {
		t.Errorf("the fleet pulled %d times for %d files, want each once", n, files)
	}
}
