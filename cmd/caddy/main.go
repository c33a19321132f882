// Command caddy is Caddy with its standard modules and pacman, the binary
// that ./xcaddy.sh builds.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/pacman-cdn/pacman/plugins/all"
)

func main() {
	caddycmd.Main()
}
