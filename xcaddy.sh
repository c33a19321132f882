#!/usr/bin/env bash
# Builds ./caddy from this checkout: Caddy's standard modules plus pacman.
# It is the binary `xcaddy build --with github.com/pacman-cdn/pacman=.`
# would make, built with the versions pinned in go.mod/go.sum, so it needs
# only the Go toolchain and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")"
go build -trimpath -o ./caddy ./cmd/caddy
./caddy list-modules | grep -qx 'http.handlers.pacman' || { echo "pacman modules missing from ./caddy" >&2; exit 1; }
echo "built ./caddy ($(./caddy version | head -c 60))"
