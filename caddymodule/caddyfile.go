package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"github.com/pacman-cdn/pacman/gateway"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("pacman", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("pacman", parseDirective)
	httpcaddyfile.RegisterDirectiveOrder("pacman", httpcaddyfile.Before, "file_server")
}

// parseGlobalOption sets up the pacman app from the global option:
//
//	pacman {
//		data_dir <path>
//		listen   <multiaddr...>
//		peer     <multiaddr/p2p/id...>
//		max_connections         <n>
//		max_inbound_connections <n>
//		max_streams             <n>
//		max_memory              <size, e.g. 512MiB>
//		cache_size              <size, e.g. 50GiB>
//		upload_limit            <rate, e.g. 200Mbit or 25MB>
//		upload_limit_per_peer   <rate>
//		http_gateway            <url...>
//		dht                     client|server|auto
//		bootstrap               <multiaddr/p2p/id...>
//		delegated_routing       <url...>
//		provide                 roots|all|none
//		reprovide_interval      <duration>
//	}
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		list, known := globalOptions[name]
		if !known {
			return nil, d.Errf("unknown pacman option %q", name)
		}
		args := d.RemainingArgs()
		if len(args) == 0 || (len(args) > 1 && !list) {
			return nil, d.ArgErr()
		}
		val := args[0]
		if app.Routing == nil && (name == "dht" || name == "bootstrap" || name == "delegated_routing" || name == "provide" || name == "reprovide_interval") {
			app.Routing = new(Routing)
		}
		var err error
		switch name {
		case "data_dir":
			app.DataDir = val
		case "listen":
			app.Listen = append(app.Listen, args...)
		case "peer":
			app.Peers = append(app.Peers, args...)
		case "http_gateway":
			app.HTTPGateways = append(app.HTTPGateways, args...)
		case "max_connections":
			app.MaxConnections, err = parseCount(val)
		case "max_inbound_connections":
			app.MaxInboundConnections, err = parseCount(val)
		case "max_streams":
			app.MaxStreams, err = parseCount(val)
		case "max_memory":
			app.MaxMemory, err = parseSize(val)
		case "cache_size":
			app.CacheSize, err = parseSize(val)
		case "upload_limit":
			app.UploadLimit, err = parseRate(val)
		case "upload_limit_per_peer":
			app.UploadLimitPerPeer, err = parseRate(val)
		case "dht":
			app.Routing.DHT = val
		case "bootstrap":
			app.Routing.Bootstrap = append(app.Routing.Bootstrap, args...)
		case "delegated_routing":
			app.Routing.Delegated = append(app.Routing.Delegated, args...)
		case "provide":
			app.Routing.Provide = val
		case "reprovide_interval":
			var dur time.Duration
			dur, err = caddy.ParseDuration(val)
			app.Routing.ReprovideInterval = caddy.Duration(dur)
		}
		if err != nil {
			return nil, d.Errf("%s: %v", name, err)
		}
	}
	return httpcaddyfile.App{Name: "pacman", Value: caddyconfig.JSON(app, nil)}, nil
}

// globalOptions are the options of the pacman global option, each saying
// whether it takes a list of values (true) or exactly one.
var globalOptions = map[string]bool{
	"data_dir": false, "listen": true, "peer": true, "http_gateway": true,
	"max_connections": false, "max_inbound_connections": false, "max_streams": false, "max_memory": false,
	"cache_size": false, "upload_limit": false, "upload_limit_per_peer": false,
	"dht": false, "bootstrap": true, "delegated_routing": true, "provide": false, "reprovide_interval": false,
}

// parseCount parses a non-negative count.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	return n, nil
}

// parseSize parses a size in bytes with a unit: "512MiB", "50GB".
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as 512MiB", s)
	}
	return int64(n), nil
}

// parseRate parses a rate in bits ("200Mbit", "1Gbps") or bytes ("25MB",
// "20MiB", optionally "/s") per second, and returns bytes per second.
func parseRate(s string) (int64, error) {
	v := strings.TrimSuffix(s, "/s")
	bits := false
	for _, unit := range []string{"bit", "bps"} {
		if num, ok := strings.CutSuffix(v, unit); ok {
			v, bits = num+"B", true
			break
		}
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > 1<<62 {
		return 0, fmt.Errorf("%q is not a rate such as 200Mbit or 25MB", s)
	}
	if bits {
		n /= 8
	}
	return int64(n), nil
}

// parseDirective sets up a handler from the directive:
//
//	pacman [<matcher>] {
//		window          <leaves>
//		max_window      <leaves>
//		max_leaves_in_flight <leaves>
//		readahead       <leaves>
//		max_ranges      <n>
//		resolve_timeout <duration>
//		stall_timeout   <duration>
//		session_idle    <duration>
//		reask_after     <duration>
//		access          local|allowlist|open
//		allow_file      <path>
//		deny_file       <path>
//		origin          <url>
//		origin_after    <duration>
//	}
func parseDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	return handler, handler.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "window", "max_window", "max_leaves_in_flight", "readahead", "max_ranges":
			n, err := strconv.Atoi(val)
			if err != nil {
				return d.Errf("%s: %q is not an integer", name, val)
			}
			switch name {
			case "window":
				h.Window = n
			case "max_window":
				h.MaxWindow = n
			case "max_leaves_in_flight":
				h.MaxLeavesInFlight = n
			case "readahead":
				h.Readahead = n
			case "max_ranges":
				h.MaxRanges = n
			}
		case "resolve_timeout", "stall_timeout", "session_idle", "reask_after", "origin_after":
			dur, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			switch name {
			case "resolve_timeout":
				h.ResolveTimeout = caddy.Duration(dur)
			case "stall_timeout":
				h.StallTimeout = caddy.Duration(dur)
			case "reask_after":
				h.ReaskAfter = caddy.Duration(dur)
			case "origin_after":
				h.OriginAfter = caddy.Duration(dur)
			default:
				h.SessionIdle = caddy.Duration(dur)
			}
		case "access":
			if _, err := gateway.ParseAccess(val); err != nil {
				return d.Err(err.Error())
			}
			h.Access = val
		case "allow_file":
			h.AllowFile = val
		case "deny_file":
			h.DenyFile = val
		case "origin":
			h.Origin = val
		default:
			return d.Errf("unknown subdirective %q", name)
		}
	}
	return nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
