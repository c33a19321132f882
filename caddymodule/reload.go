package caddymodule

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap"
)

// appliedLive are the app settings a reload applies to the running node:
// live_trust (the relay's trusted keys) and peers added. Every other
// setting is the node's for as long as it runs.
var appliedLive = []string{"live_trust", "peers"}

// settings is what a running node was started with, kept to tell a reload
// what it cannot change.
type settings struct {
	mu  sync.Mutex // guards app
	app App
}

// reload applies what it can of a reloaded app's settings to the running
// node, and warns about the rest: peers added are dialled at once, and
// every other changed setting, and every peer removed, waits for a restart.
func (s *settings) reload(a *App, log *zap.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added, removed := peerChanges(s.app.Peers, a.Peers)
	for _, p := range added {
		info, err := peer.AddrInfoFromString(p)
		if err != nil {
			continue // nodeConfig refused it already
		}
		a.edge.Node().AddPeer(*info)
		s.app.Peers = append(s.app.Peers, p)
	}
	if len(added) > 0 {
		log.Info("reload: dialling the peers added; they join the fleet at the next restart", zap.Strings("peers", added))
	}
	changed := restartSettings(s.app, *a)
	if len(removed) > 0 {
		changed = append(changed, "peers (removed: "+strings.Join(removed, ", ")+")")
	}
	if len(changed) > 0 {
		log.Warn("reload: these pacman settings changed but the running node keeps its old ones until Caddy restarts",
			zap.Strings("settings", changed))
	}
}

// restartSettings names the settings, by their JSON names, that differ
// between old and new and that a reload cannot apply.
func restartSettings(old, new App) []string {
	var out []string
	ot, ov, nv := reflect.TypeOf(old), reflect.ValueOf(old), reflect.ValueOf(new)
	for i := range ot.NumField() {
		name, _, _ := strings.Cut(ot.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || slices.Contains(appliedLive, name) {
			continue
		}
		a, errA := json.Marshal(ov.Field(i).Interface())
		b, errB := json.Marshal(nv.Field(i).Interface())
		if errA != nil || errB != nil || string(a) != string(b) {
			out = append(out, name)
		}
	}
	return out
}

// peerChanges returns the peers in new and not in old, and the other way
// round.
func peerChanges(old, new []string) (added, removed []string) {
	for _, p := range new {
		if !slices.Contains(old, p) {
			added = append(added, p)
		}
	}
	for _, p := range old {
		if !slices.Contains(new, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}
