#!/usr/bin/env bash
# Players seeking in a 1 GiB file before its pull has finished: one
# `caddy run` edge with only `resolve origin_pull`, in front of an origin
# that answers after 20 ms and sends each response at 100 MB/s (the pull
# takes about 11 s). A cold GET starts the pull; then, while it runs, 2 MiB
# ranges at random offsets, each asked through the edge and straight from
# the origin, one after the other. Every range through the edge is checked
# against the origin's bytes. Prints the times to first byte of both.
#   bash bench/originpull/seek.sh [seeks]
set -euo pipefail
seeks=${1:-20}
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/origin" ./bench/originpull/origin
"$work/origin" -addr 127.0.0.1:9911 -size $((1 << 30)) -latency 20ms -rate 100000000 & echo $! >"$work/origin.pid"
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:2111
	pacman {
		data_dir $work/d
		listen /ip4/127.0.0.1/tcp/4111
	}
}
http://127.0.0.1:8111 {
	pacman /videos/* {
		resolve origin_pull http://127.0.0.1:9911
	}
}
CADDY
"$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/log" 2>&1 &
echo $! >"$work/caddy.pid"
for _ in $(seq 300); do curl -s -o /dev/null localhost:9911/count && curl -s -o /dev/null localhost:2111/config/ && break; sleep 0.1; done
sleep 1
curl -s -o /dev/null http://127.0.0.1:8111/videos/film.mp4 & echo $! >"$work/cold.pid"
sleep 1
ttfb() { curl -s -o "$2" -w '%{time_starttransfer}\n' -H "Range: bytes=$3-$(($3 + 2097151))" "$1"; }
for i in $(seq "$seeks"); do
	off=$(( (RANDOM * 32768 + RANDOM) % ((1 << 30) - (2 << 20)) ))
	ttfb http://127.0.0.1:8111/videos/film.mp4 "$work/e" "$off" >>"$work/edge.ttfb"
	ttfb http://127.0.0.1:9911/videos/film.mp4 "$work/o" "$off" >>"$work/origin.ttfb"
	cmp -s "$work/e" "$work/o" || { echo "seek $i at $off: the edge's bytes differ from the origin's"; exit 1; }
done
pulled=$(curl -s localhost:2111/metrics | awk '/^pacman_origin_pull_pulls_total\{result="pulled"\}/ { print $2 }')
stats() { sort -n "$1" | awk '{ v[NR] = $1 * 1000 } END { printf "p50 %.1f ms, max %.1f ms", v[int((NR + 1) / 2)], v[NR] }'; }
echo "$seeks seeks of 2 MiB during the pull (pulls finished by the end: ${pulled:-0})"
echo "time to first byte through the edge:  $(stats "$work/edge.ttfb")"
echo "time to first byte from the origin:   $(stats "$work/origin.ttfb")"
[ -z "${VERBOSE:-}" ] || paste "$work/edge.ttfb" "$work/origin.ttfb"
paste "$work/edge.ttfb" "$work/origin.ttfb" | awk '{ d = ($1 - $2) * 1000; s += d; if (d > m) m = d } END { printf "edge minus origin, seek by seek: mean %.1f ms, worst %.1f ms\n", s / NR, m }'
