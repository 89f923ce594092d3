# Shared by the e2e client scripts (sourced).

# free_port prints a free loopback TCP port.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# sign_in_printed_url PID LOG REDIRECT: waits until the client under test
# (PID) prints an authorization URL to LOG, then plays the browser through
# the consent page and the fake Clerk's sign-in to its REDIRECT callback.
sign_in_printed_url() {
  local pid=$1 log=$2 redirect=$3 url=
  for _ in $(seq 1 300); do
    url=$(grep -oE 'http://[^ ]+/authorize\?[^ ]+' "$log" | head -n1 || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$url" ] || { echo "no authorization URL printed:"; cat "$log"; return 1; }
  node "$(dirname "${BASH_SOURCE[0]}")/drive.mjs" "$url" "$redirect"
}

# wait_port PORT: waits until something listens on loopback PORT.
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on port $1" >&2; return 1; }

# start_gateway_dev PROXY_BIN ART EVERYTHING_PORT GATEWAY_PORT CLERK_PORT [VAR=value...]:
# starts @modelcontextprotocol/server-everything (streamable HTTP) and
# `clerk-mcp-proxy dev` (the fake Clerk in-process) with the extra
# environment given, appends both pids to the caller's pids array, and
# waits for both. The caller passes --upstream or UPSTREAMS itself.
start_gateway_dev() {
  local bin=$1 art=$2 ep=$3 gp=$4 mp=$5; shift 5
  PORT=$ep node node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp >"$art/everything.log" 2>&1 &
  pids+=($!)
  wait_port "$ep"
  env -i PATH="$PATH" HOME="$art" LISTEN_ADDR="127.0.0.1:$gp" MOCKCLERK_ADDR="127.0.0.1:$mp" \
    RATE_LIMIT_REGISTER=0 RATE_LIMIT_TOKEN=0 RATE_LIMIT_AUTHORIZE=0 "$@" >"$art/proxy.log" 2>&1 &
  pids+=($!)
  wait_port "$gp"
}
