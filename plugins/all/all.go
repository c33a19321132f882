// Package all registers every pacman plugin with Caddy: import it for its
// side effects, as cmd/caddy does, the way Caddy's modules/standard
// registers its own.
package all

import (
	// The pacman app, handlers and Caddyfile; the admin routes and the
	// dashboard; the commands.
	_ "github.com/pacman-cdn/pacman/caddymodule"
	_ "github.com/pacman-cdn/pacman/caddymodule/admin"
	_ "github.com/pacman-cdn/pacman/caddymodule/cli"
	// Policies.
	_ "github.com/pacman-cdn/pacman/plugins/policies/allowlist"
	_ "github.com/pacman-cdn/pacman/plugins/policies/denylist"
	_ "github.com/pacman-cdn/pacman/plugins/policies/local"
	_ "github.com/pacman-cdn/pacman/plugins/policies/open"

	// Resolvers.
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/catalog"
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/dnslink"
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/ipfs"
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/ipns"
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/live"
	_ "github.com/pacman-cdn/pacman/plugins/resolvers/originpull"

	// Sources.
	_ "github.com/pacman-cdn/pacman/plugins/sources/bitswap"
	_ "github.com/pacman-cdn/pacman/plugins/sources/origin"
	_ "github.com/pacman-cdn/pacman/plugins/sources/trustlessgateway"
)
