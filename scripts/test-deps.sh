#!/usr/bin/env bash
# Installs what the test suite drives besides Go: a real Chromium for the
# report test, Python's gRPC for the Python plugin test, and Node with
# DuckDB (@duckdb/node-api) to read the exported Parquet independently and
# @dwmkerr/mock-llm to serve the local plugin, both in $PGRULES_NODE_DIR
# (default ~/.cache/pgrules-test/node). Debian/Ubuntu
# packages, non-interactive, as root (or with passwordless sudo); elsewhere
# it says what to install and fails.
set -euo pipefail

need=()
if [ -z "${PGRULES_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
	need+=(chromium)
fi
# The Python the plugin's wrapper would pick (plugins/python-example).
havepy=
for py in "${PGRULES_PYTHON:-}" /usr/bin/python3 python3; do
	[ -n "$py" ] && "$py" -c 'import grpc, grpc_tools, cryptography' 2>/dev/null && havepy=1 && break
done
[ -n "$havepy" ] || need+=(python3 python3-grpcio python3-grpc-tools python3-cryptography)
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)

# npm packages, once the system ones are there.
# @dwmkerr/mock-llm is an OpenAI-compatible server written by others: the
# local plugin is tested against it as well as against our own httptest one.
node_deps() {
	local dir=${PGRULES_NODE_DIR:-$HOME/.cache/pgrules-test/node}
	[ -d "$dir/node_modules/@duckdb/node-api" ] && [ -d "$dir/node_modules/@dwmkerr/mock-llm" ] && return 0
	echo "test-deps: npm install @duckdb/node-api @dwmkerr/mock-llm into $dir" >&2
	mkdir -p "$dir"
	(cd "$dir" && npm install --no-audit --no-fund --silent @duckdb/node-api@1.5.6-r.1 @dwmkerr/mock-llm@0.1.29 >/dev/null)
}
if [ ${#need[@]} -eq 0 ]; then
	node_deps
	exit 0
fi

echo "test-deps: installing ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "test-deps: need ${need[*]}: install them (apt-get install ${need[*]}) or set PGRULES_CHROMIUM / PGRULES_PYTHON" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps: no apt-get here: install ${need[*]} with your package manager, or set PGRULES_CHROMIUM" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
node_deps
