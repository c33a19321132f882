#!/usr/bin/env bash
# Three pacman edges on loopback, each naming the others as peers: a
# fleet in one command, to try what README's "Many edges" says. Run it
# from the checkout after ./xcaddy.sh; Ctrl-C stops the three Caddys.
#
#   examples/fleet-on-loopback.sh
#
# CADDY (default ./caddy), BASE (default 18080) and DIR (default a new
# temporary directory) may be set. Edge i serves HTTP on BASE+i, listens
# for peers on BASE+10+i and has its admin endpoint on localhost:BASE+20+i.
set -euo pipefail
caddy=${CADDY:-./caddy}
base=${BASE:-18080}
dir=${DIR:-$(mktemp -d /tmp/pacman-fleet-XXXXXX)}
mkdir -p "$dir"

# The peer IDs exist before the first start: `caddy pacman id` makes them.
for i in 0 1 2; do
	"$caddy" pacman id --data-dir "$dir/edge$i" --listen "/ip4/127.0.0.1/tcp/$((base + 10 + i))" 2>/dev/null |
		sed -n 2p >"$dir/peer$i"
done
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
for i in 0 1 2; do
	peers=""
	for j in 0 1 2; do
		if [ "$i" != "$j" ]; then
			peers+="		$(cat "$dir/peer$j")"$'\n'
		fi
	done
	cat >"$dir/Caddyfile$i" <<EOF
{
	admin localhost:$((base + 20 + i))
	pacman {
		data_dir $dir/edge$i
		listen /ip4/127.0.0.1/tcp/$((base + 10 + i))
$peers	}
}

:$((base + i)) {
	pacman /ipfs/*
}
EOF
	"$caddy" run --config "$dir/Caddyfile$i" --adapter caddyfile >"$dir/edge$i.log" 2>&1 &
done
echo "three edges: http://127.0.0.1:$base http://127.0.0.1:$((base + 1)) http://127.0.0.1:$((base + 2)) (Caddyfiles, data and logs in $dir)"
echo "add a file to edge 0:  $caddy pacman add --address localhost:$((base + 20)) FILE"
echo "fetch it through edge 2:  curl -o out http://127.0.0.1:$((base + 2))/ipfs/<cid>"
wait
