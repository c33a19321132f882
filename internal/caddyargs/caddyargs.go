// Package caddyargs reads the arguments of Caddyfile subdirectives the
// same way in every pacman module.
package caddyargs

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Duration reads the one argument of the subdirective d is at, a
// duration such as 750ms or 1m, into dst.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Durations reads the block after a module's arguments, whose every
// subdirective is one of durations and takes one duration.
func Durations(d *caddyfile.Dispenser, durations map[string]*caddy.Duration) error {
	for d.NextBlock(0) {
		dst, ok := durations[d.Val()]
		if !ok {
			return Unknown(d, d.Val())
		}
		if err := Duration(d, dst); err != nil {
			return err
		}
	}
	return nil
}

// None reads a module that takes no arguments and no block, such as
// `resolve ipfs`.
func None(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		return Unknown(d, d.Val())
	}
	return nil
}

// Unknown is the error for a subdirective name that the module does not
// have. A subdirective pacman used to have says what replaced it.
func Unknown(d *caddyfile.Dispenser, name string) error {
	if name == "reask_after" {
		return d.Errf("reask_after is gone: the node asks another holder as soon as a peer is late, by how long that peer takes (README, Sources); remove the line")
	}
	return d.Errf("unknown subdirective %q", name)
}
