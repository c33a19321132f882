#!/usr/bin/env bash
# Viewer peers' offload, in the shape of the p2p-media-loader anchor of
# issue 26: a 60 s HLS stream (30 segments of 2 s, about 11.7 MB), VIEWERS
# viewers in separate Chromium contexts starting GAP seconds apart, each
# playing PLAY seconds. One `caddy run` with viewer peers on serves two
# pages side by side: one with /pacman/peer.js, one with hls.js alone (the
# baseline). The edge's own count of the bytes it sent for the stream
# (its access log) gives the offload: 1 - bytes with peers / bytes without.
#   bash bench/viewers/run.sh          # RUNS=2 VIEWERS=4 GAP=5 PLAY=45
# Needs ffmpeg, Debian's chromium and e2e/player's node_modules.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-2} viewers=${VIEWERS:-4} gap=${GAP:-5} play=${PLAY:-45}
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
mkdir -p "$work/hls" "$work/www"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=25 -t 60 -c:v libx264 -preset veryfast -g 50 \
	-b:v 1500k -maxrate 1500k -bufsize 3000k -f hls -hls_time 2 -hls_playlist_type vod \
	-hls_segment_filename "$work/hls/seg%02d.ts" "$work/hls/index.m3u8"
cp caddymodule/cli/demoassets/hls.light.min.js "$work/www/"
page() { # the page, with or without peer.js
	printf '<!doctype html><video muted autoplay></video><script src="/hls.light.min.js"></script>%s<script>
const hls = new Hls(); if (window.PacmanPeers) PacmanPeers.attach(hls);
hls.loadSource(location.hash.slice(1)); hls.attachMedia(document.querySelector("video"));
</script>' "$1"
}
page '<script src="/pacman/peer.js"></script>' >"$work/www/peers.html"
page '' >"$work/www/plain.html"
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:2998
	pacman {
		data_dir $work/data
		listen /ip4/127.0.0.1/tcp/0 /ip4/127.0.0.1/udp/0/quic-v1/webtransport
		viewers
	}
}
:8098 {
	log {
		output file $work/access.log
		format json
	}
	pacman_viewers
	pacman /ipfs/*
	file_server {
		root $work/www
	}
}
CADDY
"$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:8098/pacman/viewers.json && break; sleep 0.2; done
root=$("$work/caddy" pacman add --address localhost:2998 "$work/hls" | cut -d' ' -f1)
size=$(cat "$work/hls"/*.ts | wc -c)
sent() { # bytes the edge sent under /ipfs/ since the log was emptied
	jq -s '[.[] | select(.request.uri | startswith("/ipfs/")) | .size] | add // 0' "$work/access.log"
}
printf 'stream %d bytes, %d viewers %d s apart, %d s each\n' "$size" "$viewers" "$gap" "$play"
printf '%-4s %14s %14s %8s %s\n' run without with offload 'from peers per viewer'
for r in $(seq "$runs"); do
	: >"$work/access.log"
	node e2e/player/offload.mjs "http://127.0.0.1:8098/plain.html#/ipfs/$root/index.m3u8" "$viewers" "$gap" "$play" >/dev/null
	without=$(sent)
	: >"$work/access.log"
	stats=$(node e2e/player/offload.mjs "http://127.0.0.1:8098/peers.html#/ipfs/$root/index.m3u8" "$viewers" "$gap" "$play")
	with=$(sent)
	printf '%-4s %14d %14d %7.1f%% %s\n' "$r" "$without" "$with" "$(echo "100 * (1 - $with / $without)" | bc -l)" \
		"$(echo "$stats" | jq -c '[.[] | .fromPeers]')"
done
