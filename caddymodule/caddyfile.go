package caddymodule

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"
	"github.com/pacman-cdn/pacman/internal/caddyargs"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("pacman", parseGlobalOption)
	// The ingest route goes first: the pacman handler answers every
	// request it is given.
	httpcaddyfile.RegisterHandlerDirective("pacman_live_ingest", parseIngest)
	httpcaddyfile.RegisterDirectiveOrder("pacman_live_ingest", httpcaddyfile.Before, "file_server")
	// Then the viewers' script and addresses, which a pacman route
	// with no matcher would otherwise answer.
	httpcaddyfile.RegisterHandlerDirective("pacman_viewers", parseViewersHandler)
	httpcaddyfile.RegisterDirectiveOrder("pacman_viewers", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterDirective("pacman", parseDirective)
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
//		upload_limit_per_address <rate>
//		http_gateway            <url...>
//		dht                     client|server|auto
//		bootstrap               <multiaddr/p2p/id...>
//		delegated_routing       <url...>
//		provide                 roots|all|none
//		reprovide_interval      <duration>
//		live_trust              <peer-id...>
//		swarm_key               <file>
//		nat_port_map            on|off
//		autonat                 on|off
//		hole_punching           on|off
//		relay_client            auto|off|<multiaddr/p2p/id...>
//		relay_service           on|off
//		announce                <multiaddr...>
//		no_announce             <multiaddr|/ip4/net/ipcidr/bits...>
//		reachability            auto|public|private
//		viewers {
//			max_viewers     <n>
//			max_per_address <n>
//			relay_data      <size>
//			relay_duration  <duration>
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		if name == "viewers" {
			v, err := parseViewersBlock(d)
			if err != nil {
				return nil, err
			}
			app.Viewers = v
			continue
		}
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
		if app.NAT == nil && natOptions[name] {
			app.NAT = new(NAT)
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
		case "swarm_key":
			app.SwarmKey = val
		case "live_trust":
			app.LiveTrust = append(app.LiveTrust, args...)
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
		case "upload_limit_per_address":
			app.UploadLimitPerAddress, err = parseRate(val)
		case "dht":
			app.Routing.DHT = val
		case "bootstrap":
			app.Routing.Bootstrap = append(app.Routing.Bootstrap, args...)
		case "delegated_routing":
			app.Routing.Delegated = append(app.Routing.Delegated, args...)
		case "provide":
			app.Routing.Provide = val
		case "nat_port_map":
			app.NAT.PortMap, err = parseSwitch(val)
		case "autonat":
			app.NAT.DisableAutoNAT, err = parseOff(val)
		case "hole_punching":
			app.NAT.DisableHolePunching, err = parseOff(val)
		case "relay_client":
			switch {
			case len(args) == 1 && val == "auto":
			case len(args) == 1 && val == "off":
				app.NAT.DisableRelayClient = true
			default:
				app.NAT.StaticRelays = append(app.NAT.StaticRelays, args...)
			}
		case "relay_service":
			app.NAT.RelayService, err = parseSwitch(val)
		case "announce":
			app.NAT.Announce = append(app.NAT.Announce, args...)
		case "no_announce":
			app.NAT.NoAnnounce = append(app.NAT.NoAnnounce, args...)
		case "reachability":
			switch val {
			case "auto":
			case "public", "private":
				app.NAT.Reachability = val
			default:
				err = fmt.Errorf("want auto, public or private, got %q", val)
			}
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
	"cache_size": false, "upload_limit": false, "upload_limit_per_peer": false, "upload_limit_per_address": false,
	"dht": false, "bootstrap": true, "delegated_routing": true, "provide": false, "reprovide_interval": false,
	"live_trust": true, "swarm_key": false,
	"nat_port_map": false, "autonat": false, "hole_punching": false, "relay_client": true,
	"relay_service": false, "announce": true, "no_announce": true, "reachability": false,
}

// natOptions are the global options that set the app's NAT.
var natOptions = map[string]bool{
	"nat_port_map": true, "autonat": true, "hole_punching": true, "relay_client": true,
	"relay_service": true, "announce": true, "no_announce": true, "reachability": true,
}

// parseSwitch parses on or off.
func parseSwitch(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, got %q", s)
}

// parseOff parses on or off, and reports whether it is off.
func parseOff(s string) (bool, error) {
	on, err := parseSwitch(s)
	return !on, err
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
//		resolve <name> [<args...>] [{ ... }]    # pacman.resolvers.<name>, in order
//		source  <name> [<args...>] [{ ... }]    # pacman.sources.<name>
//		policy  <name> [<args...>] [{ ... }]    # pacman.policies.<name>
//		window          <leaves>
//		max_window      <leaves>
//		max_leaves_in_flight <leaves>
//		budget_wait     <duration>
//		max_streams_per_client <n>
//		max_network_requests <n>
//		readahead       <leaves>
//		max_ranges      <n>
//		resolve_timeout <duration>
//		stall_timeout   <duration>
//		subdomain_hosts <host>...
//
//		# Shorthands for the modules:
//		access          local|allowlist|open   # policy local | allow_list <allow_file> | open
//		allow_file      <path>
//		deny_file       <path>                 # policy deny_list <path>
//		origin          <url>                  # source origin <url>
//		origin_after    <duration>             #   { after <duration> }
//		session_idle    <duration>             # source bitswap { session_idle <duration> }
//	}
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matchers, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if handler.Route == "" {
		// The route is named in the metrics by its path, as written.
		var paths []string
		if raw, ok := matchers["path"]; ok && json.Unmarshal(raw, &paths) == nil {
			handler.Route = strings.Join(paths, " ")
		}
	}
	return h.NewRoute(matchers, handler), nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	var short shorthands
	for d.NextBlock(0) {
		name := d.Val()
		if ns, ok := moduleDirectives[name]; ok {
			if !d.NextArg() {
				return d.ArgErr()
			}
			mod := d.Val()
			if _, err := caddy.GetModule(ns.namespace + "." + mod); err != nil {
				return d.Errf("%s %q: no such module; the %s are %s", name, mod, ns.namespace, moduleNames(ns.namespace))
			}
			unm, err := caddyfile.UnmarshalModule(d, ns.namespace+"."+mod)
			if err != nil {
				return err
			}
			raw := caddyconfig.JSONModuleObject(unm, ns.inlineKey, mod, nil)
			switch name {
			case "resolve":
				h.ResolversRaw = append(h.ResolversRaw, raw)
			case "source":
				h.SourcesRaw = append(h.SourcesRaw, raw)
			default:
				h.PoliciesRaw = append(h.PoliciesRaw, raw)
			}
			continue
		}
		if name == "subdomain_hosts" {
			if h.SubdomainHosts = d.RemainingArgs(); len(h.SubdomainHosts) == 0 {
				return d.ArgErr()
			}
			continue
		}
		var val string
		if !d.Args(&val) || d.NextArg() {
			return d.ArgErr()
		}
		if err := h.setOption(d, &short, name, val); err != nil {
			return err
		}
	}
	return short.apply(h)
}

// moduleDirectives are the subdirectives that name a module.
var moduleDirectives = map[string]struct{ namespace, inlineKey string }{
	"resolve": {"pacman.resolvers", "resolver"},
	"source":  {"pacman.sources", "source"},
	"policy":  {"pacman.policies", "policy"},
}

// moduleNames lists the names of the modules registered in namespace.
func moduleNames(namespace string) string {
	var names []string
	for _, m := range caddy.GetModules(namespace) {
		names = append(names, m.ID.Name())
	}
	return strings.Join(names, ", ")
}

// setOption sets one single-valued subdirective.
func (h *Handler) setOption(d *caddyfile.Dispenser, short *shorthands, name, val string) error {
	ints := map[string]*int{"window": &h.Window, "max_window": &h.MaxWindow, "max_leaves_in_flight": &h.MaxLeavesInFlight, "readahead": &h.Readahead, "max_ranges": &h.MaxRanges, "max_streams_per_client": &h.MaxStreamsPerClient, "max_network_requests": &h.MaxNetworkRequests}
	durations := map[string]*caddy.Duration{"resolve_timeout": &h.ResolveTimeout, "stall_timeout": &h.StallTimeout, "budget_wait": &h.BudgetWait,
		"origin_after": &short.originAfter, "session_idle": &short.sessionIdle}
	strs := map[string]*string{"access": &short.access, "allow_file": &short.allowFile, "deny_file": &short.denyFile, "origin": &short.origin, "route": &h.Route}
	if p, ok := ints[name]; ok {
		n, err := strconv.Atoi(val)
		if err != nil {
			return d.Errf("%s: %q is not an integer", name, val)
		}
		*p = n
		return nil
	}
	if p, ok := durations[name]; ok {
		dur, err := caddy.ParseDuration(val)
		if err != nil {
			return d.Errf("%s: %v", name, err)
		}
		*p = caddy.Duration(dur)
		return nil
	}
	if p, ok := strs[name]; ok {
		*p = val
		if name == "access" && val != "local" && val != "allowlist" && val != "open" {
			return d.Errf("access must be local, allowlist or open, not %q", val)
		}
		return nil
	}
	return caddyargs.Unknown(d, name)
}

// shorthands are the subdirectives that stand for modules, as they were
// spelt before resolvers, sources and policies were modules.
type shorthands struct {
	access, allowFile, denyFile, origin string
	originAfter, sessionIdle            caddy.Duration
}

// apply adds the modules the shorthands stand for: the access policy (and
// the deny list) after any policy named; bitswap, when no source is named,
// and the origin after the sources.
func (s shorthands) apply(h *Handler) error {
	module := func(v map[string]any) json.RawMessage { return caddyconfig.JSON(v, nil) }
	if s.access != "" || s.allowFile != "" || s.denyFile != "" {
		switch s.access {
		case "allowlist":
			h.PoliciesRaw = append(h.PoliciesRaw, module(map[string]any{"policy": "allow_list", "file": s.allowFile}))
		case "open":
			h.PoliciesRaw = append(h.PoliciesRaw, module(map[string]any{"policy": "open"}))
		case "local":
			h.PoliciesRaw = append(h.PoliciesRaw, module(map[string]any{"policy": "local"}))
		case "":
			if len(h.PoliciesRaw) == 0 {
				h.PoliciesRaw = append(h.PoliciesRaw, module(map[string]any{"policy": "local"}))
			}
		}
		if s.allowFile != "" && s.access != "allowlist" {
			return fmt.Errorf("allow_file is used only with access allowlist")
		}
		if s.denyFile != "" {
			h.PoliciesRaw = append(h.PoliciesRaw, module(map[string]any{"policy": "deny_list", "file": s.denyFile}))
		}
	}
	if s.sessionIdle != 0 || (s.origin != "" && len(h.SourcesRaw) == 0) {
		bs := map[string]any{"source": "bitswap"}
		if s.sessionIdle != 0 {
			bs["session_idle"] = s.sessionIdle
		}
		h.SourcesRaw = append(h.SourcesRaw, module(bs))
	}
	if s.origin != "" {
		o := map[string]any{"source": "origin", "url": s.origin}
		if s.originAfter != 0 {
			o["after"] = s.originAfter
		}
		h.SourcesRaw = append(h.SourcesRaw, module(o))
	} else if s.originAfter != 0 {
		return fmt.Errorf("origin_after needs an origin")
	}
	return nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
