#!/usr/bin/env bash
# origin_pull in front of an origin: three `caddy run` edges, each with
# only `resolve origin_pull`, either peered as one fleet or each alone,
# and a 256 MiB file on the origin. One full GET through the first edge,
# then one through each of the others, then one more through all three;
# or, with "together", one cold GET through each edge at the same moment.
# Prints the origin's egress as a multiple of the file.
#   bash bench/originpull/run.sh fleet [together]
#   bash bench/originpull/run.sh alone [together]     # the baseline
set -euo pipefail
mode=${1:?fleet or alone}
shape=${2:-one after another}
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/origin" ./bench/originpull/origin
"$work/origin" -addr 127.0.0.1:9901 & echo $! >"$work/origin.pid"
for i in 0 1 2; do "$work/caddy" pacman id --data-dir "$work/d$i" | awk 'NR == 1 { print $NF }' >"$work/id$i"; done
for i in 0 1 2; do
	peers=""
	if [ "$mode" = fleet ]; then
		for j in 0 1 2; do [ "$j" = "$i" ] || peers+="		peer /ip4/127.0.0.1/tcp/$((4100 + j))/p2p/$(cat "$work/id$j")"$'\n'; done
	fi
	cat >"$work/Caddyfile$i" <<CADDY
{
	admin localhost:$((2100 + i))
	pacman {
		data_dir $work/d$i
		listen /ip4/127.0.0.1/tcp/$((4100 + i))
$peers	}
}
http://127.0.0.1:$((8100 + i)) {
	pacman /videos/* {
		resolve origin_pull http://127.0.0.1:9901
	}
}
CADDY
	"$work/caddy" run --config "$work/Caddyfile$i" --adapter caddyfile >"$work/log$i" 2>&1 &
	echo $! >"$work/$i.pid"
done
sleep 4
# settle waits until the origin has sent nothing for a second: the pulls are done.
settle() {
	local a b
	a=$(curl -s localhost:9901/count)
	while sleep 1; b=$(curl -s localhost:9901/count); [ "$a" != "$b" ]; do a=$b; done
}
get() { curl -s -o /dev/null -w "%{http_code} " "http://127.0.0.1:$((8100 + $1))/videos/film.mp4"; }
if [ "$shape" = together ]; then
	get 0 & a=$!; get 1 & b=$!; get 2 & c=$!; wait $a $b $c; settle
else
	get 0; settle
	get 1; get 2; settle
	get 0; get 1; get 2; settle
fi
echo
awk -v n="$(curl -s localhost:9901/count)" -v m="$mode" -v s="$shape" 'BEGIN { printf "%s, %s: the origin sent %.3fx the file\n", m, s, n / (256 * 1048576) }'
