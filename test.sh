#!/usr/bin/env bash
# Runs every test of pacman: vet, the unit and end-to-end tests (libp2p
# nodes and Caddy on loopback only), the short tests again under the race
# detector, and each fuzz target for a few seconds.
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./...
go test -count=1 -race -short -timeout 20m ./...

# The microbenchmarks, briefly, so they cannot rot.
go test -run '^$' -bench . -benchtime 20x ./dag ./gateway ./node

# Fuzz each parser of untrusted input briefly. Counts, not durations: a
# time-boxed run can end with the coordinator's own "context deadline
# exceeded" while a worker is still minimizing, which is no finding.
for target in gateway/headers:FuzzParseRange:300000 gateway/headers:FuzzETagMatch:300000 \
	gateway/contentpath:FuzzContentPath:300000 caddymodule:FuzzCaddyfile:15000 \
	gateway:FuzzCARSelectors:5000 live:FuzzEncoderPlaylist:100000 live/cmaf:FuzzReader:100000; do
	IFS=: read -r pkg name execs <<<"$target"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "${execs}x" "./${pkg}"
done
