#!/usr/bin/env bash
# Installs what the test suite drives besides Go: a real Chromium for the
# report test. Debian/Ubuntu packages, non-interactive, as root (or with
# passwordless sudo); elsewhere it says what to install and fails.
set -euo pipefail

need=()
if [ -z "${PGRULES_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
	need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "test-deps: installing ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "test-deps: need ${need[*]}: install them (apt-get install ${need[*]}) or set PGRULES_CHROMIUM to a Chrome binary" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps: no apt-get here: install ${need[*]} with your package manager, or set PGRULES_CHROMIUM" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
