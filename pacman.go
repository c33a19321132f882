// Package pacman is the module's root: importing it registers every pacman
// module with Caddy (the app, the handlers, the commands and the plugins
// of plugins/all), as `xcaddy build --with github.com/pacman-cdn/pacman`
// does.
package pacman

import (
	// Every pacman module.
	_ "github.com/pacman-cdn/pacman/plugins/all"
)
