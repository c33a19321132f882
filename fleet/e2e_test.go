package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pacman-cdn/pacman/fleet"
	"github.com/pacman-cdn/pacman/gateway"
	"github.com/pacman-cdn/pacman/hedge"
	"github.com/pacman-cdn/pacman/ingest"
	"github.com/pacman-cdn/pacman/internal/testutil"
	"github.com/pacman-cdn/pacman/node"
	"github.com/pacman-cdn/pacman/plugins/sources/origin"
)

// countingOrigin serves data as a plain web server does and counts the
// body bytes it sends.
type countingOrigin struct {
	data []byte
	sent atomic.Int64
	srv  *httptest.Server
	// slow delays each answer, as an origin far away or loaded does.
	slow time.Duration
	// requests counts the requests, answered or given up.
	requests atomic.Int64
}

func newCountingOrigin(t *testing.T, data []byte) *countingOrigin {
	return newSlowOrigin(t, data, 0)
}

// newSlowOrigin is a counting origin that answers each request after slow.
func newSlowOrigin(t *testing.T, data []byte, slow time.Duration) *countingOrigin {
	o := &countingOrigin{data: data, slow: slow}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		time.Sleep(o.slow)
		http.ServeContent(countingWriter{w, &o.sent}, r, "film.mp4", time.Time{}, bytes.NewReader(o.data))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// edge is one fleet member with its gateway.
type edge struct {
	node  *node.Node
	fleet *fleet.Fleet
	url   string
	obs   *counter
}

// counter counts origin egress as the hedge reports it.
type counter struct {
	mu      sync.Mutex
	fetched map[string]int
	served  map[string]int
}

func (c *counter) Delivered(src string, n int, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served[src] += n
}
func (c *counter) Fetched(src string, reason hedge.Reason, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetched[src+"/"+string(reason)] += n
}
func (c *counter) Rejected(string) {}

// newFleet starts k edges peered with each other, each holding only the
// index of the file (its leaves come from the fleet or the origin), behind
// the origin, under the default closed policy.
func newFleet(t *testing.T, k int, data []byte, o *countingOrigin) ([]*edge, cid.Cid) {
	t.Helper()
	full := blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	root, err := ingest.Import(context.Background(), merkledag.NewDAGService(blockservice.New(full, nil)), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node.Node, k)
	for i := range nodes {
		nodes[i] = testutil.NewNode(t)
	}
	// Each pair connects once, one way, before the nodes keep each other
	// as static peers: peering both ways at once makes TCP simultaneous
	// opens on loopback (libp2p dials from its listen port), which fail
	// security negotiation and wait out a redial back-off.
	for i, n := range nodes {
		for _, m := range nodes[i+1:] {
			if err := n.Host().Connect(context.Background(), m.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	edges := make([]*edge, k)
	for i, n := range nodes {
		var members []peer.ID
		for j, m := range nodes {
			if j != i {
				members = append(members, m.Host().ID())
				n.AddPeer(m.AddrInfo())
			}
		}
		copyIndex(t, full, n.Blockstore(), root)
		f, err := fleet.New(fleet.Config{Host: n.Host(), Members: members, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		// origin_after at its default of 1s: an owner slower than that
		// (a loaded machine) has its leaves fetched by the others too.
		src := &origin.Source{URL: o.srv.URL + "/film.mp4?{http.request.uri.query}"}
		if err := src.Init(); err != nil {
			t.Fatal(err)
		}
		obs := &counter{fetched: map[string]int{}, served: map[string]int{}}
		gw, err := gateway.NewHandler(gateway.Config{
			Resolvers: []gateway.Resolver{gateway.IPFSPaths{}},
			Sources:   []hedge.Source{src},
			Fleet:     f,
			Local:     n.Store(),
			Store:     n,
			Expander:  testutil.Placeholders,
			Blocks:    obs,
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
		edges[i] = &edge{node: n, fleet: f, url: srv.URL + "/ipfs/" + root.String(), obs: obs}
	}
	// Wait until every edge sees the others as live members: on a loaded
	// machine a static peer's redial can wait out libp2p's back-off.
	deadline := time.Now().Add(30 * time.Second)
	for _, e := range edges {
		for len(e.fleet.Members()) < k-1 {
			if time.Now().After(deadline) {
				t.Fatalf("edge sees %d live members, want %d", len(e.fleet.Members()), k-1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return edges, root
}

// copyIndex puts the file's index nodes, not its raw leaves, into dst.
func copyIndex(t *testing.T, src, dst blockstore.Blockstore, c cid.Cid) {
	t.Helper()
	ctx := context.Background()
	blk, err := src.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range nd.Links() {
		if l.Cid.Prefix().Codec == cid.DagProtobuf {
			copyIndex(t, src, dst, l.Cid)
		}
	}
}

func get(t *testing.T, url string, want []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("GET %s: status %d, %d of %d bytes, equal=%v, err %v", url, resp.StatusCode, len(body), len(want), bytes.Equal(body, want), err)
	}
}

// TestFleetDividesOriginLoad: three edges in front of one origin, under
// the closed default policy, each downloading the whole file at once, take
// it from the origin about once between them: each leaf's owner fetches
// it, the others ask the owner. The hedge's origin count agrees with the
// origin's own.
func TestFleetDividesOriginLoad(t *testing.T) {
	data := testutil.Bytes("fleet", 24<<20+4321)
	for _, scenario := range []string{"together", "one after another"} {
		t.Run(scenario, func(t *testing.T) {
			o := newCountingOrigin(t, data)
			edges, _ := newFleet(t, 3, data, o)
			if scenario == "together" {
				var wg sync.WaitGroup
				for _, e := range edges {
					wg.Go(func() { get(t, e.url, data) })
				}
				wg.Wait()
			} else {
				for _, e := range edges {
					get(t, e.url, data)
				}
			}
			ratio := float64(o.sent.Load()) / float64(len(data))
			t.Logf("%s: the origin sent %.2fx the file", scenario, ratio)
			// An owner later than origin_after has its leaf fetched by the
			// asker too, by design; under the race detector (the short
			// pass), everything is several times slower and some are.
			bound := 1.1
			if testing.Short() {
				bound = 1.5
			}
			if ratio > bound {
				t.Errorf("the origin sent %.2fx the file to three edges, want at most %.1fx (edges alone: 3x)", ratio, bound)
			}
			counts := func() (counted, delivered int) {
				for _, e := range edges {
					e.obs.mu.Lock()
					for k, v := range e.obs.fetched {
						if strings.HasPrefix(k, "origin/") {
							counted += v
						}
					}
					for _, v := range e.obs.served {
						delivered += v
					}
					e.obs.mu.Unlock()
				}
				return counted, delivered
			}
			// Every byte the origin sent is counted, fallbacks the owner
			// beat included: an origin request, once made, is read whole
			// (the last may still be finishing as the downloads end).
			counted, delivered := counts()
			for deadline := time.Now().Add(3 * time.Second); int64(counted) != o.sent.Load() && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				counted, delivered = counts()
			}
			if sent := o.sent.Load(); int64(counted) != sent {
				t.Errorf("the edges counted %d origin bytes, the origin sent %d", counted, sent)
			}
			if delivered != 3*len(data) {
				t.Errorf("the edges counted %d bytes delivered to viewers, the viewers got %d", delivered, 3*len(data))
			}
		})
	}
}

// TestMemberFoundWithoutIdentifyPush: a member whose fleet started after
// the connection opened is known to speak the protocol only through
// identify's push; when this edge's peerstore missed it (the push lost or
// overtaken by the first identify's answer, as CI saw under load), the
// member still joins the fleet within a few seconds instead of never.
func TestMemberFoundWithoutIdentifyPush(t *testing.T) {
	a, b := testutil.NewNode(t), testutil.NewNode(t)
	if err := a.Host().Connect(context.Background(), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fa, err := fleet.New(fleet.Config{Host: a.Host(), Members: []peer.ID{b.Host().ID()}, Uploads: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fa.Close)
	fb, err := fleet.New(fleet.Config{Host: b.Host(), Members: []peer.ID{a.Host().ID()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fb.Close)
	// Let identify's push land, then forget what it said.
	time.Sleep(200 * time.Millisecond)
	if err := a.Host().Peerstore().RemoveProtocols(b.Host().ID(), fleet.Protocol); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(fa.Members()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the member that speaks the protocol is still not in the fleet after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlowOwnerIsNotDoubled: an owner that fills a member's want from an
// origin slower than origin_after (1 s here, the default) says it is still
// working, so the member waits for it instead of asking the origin for the
// same leaves too: the origin is asked once per leaf.
func TestSlowOwnerIsNotDoubled(t *testing.T) {
	data := testutil.Bytes("slow owner", 6<<20+7)
	o := newSlowOrigin(t, data, 1500*time.Millisecond)
	edges, _ := newFleet(t, 2, data, o)
	get(t, edges[0].url, data)
	leaves := int64((len(data) + 1<<20 - 1) >> 20)
	if n := o.requests.Load(); n != leaves {
		t.Errorf("the origin was asked %d times for the %d leaves, want once each", n, leaves)
	}
}

// TestMembersHoldingAreAskedBeforeTheOrigin: a leaf's owner that lacks
// it asks the other members for what they hold before its origin, so a
// file one member holds whole (pulled, or imported there) costs the
// origin nothing when another member's viewer reads it. Before, each
// leaf owned by an edge without it came from the origin.
func TestMembersHoldingAreAskedBeforeTheOrigin(t *testing.T) {
	data := testutil.Bytes("held by one", 8<<20+3)
	o := newSlowOrigin(t, data, 0)
	edges, root := newFleet(t, 3, data, o)
	if c, err := ingest.Import(context.Background(), edges[2].node.DAG(), bytes.NewReader(data)); err != nil || c != root {
		t.Fatalf("importing the file into one member: %s, %v", c, err)
	}
	get(t, edges[0].url, data)
	if n := o.requests.Load(); n != 0 {
		t.Errorf("the origin was asked %d times for a file a member holds whole, want none", n)
	}
}

// TestOwnerSaysAtOnceItHasTheWant: an owner says it is working on a
// member's want as it takes it, not a heartbeat later, so a member whose
// origin_after is near or under the heartbeat does not ask the origin for
// a leaf the owner is already fetching (CI saw 1.12× the file from the
// origin on a loaded machine). Here the owner's fetch ends before its
// first heartbeat would be due: the member heard of it while it ran.
func TestOwnerSaysAtOnceItHasTheWant(t *testing.T) {
	a, b := testutil.NewNode(t), testutil.NewNode(t)
	blk := blocks.NewBlock(testutil.Bytes("ack", 1<<20))
	heard := make(chan struct{})
	var once sync.Once
	var heardWhileServing atomic.Bool
	member := askerOf(t, a, b, nil, func(ctx context.Context, w hedge.Want) (blocks.Block, error) {
		select {
		case <-heard:
			heardWhileServing.Store(true)
		case <-time.After(80 * time.Millisecond): // under the 100 ms heartbeat
		}
		return blk, nil
	})
	got, err := member.Fetch(context.Background(), hedge.Want{Cid: blk.Cid(), Progress: func() { once.Do(func() { close(heard) }) }})
	if err != nil || !bytes.Equal(got.RawData(), blk.RawData()) {
		t.Fatalf("fetch: %v", err)
	}
	if !heardWhileServing.Load() {
		t.Error("the member heard nothing from the owner while it fetched the want")
	}
}

// TestFleetObeysUploadLimit: blocks an edge sends its members wait on its
// upload_limit like bitswap's answers do (they went out uncapped, 1.07–
// 1.13× the cap in issue 22's runs): 6 MiB asked of an edge capped at
// 2 MiB/s take about 3 s to arrive, not milliseconds.
func TestFleetObeysUploadLimit(t *testing.T) {
	const capped = 2 << 20
	a := testutil.NewNodeConfig(t, node.Config{Upload: node.UploadLimits{Total: capped}})
	b := testutil.NewNode(t)
	var leaves []blocks.Block
	for i := range 6 {
		blk := blocks.NewBlock(testutil.Bytes(fmt.Sprintf("capped %d", i), 1<<20))
		if err := a.Blockstore().Put(context.Background(), blk); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, blk)
	}
	member := askerOf(t, a, b, a, func(ctx context.Context, w hedge.Want) (blocks.Block, error) { return a.Blockstore().Get(ctx, w.Cid) })
	start := time.Now()
	var wg sync.WaitGroup
	for _, blk := range leaves {
		wg.Go(func() {
			if _, err := member.Fetch(context.Background(), hedge.Want{Cid: blk.Cid()}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 6 MiB at 2 MiB/s, less the limiter's burst of a tenth of a second.
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("6 MiB came from an edge capped at 2 MiB/s in %v", took)
	}
}

// TestAbsentIsNotFoundAcrossTheFleet: a block no source of the owner may
// fetch is "not found" to the member that asked, as it is to a lone edge,
// so both answer the viewer alike (the member said 502 "could not fetch").
func TestAbsentIsNotFoundAcrossTheFleet(t *testing.T) {
	a, b := testutil.NewNode(t), testutil.NewNode(t)
	h, err := hedge.New(hedge.Config{Local: a.Store()})
	if err != nil {
		t.Fatal(err)
	}
	member := askerOf(t, a, b, nil, func(ctx context.Context, w hedge.Want) (blocks.Block, error) {
		req, err := h.Open(hedge.Target{OriginURL: w.OriginURL}, false, nil)
		if err != nil {
			return nil, err
		}
		defer req.Release()
		return req.Get(ctx, w)
	})
	absent := blocks.NewBlock([]byte("held by no one")).Cid()
	_, err = member.Fetch(context.Background(), hedge.Want{Cid: absent})
	if !ipld.IsNotFound(err) {
		t.Errorf("asking the owner for a block no one holds: %v, want not found", err)
	}
}

// askerOf makes a the fleet member that serves through serve (capped by
// up, if not nil) and b the member that asks it, and returns a as b sees
// it, once b counts it live.
func askerOf(t *testing.T, a, b *node.Node, up fleet.Uploads, serve fleet.Serve) hedge.Fetcher {
	t.Helper()
	if err := b.Host().Connect(context.Background(), a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fa, err := fleet.New(fleet.Config{Host: a.Host(), Members: []peer.ID{b.Host().ID()}, Uploads: up})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fa.Close)
	fa.SetServe(serve)
	fb, err := fleet.New(fleet.Config{Host: b.Host(), Members: []peer.ID{a.Host().ID()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fb.Close)
	deadline := time.Now().Add(10 * time.Second)
	for len(fb.Members()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the serving edge never became a live member")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fb.Members()[0]
}

// TestNameQuestions: a member asks a name's owner what it knows of it
// and hears the owner's answerer; a removed answerer no longer answers; a
// purge reaches the members' purgers; an edge that is not a member is
// refused without a byte, for questions and purges alike.
func TestNameQuestions(t *testing.T) {
	a, b, c := testutil.NewNode(t), testutil.NewNode(t), testutil.NewNode(t)
	if err := b.Host().Connect(context.Background(), a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fa, err := fleet.New(fleet.Config{Host: a.Host(), Members: []peer.ID{b.Host().ID()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fa.Close)
	remove := fa.AddAnswerer(func(_ context.Context, name string, _ bool) ([]byte, bool) {
		return []byte("record of " + name), strings.HasPrefix(name, "https://origin/")
	})
	fb, err := fleet.New(fleet.Config{Host: b.Host(), Members: []peer.ID{a.Host().ID()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fb.Close)
	for deadline := time.Now().Add(10 * time.Second); len(fb.Members()) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a never became a live member")
		}
	}
	// A name b does not own: with two members, one of a few will be a's.
	var name string
	for i := range 64 {
		n := fmt.Sprintf("https://origin/%d", i)
		if _, mine, _, _ := fb.Ask(context.Background(), n); !mine {
			name = n
			break
		}
	}
	if name == "" {
		t.Fatal("b owns every name: a is not a live member")
	}
	answer, mine, known, err := fb.Ask(context.Background(), name)
	if err != nil || mine || !known || string(answer) != "record of "+name {
		t.Errorf("asking the owner about %s: %q, mine %v, known %v, %v", name, answer, mine, known, err)
	}
	remove()
	if _, _, known, err := fb.Ask(context.Background(), name); known || err != nil {
		t.Errorf("after the answerer left: known %v, %v", known, err)
	}
	// The owner streams a name's body as it has it; one that ends short
	// is an error at the member, never a shorter body.
	body := bytes.Repeat([]byte("body bytes "), 100000)
	fa.AddBodyServer(func(_ context.Context, n string) ([]byte, io.ReadCloser, bool) {
		r := io.Reader(bytes.NewReader(body))
		if strings.HasSuffix(n, "?cut") {
			r = io.MultiReader(io.LimitReader(bytes.NewReader(body), 500000), errReader{})
		}
		return []byte("head of " + n), io.NopCloser(r), strings.HasPrefix(n, "https://origin/")
	})
	head, rc, asked, found, err := fb.Body(context.Background(), name)
	if err != nil || !asked || !found || string(head) != "head of "+name {
		t.Fatalf("asking the owner for %s's body: head %q, asked %v, found %v, %v", name, head, asked, found, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("the body: %d bytes of %d, %v", len(got), len(body), err)
	}
	var cut string
	for i := range 64 {
		n := fmt.Sprintf("https://origin/%d?cut", i)
		if _, _, asked, _, _ := fb.Body(context.Background(), n); asked {
			cut = n
			break
		}
	}
	// The cut resets the stream: the member sees it while reading the
	// body, or, when the reset overtakes the head, as the answer's error.
	if _, rc, _, found, err := fb.Body(context.Background(), cut); err == nil {
		if !found {
			t.Error("a body cut short was not found")
		} else {
			got, err := io.ReadAll(rc)
			rc.Close()
			if err == nil {
				t.Errorf("a body cut short after %d bytes read as whole", len(got))
			}
		}
	}
	// A purge told to the members reaches a's purger.
	var (
		mu     sync.Mutex
		purged []string
	)
	heard := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(purged) }
	fa.SetPurge(func(prefix string) int { mu.Lock(); purged = append(purged, prefix); mu.Unlock(); return 7 })
	if members, marked := fb.Purge(context.Background(), "https://origin/v/"); members != 1 || marked != 7 || !slices.Equal(heard(), []string{"https://origin/v/"}) {
		t.Errorf("a purge told %d members, %d marked, a heard %q", members, marked, heard())
	}
	if err := c.Host().Connect(context.Background(), a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []protocol.ID{fleet.NameProtocol, fleet.PurgeProtocol, fleet.BodyProtocol} {
		s, err := c.Host().NewStream(context.Background(), a.Host().ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(s, "\x10https://origin/1")
		_ = s.CloseWrite()
		if got, _ := io.ReadAll(s); len(got) != 0 {
			t.Errorf("%s: a non-member heard %q", proto, got)
		}
		s.Close()
	}
	if len(heard()) != 1 {
		t.Errorf("a non-member's purge reached the purger: %q", heard())
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the origin went away") }

// TestOneSidedMemberOwnsNothing: an edge that lists a peer which does not
// list it back (a publisher that edges list, and that lists none of them)
// is told so at its first want, and from then on counts that peer owner
// of none of its blocks, so it fetches them itself instead of asking a
// member that refuses every time. Before, the peer kept its share of the
// blocks and every want of them failed first.
func TestOneSidedMemberOwnsNothing(t *testing.T) {
	a, pub := testutil.NewNode(t), testutil.NewNode(t)
	if err := a.Host().Connect(context.Background(), pub.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	fa, err := fleet.New(fleet.Config{Host: a.Host(), Members: []peer.ID{pub.Host().ID()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fa.Close)
	fp, err := fleet.New(fleet.Config{Host: pub.Host()}) // lists no member
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fp.Close)
	fp.SetServe(func(context.Context, hedge.Want) (blocks.Block, error) {
		t.Error("the publisher served an edge it does not list")
		return nil, errors.New("not yours")
	})
	cids := make([]cid.Cid, 200)
	for i := range cids {
		cids[i] = blocks.NewBlock(fmt.Appendf(nil, "part %d", i)).Cid()
	}
	ownedByPub := func() []cid.Cid {
		var out []cid.Cid
		for _, c := range cids {
			if fa.Owner(c) != nil {
				out = append(out, c)
			}
		}
		return out
	}
	var owned []cid.Cid
	for deadline := time.Now().Add(10 * time.Second); len(owned) == 0; time.Sleep(20 * time.Millisecond) {
		if owned = ownedByPub(); time.Now().After(deadline) {
			t.Fatal("the publisher never became a live member of the edge")
		}
	}
	_, err = fa.Owner(owned[0]).Fetch(context.Background(), hedge.Want{Cid: owned[0]})
	if err == nil || !strings.Contains(err.Error(), "does not count this edge as its member") {
		t.Fatalf("a want of the one-sided member: %v", err)
	}
	if again := ownedByPub(); len(again) > 0 {
		t.Errorf("after its refusal the publisher still owns %d of %d blocks (%d before)", len(again), len(cids), len(owned))
	}
}
