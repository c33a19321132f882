package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/pacman-cdn/pacman/plugins/all"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt checks the Caddyfile global option and directive
// against the JSON config they must produce.
func TestCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, adaptedCaddyfile, "caddyfile", adaptedJSON)
}

// adaptedCaddyfile sets every option, with the shorthands for modules.
const adaptedCaddyfile = `
{
	pacman {
		data_dir /var/lib/pacman
		listen /ip4/0.0.0.0/tcp/4001 /ip4/0.0.0.0/udp/4001/quic-v1
		peer /ip4/192.0.2.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5
		max_connections 400
		max_inbound_connections 300
		max_streams 4000
		max_memory 512MiB
		cache_size 50GiB
		upload_limit 200Mbit
		upload_limit_per_peer 5MB/s
		upload_limit_per_address 20MB/s
		http_gateway https://edge2.example.com
		dht server
		bootstrap /ip4/192.0.2.8/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5
		delegated_routing https://indexer.example.com
		provide all
		reprovide_interval 12h
	}
}
:8080 {
	pacman /ipfs/* {
		window 32
		max_window 48
		max_leaves_in_flight 256
		readahead 4
		max_ranges 8
		max_network_requests 32
		resolve_timeout 20s
		stall_timeout 5s
		subdomain_hosts dweb.example.com localhost
		access allowlist
		allow_file /etc/pacman/allow.txt
		deny_file /etc/pacman/deny.txt
		origin https://origin.example.com/media
		origin_after 750ms
	}
}
`

// TestCaddyfileModules: the resolve, source and policy subdirectives name
// the modules the shorthands stand for, and adapt to the same JSON.
func TestCaddyfileModules(t *testing.T) {
	caddytest.AssertAdapt(t, strings.Replace(adaptedCaddyfile, `		access allowlist
		allow_file /etc/pacman/allow.txt
		deny_file /etc/pacman/deny.txt
		origin https://origin.example.com/media
		origin_after 750ms
`, `		policy allow_list /etc/pacman/allow.txt
		policy deny_list /etc/pacman/deny.txt
		source bitswap
		source origin https://origin.example.com/media {
			after 750ms
		}
`, 1), "caddyfile", adaptedJSON)
}

// adaptedJSON is the JSON both spellings of adaptedCaddyfile adapt to.
const adaptedJSON = `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"match": [
								{
									"path": [
										"/ipfs/*"
									]
								}
							],
							"handle": [
								{
									"handler": "pacman",
									"max_leaves_in_flight": 256,
									"max_network_requests": 32,
									"max_ranges": 8,
									"max_window": 48,
									"policies": [
										{
											"file": "/etc/pacman/allow.txt",
											"policy": "allow_list"
										},
										{
											"file": "/etc/pacman/deny.txt",
											"policy": "deny_list"
										}
									],
									"readahead": 4,
									"resolve_timeout": 20000000000,
									"route": "/ipfs/*",
									"sources": [
										{
											"source": "bitswap"
										},
										{
											"after": 750000000,
											"source": "origin",
											"url": "https://origin.example.com/media"
										}
									],
									"stall_timeout": 5000000000,
									"subdomain_hosts": [
										"dweb.example.com",
										"localhost"
									],
									"window": 32
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"data_dir": "/var/lib/pacman",
			"listen": [
				"/ip4/0.0.0.0/tcp/4001",
				"/ip4/0.0.0.0/udp/4001/quic-v1"
			],
			"peers": [
				"/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
			],
			"max_connections": 400,
			"max_inbound_connections": 300,
			"max_streams": 4000,
			"max_memory": 536870912,
			"cache_size": 53687091200,
			"upload_limit": 25000000,
			"upload_limit_per_peer": 5000000,
			"upload_limit_per_address": 20000000,
			"http_gateways": [
				"https://edge2.example.com"
			],
			"routing": {
				"dht": "server",
				"bootstrap": [
					"/ip4/192.0.2.8/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
				],
				"delegated": [
					"https://indexer.example.com"
				],
				"provide": "all",
				"reprovide_interval": 43200000000000
			}
		}
	}
}`

func TestCaddyfileErrors(t *testing.T) {
	cases := map[string]struct{ cfg, err string }{
		"unknown subdirective": {":8080 {\n pacman {\n  nope 1\n }\n}", `unknown subdirective \"nope\"`},
		"removed reask_after":  {":8080 {\n pacman {\n  reask_after 2s\n }\n}", "reask_after is gone: the node asks another holder as soon as a peer is late"},
		"removed, in a module": {":8080 {\n pacman {\n  source bitswap {\n   reask_after 2s\n  }\n }\n}", "reask_after is gone"},
		"non-integer window":   {":8080 {\n pacman {\n  window many\n }\n}", `window: \"many\" is not an integer`},
		"bad duration":         {":8080 {\n pacman {\n  stall_timeout soon\n }\n}", "stall_timeout: "},
		"missing value":        {":8080 {\n pacman {\n  window\n }\n}", "wrong argument count"},
		"unknown access":       {":8080 {\n pacman {\n  access sometimes\n }\n}", "access must be local, allowlist or open"},
		"unknown global":       {"{\n pacman {\n  nope x\n }\n}\n:8080", `unknown pacman option \"nope\"`},
		"data_dir arity":       {"{\n pacman {\n  data_dir a b\n }\n}\n:8080", "wrong argument count"},
		"bad size":             {"{\n pacman {\n  max_memory lots\n }\n}\n:8080", "max_memory: "},
		"bad cache size":       {"{\n pacman {\n  cache_size -1GiB\n }\n}\n:8080", "cache_size: "},
		"bad rate":             {"{\n pacman {\n  upload_limit fast\n }\n}\n:8080", `upload_limit: \"fast\" is not a rate`},
		"bad dht":              {"{\n pacman {\n  dht maybe\n }\n}\n:8080", "want client, server or auto"},
		"bad provide":          {"{\n pacman {\n  provide some\n }\n}\n:8080", "want roots, all or none"},
		"bad delegated":        {"{\n pacman {\n  delegated_routing indexer\n }\n}\n:8080", "want an http:// or https:// URL"},
		"bad origin":           {":8080 {\n pacman {\n  origin ftp://x\n }\n}", "want an http:// or https:// URL"},
		"unknown module":       {":8080 {\n pacman {\n  source carrier_pigeon\n }\n}", `source \"carrier_pigeon\": no such module; the pacman.sources are bitswap, origin, trustless_gateway`},
		"misspelt resolver":    {":8080 {\n pacman {\n  resolve ipsf\n }\n}", `the pacman.resolvers are catalog, dnslink, ipfs, ipns, live`},
		"allowlist, no file":   {":8080 {\n pacman {\n  access allowlist\n }\n}", "allow_list needs a file"},
		"catalog arity":        {":8080 {\n pacman {\n  resolve catalog\n }\n}", "wrong argument count"},
		"origin_after alone":   {":8080 {\n pacman {\n  origin_after 1s\n }\n}", "origin_after needs an origin"},
		"bad switch":           {"{\n pacman {\n  hole_punching maybe\n }\n}\n:8080", `hole_punching: want on or off, got \"maybe\"`},
		"bad reachability":     {"{\n pacman {\n  reachability sometimes\n }\n}\n:8080", "want auto, public or private"},
		"bad relay":            {"{\n pacman {\n  relay_client /ip4/1.2.3.4/tcp/1\n }\n}\n:8080", "static relay"},
		"bad announce":         {"{\n pacman {\n  announce nowhere\n }\n}\n:8080", `announce \"nowhere\"`},
		"origin_pull arity":    {":8080 {\n pacman {\n  resolve origin_pull\n }\n}", "wrong argument count"},
		"origin_pull url":      {":8080 {\n pacman {\n  resolve origin_pull bucket.example.com\n }\n}", "want an http:// or https:// URL"},
		"bad max_pulls":        {":8080 {\n pacman {\n  resolve origin_pull https://o.example {\n   max_pulls 0\n  }\n }\n}", "max_pulls: want a count of at least 1"},
		"viewers option":       {"{\n pacman {\n  viewers {\n   max_peers 3\n  }\n }\n}\n:8080", `unknown viewers option \"max_peers\"; the options are max_viewers, max_per_address, relay_data and relay_duration`},
		"viewers count":        {"{\n pacman {\n  viewers {\n   max_viewers 0\n  }\n }\n}\n:8080", "viewers max_viewers: 0 is not a count of at least 1"},
		"viewers data":         {"{\n pacman {\n  viewers {\n   relay_data 2GiB\n  }\n }\n}\n:8080", "is not between 1 byte and 1 GiB"},
		"viewers duration":     {"{\n pacman {\n  viewers {\n   relay_duration -1s\n  }\n }\n}\n:8080", "is not a positive duration"},
		"viewers arguments":    {"{\n pacman {\n  viewers on\n }\n}\n:8080", "wrong argument count"},
		"pacman_viewers args":  {":8080 {\n pacman_viewers /x y\n}", "pacman_viewers takes no arguments"},
		"viewers off":          {":8080 {\n pacman_viewers\n}", "viewer peers are off; turn them on in the pacman global option: pacman { viewers }"},
		"bad max_pull_size":    {":8080 {\n pacman {\n  resolve origin_pull https://o.example {\n   max_pull_size huge\n  }\n }\n}", "max_pull_size: want a size"},
	}
	// The admin API answers in JSON, so quotes in messages arrive escaped.
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			caddytest.AssertLoadError(t, tc.cfg, "caddyfile", tc.err)
		})
	}
}

// TestExampleCaddyfileAdapts keeps Caddyfile.example valid.
func TestExampleCaddyfileAdapts(t *testing.T) {
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	for _, want := range []string{`"handler":"pacman"`, `"data_dir":"./pacman-data"`, `"window":16`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
}

// TestLiveCaddyfileAdapt checks the live directive, resolver and global
// option against the JSON they must produce.
func TestLiveCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, liveCaddyfile, "caddyfile", liveJSON)
}

const liveCaddyfile = `
{
	pacman {
		live_trust 12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5
		swarm_key /etc/pacman/swarm.key
	}
}
:8080 {
	pacman_live_ingest /ingest/* {
		token {env.LIVE_TOKEN}
		token {env.CONCERT_TOKEN} concert
		max_segment_size 32MiB
		part_target 333ms
	}
	pacman {
		resolve live /live/ {
			window 8
			history
			streams concert match
		}
		resolve ipns
		resolve dnslink {
			ttl 5m
			by_host
			dns https://dns.example.net/dns-query
		}
		resolve ipfs
	}
}
`

const liveJSON = `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"match": [
								{
									"path": [
										"/ingest/*"
									]
								}
							],
							"handle": [
								{
									"handler": "pacman_live_ingest",
									"max_segment_size": 33554432,
									"part_target": 333000000,
									"tokens": [
										{
											"token": "{env.LIVE_TOKEN}"
										},
										{
											"streams": [
												"concert"
											],
											"token": "{env.CONCERT_TOKEN}"
										}
									]
								}
							]
						},
						{
							"handle": [
								{
									"handler": "pacman",
									"resolvers": [
										{
											"history": true,
											"prefix": "/live/",
											"resolver": "live",
											"streams": [
												"concert",
												"match"
											],
											"window": 8
										},
										{
											"resolver": "ipns"
										},
										{
											"by_host": true,
											"dns": "https://dns.example.net/dns-query",
											"resolver": "dnslink",
											"ttl": 300000000000
										},
										{
											"resolver": "ipfs"
										}
									]
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"live_trust": [
				"12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
			],
			"swarm_key": "/etc/pacman/swarm.key"
		}
	}
}`

// TestConformanceCaddyfile: the configuration documented for the gateway
// conformance suite adapts to one server on the address asked for that
// answers every host (subdomain origins and DNSLink sites included) as a
// subdomain gateway for localhost.
func TestConformanceCaddyfile(t *testing.T) {
	t.Setenv("PACMAN_CONFORMANCE_DATA", "/tmp/conformance-data")
	t.Setenv("PACMAN_CONFORMANCE_PORT", "18581")
	src, err := os.ReadFile("../conformance/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string
					Routes []struct {
						Match  []map[string]any
						Handle []map[string]any
					}
				}
			}
			Pacman struct {
				DataDir string `json:"data_dir"`
			}
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Apps.Pacman.DataDir != "/tmp/conformance-data" || len(cfg.Apps.HTTP.Servers) != 1 {
		t.Fatalf("adapted to %s", out)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		if !slices.Equal(srv.Listen, []string{"127.0.0.1:18581"}) || len(srv.Routes) != 1 || srv.Routes[0].Match != nil {
			t.Errorf("listens on %v with routes %+v; want 127.0.0.1:18581 and no host matcher", srv.Listen, srv.Routes)
		}
		if !strings.Contains(string(out), `"subdomain_hosts":["localhost"]`) {
			t.Errorf("no subdomain gateway for localhost in %s", out)
		}
	}
}

// TestNATCaddyfileAdapt checks the NAT global options against the JSON
// they must produce.
func TestNATCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, `
{
	pacman {
		nat_port_map on
		autonat off
		hole_punching off
		relay_client /ip4/198.51.100.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5
		relay_service on
		announce /ip4/203.0.113.9/tcp/4001 /ip4/203.0.113.9/udp/4001/quic-v1
		no_announce /ip4/10.0.0.0/ipcidr/8
		reachability private
	}
}
:8080 {
	pacman
}
`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "pacman"
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"nat": {
				"port_map": true,
				"disable_autonat": true,
				"disable_hole_punching": true,
				"static_relays": [
					"/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
				],
				"relay_service": true,
				"announce": [
					"/ip4/203.0.113.9/tcp/4001",
					"/ip4/203.0.113.9/udp/4001/quic-v1"
				],
				"no_announce": [
					"/ip4/10.0.0.0/ipcidr/8"
				],
				"reachability": "private"
			}
		}
	}
}`)
	caddytest.AssertAdapt(t, "{\n\tpacman {\n\t\trelay_client off\n\t}\n}\n\n:8080 {\n\tpacman\n}\n", "caddyfile",

		`{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "pacman"
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"nat": {
				"disable_relay_client": true
			}
		}
	}
}`)
}

// TestReadmeCaddyfilesAdapt adapts every ```caddyfile block of README.md,
// so none can rot: a whole Caddyfile as it is, a fragment of a site block
// (it starts with a directive) inside one. Every block must adapt without
// warnings but caddy fmt's about layout.
func TestReadmeCaddyfilesAdapt(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```caddyfile":
			cur = new(strings.Builder)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) < 5 {
		t.Fatalf("found %d caddyfile blocks in README.md", len(blocks))
	}
	for i, block := range blocks {
		body := block
		if first := strings.Fields(block); len(first) > 1 && first[1] == "{" && !strings.Contains(first[0], ".") && first[0] != "localhost" && !strings.HasPrefix(first[0], ":") {
			// A directive: the fragment of a site block.
			body = "example.com {\n" + block + "}\n"
		}
		_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), nil)
		if err != nil {
			t.Errorf("README's caddyfile block %d does not adapt: %v\n%s", i+1, err, block)
			continue
		}
		for _, w := range warnings {
			// Comments aligned for reading are not caddy fmt's layout.
			if !strings.Contains(w.Message, "not formatted") {
				t.Errorf("README's caddyfile block %d: %s", i+1, w)
			}
		}
	}
}

// TestUnsetTokenVariable: an ingest token given as an environment variable
// that is not set says so, naming the variable (it said the token was
// shorter than 16 characters).
func TestUnsetTokenVariable(t *testing.T) {
	dataDir := caddyDataDir(t)
	cfg := fmt.Sprintf(`{
	admin localhost:2999
	pacman {
		data_dir %s
		listen /ip4/127.0.0.1/tcp/0
	}
}
:9080 {
	pacman_live_ingest /ingest/* {
		token {env.PACMAN_TEST_UNSET_TOKEN}
	}
}
`, dataDir)
	caddytest.AssertLoadError(t, cfg, "caddyfile", "the environment variable PACMAN_TEST_UNSET_TOKEN is unset or empty")
}

// TestOriginPullCaddyfileAdapt: the origin_pull resolver, as README's "In
// front of an existing origin" writes it.
func TestOriginPullCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, `media.example.com {
	pacman /videos/* {
		resolve origin_pull https://bucket.example.com {
			revalidate 30s
			max_pulls 2
			max_pull_size 4GiB
		}
	}
}`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":443"
					],
					"routes": [
						{
							"match": [
								{
									"host": [
										"media.example.com"
									]
								}
							],
							"handle": [
								{
									"handler": "subroute",
									"routes": [
										{
											"handle": [
												{
													"handler": "pacman",
													"resolvers": [
														{
															"max_pull_size": 4294967296,
															"max_pulls": 2,
															"origin": "https://bucket.example.com",
															"resolver": "origin_pull",
															"revalidate": 30000000000
														}
													],
													"route": "/videos/*"
												}
											],
											"match": [
												{
													"path": [
														"/videos/*"
													]
												}
											]
										}
									]
								}
							],
							"terminal": true
						}
					]
				}
			}
		}
	}
}`)
}

// TestViewersCaddyfileAdapt: the global option's viewers block sets the
// limits, and pacman_viewers is a route of its own, before pacman.
func TestViewersCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, `
{
	pacman {
		viewers {
			max_viewers 5000
			max_per_address 4
			relay_data 64KiB
			relay_duration 1m
		}
	}
}
:8080 {
	pacman_viewers
	pacman /live/*
}
`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "pacman_viewers"
								}
							]
						},
						{
							"match": [
								{
									"path": [
										"/live/*"
									]
								}
							],
							"handle": [
								{
									"handler": "pacman",
									"route": "/live/*"
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"viewers": {
				"max_viewers": 5000,
				"max_per_address": 4,
				"relay_data": 65536,
				"relay_duration": 60000000000
			}
		}
	}
}`)
	// A bare viewers takes the defaults.
	caddytest.AssertAdapt(t, "{\n\tpacman {\n\t\tviewers\n\t}\n}\n:8080 {\n\tpacman_viewers\n}\n", "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "pacman_viewers"
								}
							]
						}
					]
				}
			}
		},
		"pacman": {
			"viewers": {}
		}
	}
}`)
}
