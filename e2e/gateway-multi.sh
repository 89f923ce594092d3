#!/usr/bin/env bash
# Several upstreams under one issuer (UPSTREAMS) with the TypeScript SDK
# client: @modelcontextprotocol/server-everything at /everything/mcp beside
# the built-in tools at /mcp, behind `clerk-mcp-proxy dev` (gateway-multi.mjs).
# Args: PROXY_BIN ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
source lib/common.sh
PROXY_BIN=$1 ART=$2/gateway-multi
mkdir -p "$ART"
EP=$(free_port) GP=$(free_port) MP=$(free_port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_gateway_dev "$PROXY_BIN" "$ART" "$EP" "$GP" "$MP" \
  UPSTREAMS="[{\"path\":\"/everything/mcp\",\"url\":\"http://127.0.0.1:$EP/mcp\",\"name\":\"server-everything\"}]" \
  "$PROXY_BIN" dev
node gateway-multi.mjs "http://127.0.0.1:$GP"
