// Command caddy is what `xcaddy build --with github.com/pacman-cdn/pacman
// --with example.com/pacmanplugin` makes.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "example.com/pacmanplugin"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/pacman-cdn/pacman/plugins/all"
)

func main() {
	caddycmd.Main()
}
