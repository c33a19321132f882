module example.com/pacmanplugin

go 1.26.0

require (
	github.com/caddyserver/caddy/v2 v2.11.9
	github.com/ipfs/go-cid v0.6.2
	github.com/pacman-cdn/pacman v0.0.0
)

// TestOutOfTreePlugin points this at the checkout under test.
replace github.com/pacman-cdn/pacman => ../../..
