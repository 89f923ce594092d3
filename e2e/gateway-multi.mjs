// Several upstreams under one issuer, with the official TypeScript SDK
// client: clerk-mcp-proxy (dev) serves @modelcontextprotocol/server-everything
// at BASE/everything/mcp (UPSTREAMS: a path other than /mcp, its own
// protected resource) beside the built-in tools at BASE/mcp. The client signs
// in for the upstream (discovery from the 401's resource_metadata, RFC 8707
// resource = that path), uses it, is refused at /mcp with that token (401
// naming /mcp's metadata), and signs in again for /mcp. This is the shape
// claude.ai is reported to mishandle (anthropics/claude-ai-mcp#878, #930).
// Usage: node e2e/gateway-multi.mjs <BASE_URL>
import { HeadlessProvider, connect } from "./lib/sdk-auth.mjs";

const [base] = process.argv.slice(2);
const upstreamURL = new URL(base + "/everything/mcp");
const builtinURL = new URL(base + "/mcp");
const check = (cond, what) => {
  if (!cond) throw new Error(what);
  console.log(`  ok  ${what}`);
};

async function main() {
  const up = new HeadlessProvider({ base, name: "multi e2e upstream", registered: "http://127.0.0.1:41003/callback" });
  const client = await connect(upstreamURL, up, { name: "multi-e2e" });
  check(client.getServerVersion()?.name?.includes("everything"), `signed in at ${upstreamURL.pathname} to ${client.getServerVersion()?.name}`);
  check(up.authorizeURL.searchParams.get("resource") === upstreamURL.href, `the SDK asked for resource=${up.authorizeURL.searchParams.get("resource")}`);
  const echo = await client.callTool({ name: "echo", arguments: { message: "at its own path" } });
  check(echo.content?.[0]?.text?.includes("at its own path"), "tools/call echo at the upstream's path");

  const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/everything/mcp`)).json();
  check(prm.resource === upstreamURL.href && prm.authorization_servers?.[0] === base, "the upstream's own metadata (path-inserted URL)");

  const refused = await fetch(builtinURL, {
    method: "POST",
    headers: { authorization: `Bearer ${up.t.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  const challenge = refused.headers.get("www-authenticate") ?? "";
  check(refused.status === 401 && challenge.includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`),
    `the upstream's token at /mcp: ${refused.status} ${challenge.slice(0, 90)}`);

  const own = new HeadlessProvider({ base, name: "multi e2e builtin", registered: "http://127.0.0.1:41004/callback" });
  const builtin = await connect(builtinURL, own, { name: "multi-e2e" });
  check(own.authorizeURL.searchParams.get("resource") === builtinURL.href, "a second sign-in for /mcp, with its own resource");
  const tools = (await builtin.listTools()).tools.map((t) => t.name);
  check(tools.includes("get-user-info"), `the built-in tools at /mcp (${tools.join(", ")})`);
  // The first session still works: one client's two resources do not interfere.
  const again = await client.callTool({ name: "echo", arguments: { message: "still here" } });
  check(again.content?.[0]?.text?.includes("still here"), "the upstream session goes on");
  await client.close();
  await builtin.close();
}

main().then(() => console.log("gateway-multi: PASS"), (e) => {
  console.error("gateway-multi: FAIL:", e?.stack ?? e);
  process.exit(1);
});
