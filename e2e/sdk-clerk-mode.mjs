// The official TypeScript MCP SDK client against the proxy in AUTH_MODE=clerk:
// it discovers the protected-resource metadata at the proxy, finds Clerk (the
// fake) named as the authorization server, registers AT CLERK (DCR), signs in
// on Clerk's page, redeems the code at Clerk and calls the tools at /mcp with
// Clerk's own access token. Usage:
//   node e2e/sdk-clerk-mode.mjs <BASE_URL> <CLERK_URL> <jwt|opaque>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Browser } from "./lib/browser.mjs";
import { MemoryProvider, checkTools, publicClientMetadata } from "./lib/provider.mjs";

const [base, clerk, format] = process.argv.slice(2);
const mcpURL = new URL(base + "/mcp");
const redirect = "http://127.0.0.1:41002/callback";
const calls = [];
const fetchLog = async (url, init) => {
  const res = await fetch(url, init);
  const u = new URL(url);
  calls.push(`${init?.method ?? "GET"} ${u.origin}${u.pathname} ${res.status}`);
  return res;
};
const check = (cond, what) => {
  if (!cond) throw new Error(what);
  console.log(`  ok  ${what}`);
};

class HeadlessProvider extends MemoryProvider {
  get redirectUrl() { return redirect; }
  get clientMetadata() { return publicClientMetadata("sdk clerk-mode e2e", redirect); }
  async redirectToAuthorization(url) {
    this.authorizeURL = url;
    const final = await new Browser().authorize(url.href, redirect);
    const q = final.searchParams;
    if (q.get("error")) throw new Error(`authorization error ${q.get("error")}: ${q.get("error_description")}`);
    if (q.get("state") !== this.st) throw new Error("state mismatch");
    this.code = q.get("code");
  }
}

async function main() {
  // 1. No token: 401 naming the protected-resource metadata, which names Clerk.
  const r = await fetch(mcpURL, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
  check(r.status === 401 && (r.headers.get("www-authenticate") ?? "").includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`),
    "POST /mcp without a token: 401 with resource_metadata");
  const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json();
  check(prm.resource === mcpURL.href && JSON.stringify(prm.authorization_servers) === JSON.stringify([clerk]),
    `protected-resource metadata names Clerk (${prm.authorization_servers}) as the authorization server`);

  // 2. The SDK's whole flow, at Clerk.
  const provider = new HeadlessProvider();
  let transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider, fetch: fetchLog });
  let client = new Client({ name: "sdk-clerk-e2e", version: "1.0.0" });
  try {
    await client.connect(transport);
    throw new Error("connected without signing in");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  await transport.finishAuth(provider.code);
  check(calls.includes(`POST ${clerk}/oauth/register 201`) && provider.ci?.client_id, `registered at Clerk by DCR (client ${provider.ci?.client_id})`);
  check(provider.authorizeURL.origin === clerk && provider.authorizeURL.searchParams.get("code_challenge_method") === "S256",
    "signed in at Clerk's /oauth/authorize with PKCE S256");
  check(provider.authorizeURL.searchParams.get("resource") === mcpURL.href, "asked Clerk for the MCP resource (RFC 8707)");
  check(calls.includes(`POST ${clerk}/oauth/token 200`), "code redeemed at Clerk's token endpoint");
  check(!calls.some((c) => c.includes(`${base}/register`) || c.includes(`${base}/token`) || c.includes(`${base}/authorize`)),
    "the proxy's own OAuth endpoints were never used");
  const tok = provider.t.access_token;
  check(format === "jwt" ? tok.split(".").length === 3 : tok.startsWith("oat_"), `Clerk issued a ${format} access token`);

  transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider, fetch: fetchLog });
  client = new Client({ name: "sdk-clerk-e2e", version: "1.0.0" });
  await client.connect(transport);
  await checkTools(client, check, provider.ci.client_id);
  const greet = await client.callTool({ name: "get-user-greeting", arguments: {} });
  check(!greet.isError, "get-user-greeting answers");
  await client.close();
}

main().then(() => console.log("sdk-clerk-mode: PASS"), (e) => {
  console.error("sdk-clerk-mode: FAIL:", e?.stack ?? e);
  console.error(calls.join("\n"));
  process.exit(1);
});
