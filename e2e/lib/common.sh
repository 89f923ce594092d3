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
