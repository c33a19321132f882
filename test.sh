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
go test -run '^$' -bench . -benchtime 20x ./chunker ./gateway

fuzztime=${FUZZTIME:-10s}
for target in gateway/headers:FuzzParseRange gateway/headers:FuzzETagMatch gateway/contentpath:FuzzContentPath caddymodule:FuzzCaddyfile; do
	go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" "./${target%%:*}"
done
