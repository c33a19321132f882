#!/usr/bin/env bash
# Warm hits: one `caddy run` serves the same 100 MiB file two ways, pacman
# from its store and file_server from disk, and wrk asks each in turn for
# random ranges (64 connections, RUNS rounds of 6 s each). Prints requests
# per second and pacman's ratio to file_server for each range size.
#   bash bench/warm/run.sh            # 64 KiB, 256 KiB, 2 MiB ranges, full GETs
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
mkdir -p "$work/www"
head -c 104857600 /dev/urandom >"$work/www/file.bin"
cid=$("$work/caddy" pacman add --data-dir "$work/data" "$work/www/file.bin" | cut -d' ' -f1)
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:2999
	pacman {
		data_dir $work/data
		listen /ip4/127.0.0.1/tcp/0
	}
}
:8099 {
	pacman /ipfs/*
	file_server /www/* {
		root $work
	}
}
CADDY
"$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:8099/www/file.bin" -r 0-0 && break; sleep 0.2; done
rps() {
	RSIZE=104857600 RLEN=$1 RPATH=$2 wrk -t2 -c64 -d6s -s bench/warm/random-range.lua http://127.0.0.1:8099 |
		awk '/Requests\/sec/{print $2}'
}
printf '%-8s %12s %12s %7s\n' range pacman file_server ratio
for len in 65536 262144 2097152 0; do
	for _ in $(seq "$runs"); do
		p=$(rps "$len" "/ipfs/$cid")
		f=$(rps "$len" /www/file.bin)
		printf '%-8s %12s %12s %7.2f\n' "$([ "$len" = 0 ] && echo full || echo $((len >> 10))KiB)" "$p" "$f" "$(echo "$p / $f" | bc -l)"
	done
done
