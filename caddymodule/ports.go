package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/pacman-cdn/pacman/internal/portlock"
	"go.uber.org/zap"
)

// ports holds the lock of each HTTP port this process serves. A reload
// takes the new config's locks before the old config releases its own, so
// a port kept across the reload stays locked throughout.
var ports = caddy.NewUsagePool()

// maxPortRange bounds the ports of one listen range that are locked.
const maxPortRange = 64

// holdPorts locks the TCP ports of the config's HTTP servers, refusing to
// start beside another pacman that serves one of them: Caddy binds with
// SO_REUSEPORT, so the kernel would otherwise share the port's connections
// between two processes with two stores.
func (a *App) holdPorts() error {
	app, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return nil // no HTTP app: no port is served
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return nil
	}
	who := fmt.Sprintf("pacman pid %d (data dir %s)", os.Getpid(), a.DataDir)
	repl := caddy.NewReplacer()
	for _, srv := range httpApp.Servers {
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddressWithDefaults(repl.ReplaceKnown(l, ""), "tcp", caddyhttp.DefaultHTTPPort)
			if err != nil || addr.IsUnixNetwork() || addr.StartPort == 0 {
				continue // Caddy reports a bad address itself
			}
			for port := addr.StartPort; port <= addr.EndPort && port-addr.StartPort < maxPortRange; port++ {
				if err := a.holdPort(port, who); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// holdPort locks one TCP port. A lock that cannot be made at all (an
// unwritable temporary directory) is logged, not fatal: it guards against
// a mistake and is no reason to refuse to serve.
func (a *App) holdPort(port uint, who string) error {
	key := fmt.Sprintf("tcp/%d", port)
	if slices.Contains(a.ports, key) {
		return nil
	}
	_, _, err := ports.LoadOrNew(key, func() (caddy.Destructor, error) {
		return portlock.Take(portlock.Dir(), "tcp", port, who)
	})
	switch {
	case errors.Is(err, portlock.ErrPortInUse):
		return err
	case err != nil:
		a.log.Warn("cannot lock the HTTP port against a second pacman", zap.Uint("port", port), zap.Error(err))
		return nil
	}
	a.ports = append(a.ports, key)
	return nil
}

// releasePorts releases this config's port locks; the last config that
// holds one unlocks it.
func (a *App) releasePorts() {
	for _, key := range a.ports {
		if _, err := ports.Delete(key); err != nil {
			a.log.Warn("releasing the HTTP port lock", zap.String("port", key), zap.Error(err))
		}
	}
	a.ports = nil
}
