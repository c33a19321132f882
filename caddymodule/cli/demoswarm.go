package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/node"
)

// demoSwarm is the demo's seeders, which the page may stop one by one
// while a video plays, and the second edge it may start, which fetches
// every file from the gateway alone.
type demoSwarm struct {
	// second starts the second edge, peered with the gateway only.
	second func() (*node.Node, error)

	mu      sync.Mutex // guards everything below
	names   []string
	nodes   []*node.Node
	stopped []bool
	sent    []int64    // by a stopped seeder, when it stopped
	edge    *node.Node // the second edge, once started
	state   string     // what the second edge is doing
}

// add counts n among the seeders, as name.
func (s *demoSwarm) add(name string, n *node.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names, s.nodes, s.stopped, s.sent = append(s.names, name), append(s.nodes, n), append(s.stopped, false), append(s.sent, 0)
}

// seederAddrs returns the seeders' libp2p addresses, for the gateway's
// peer list.
func (s *demoSwarm) seederAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.nodes {
		out = append(out, addrs(n)...)
	}
	return out
}

// demoPeer is a node of the demo as the page lists it.
type demoPeer struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Stopped bool   `json:"stopped,omitempty"`
	// Sent and Received are the bytes the node sent and received, as it
	// counts them (a stopped seeder: until it stopped).
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

// traffic returns the bytes n has sent and received.
func traffic(n *node.Node) (sent, received int64) {
	for _, p := range n.Peers() {
		sent += p.TotalOut
		received += p.TotalIn
	}
	return sent, received
}

// demoState is what the page's controls show.
type demoState struct {
	Peers      []demoPeer `json:"peers"`
	SecondEdge string     `json:"second_edge"`
}

// routes serves the page's controls on mux:
//   - GET /demo/state: the seeders and the second edge, by peer ID;
//   - POST /demo/stop-seeder: stops the next running seeder (409 once
//     none is left);
//   - POST /demo/second-edge: starts the second edge, which fetches every
//     root from the gateway.
func (s *demoSwarm) routes(ctx context.Context, mux *http.ServeMux, roots []cid.Cid) {
	mux.HandleFunc("GET /demo/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.status())
	})
	mux.HandleFunc("POST /demo/stop-seeder", func(w http.ResponseWriter, _ *http.Request) {
		if name, err := s.stopOne(); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		} else {
			_, _ = w.Write([]byte(name + " stopped\n"))
		}
	})
	mux.HandleFunc("POST /demo/second-edge", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.startSecond(ctx, roots); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		_, _ = w.Write([]byte("the second edge is fetching from the gateway\n"))
	})
}

// status returns the nodes as the page lists them.
func (s *demoSwarm) status() demoState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := demoState{SecondEdge: s.state}
	for i, n := range s.nodes {
		p := demoPeer{Name: s.names[i], ID: n.Host().ID().String(), Stopped: s.stopped[i], Sent: s.sent[i]}
		if !p.Stopped {
			p.Sent, p.Received = traffic(n)
		}
		st.Peers = append(st.Peers, p)
	}
	if s.edge != nil {
		p := demoPeer{Name: "second edge", ID: s.edge.Host().ID().String()}
		p.Sent, p.Received = traffic(s.edge)
		st.Peers = append(st.Peers, p)
	}
	return st
}

// stopOne stops the first seeder still running, and returns its name.
func (s *demoSwarm) stopOne() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.nodes {
		if !s.stopped[i] {
			s.stopped[i] = true
			s.sent[i], _ = traffic(n)
			return s.names[i], n.Close()
		}
	}
	return "", errors.New("every seeder is stopped: the gateway serves what it holds, and the origin the rest")
}

// startSecond starts the second edge, once, and has it fetch every root
// from the gateway in the background.
func (s *demoSwarm) startSecond(ctx context.Context, roots []cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.edge != nil {
		return errors.New("the second edge is running already")
	}
	n, err := s.second()
	if err != nil {
		return err
	}
	s.edge, s.state = n, "fetching"
	go func() {
		// The gateway sends what it holds: what was played.
		fetched := 0
		for _, c := range roots {
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			if _, err := n.Pin(ctx, c, nil); err == nil {
				fetched++
			}
			cancel()
		}
		s.mu.Lock()
		s.state = fmt.Sprintf("fetched %d of %d files whole; the gateway sends what it holds, what was played", fetched, len(roots))
		s.mu.Unlock()
	}()
	return nil
}

// close stops the nodes still running.
func (s *demoSwarm) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i, n := range s.nodes {
		if !s.stopped[i] {
			errs = append(errs, n.Close())
		}
	}
	if s.edge != nil {
		errs = append(errs, s.edge.Close())
	}
	return errors.Join(errs...)
}
