// The official TypeScript MCP SDK client against the running proxy, with a
// headless OAuthClientProvider whose redirectToAuthorization plays the
// browser (consent page + fake Clerk sign-in). Usage:
//   node e2e/sdk-client.mjs <BASE_URL> <STEPUP_TOOL> [token-out-file] [redis-port]
// STEPUP_TOOL "-" skips the step-up (a proxy with no TOOL_SCOPES, as in the
// docker compose stack).
// Exercises: 401 + PRM discovery, AS metadata, DCR, PKCE, RFC 8252 loopback
// port relaxation (registered on one port, used on another), localhost vs
// 127.0.0.1, tools/list, tools/call, refresh after a junk access token, the
// 403 insufficient_scope step-up and, given the proxy's redis port, recovery
// after Redis lost every registration and grant.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { UnauthorizedError, auth } from "@modelcontextprotocol/sdk/client/auth.js";
import { checkTools } from "./lib/provider.mjs";
import { HeadlessProvider, connect } from "./lib/sdk-auth.mjs";

const [base, stepupTool, tokenOut, redisPort] = process.argv.slice(2);
const mcpURL = new URL(base + "/mcp");
const registered = "http://127.0.0.1:41001/callback";
const used = "http://127.0.0.1:41999/callback"; // same host, other port (RFC 8252 §7.3)
const calls = [];
const fetchLog = async (url, init) => {
  const res = await fetch(url, init);
  calls.push(`${init?.method ?? "GET"} ${new URL(url).pathname} ${res.status}`);
  return res;
};
const check = (cond, what) => {
  if (!cond) throw new Error(what);
  console.log(`  ok  ${what}`);
};

const sdkConnect = (provider) => connect(mcpURL, provider, { fetch: fetchLog });

async function main() {
  // 1. No token: 401 naming the protected-resource metadata.
  const r = await fetch(mcpURL, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
  check(r.status === 401 && (r.headers.get("www-authenticate") ?? "").includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`),
    "POST /mcp without a token: 401 with resource_metadata");

  // 2. The whole flow through the SDK's auth().
  const provider = new HeadlessProvider({ base, name: "sdk e2e", registered, used });
  const client = await sdkConnect(provider);
  check(calls.some((c) => c.startsWith("GET /.well-known/oauth-protected-resource")), "discovered the protected-resource metadata");
  check(calls.some((c) => c.startsWith("GET /.well-known/oauth-authorization-server") || c.startsWith("GET /.well-known/openid-configuration")), "discovered the AS metadata");
  check(calls.includes("POST /register 201") && provider.ci?.client_id, "registered by DCR");
  check(provider.authorizeURL.searchParams.get("code_challenge_method") === "S256" && provider.authorizeURL.searchParams.get("redirect_uri") === used,
    "PKCE S256, loopback redirect on another port than registered accepted");
  check(calls.includes("POST /token 200") && provider.t?.refresh_token, "code exchanged for tokens");

  // SDK 1.32.2 speaks up to 2025-11-25 (protocol sessions); the proxy serves
  // it beside 2026-07-28 clients (the go-sdk test asserts that one).
  const negotiated = client.transport.protocolVersion;
  console.log(`negotiated MCP protocol version ${negotiated}`);
  check(negotiated === "2025-11-25" && client.transport.sessionId, `negotiated ${negotiated} with a protocol session`);
  await checkTools(client, check, provider.ci.client_id);

  // 3. localhost is not 127.0.0.1: refused locally, no redirect.
  const u = new URL(provider.authorizeURL);
  u.searchParams.set("redirect_uri", "http://localhost:41001/callback");
  const bad = await fetch(u, { redirect: "manual" });
  check(bad.status === 400 && !bad.headers.get("location"), "redirect_uri on localhost refused for a 127.0.0.1 registration");

  // 4. Junk access token, good refresh token: the SDK refreshes on the 401.
  const oldRefresh = provider.t.refresh_token;
  provider.t = { ...provider.t, access_token: "junk" };
  const before = calls.filter((c) => c === "POST /token 200").length;
  const again = await client.callTool({ name: "get-user-greeting", arguments: {} });
  check(!again.isError && calls.filter((c) => c === "POST /token 200").length === before + 1 && provider.t.refresh_token !== oldRefresh,
    "refreshed after a 401 (rotated refresh token) and the call went on");

  // 5. Step-up: a tool that needs a scope the token lacks.
  let upgraded = client;
  if (stepupTool !== "-") {
    const raw = await fetch(mcpURL, { method: "POST", headers: { authorization: `Bearer ${provider.t.access_token}`, "content-type": "application/json",
      accept: "application/json, text/event-stream", "mcp-session-id": client.transport.sessionId, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: stepupTool, arguments: {} } }) });
    const chal = raw.headers.get("www-authenticate") ?? "";
    check(raw.status === 403 && chal.includes('error="insufficient_scope"') && /scope="[^"]*profile:read/.test(chal), `403 insufficient_scope for ${stepupTool}`);
    // SDK 1.32.2 answers a 403 by refreshing (a refresh cannot widen a grant,
    // RFC 6749 §6), sees the same 403 and gives up: the app then re-authorizes
    // with the challenged scope through the SDK's auth(), as a host app does.
    let gaveUp = null;
    try { await client.callTool({ name: stepupTool, arguments: {} }); } catch (e) { gaveUp = e; }
    check(gaveUp && /403/.test(String(gaveUp)), "the SDK client surfaces the 403 (refresh cannot widen the grant)");
    const scope = chal.match(/scope="([^"]*)"/)[1];
    provider.t = undefined;
    check(await auth(provider, { serverUrl: mcpURL, scope, fetchFn: fetchLog }) === "REDIRECT", "re-authorization with the challenged scope");
    check(await auth(provider, { serverUrl: mcpURL, authorizationCode: provider.code, fetchFn: fetchLog }) === "AUTHORIZED", "step-up code exchanged");
    upgraded = await sdkConnect(provider);
    const stepped = await upgraded.callTool({ name: stepupTool, arguments: {} });
    check(!stepped.isError && provider.t.scope?.split(" ").includes("profile:read"), `${stepupTool} answers after the step-up`);
    await client.close();
  }

  // 6. Redis loses everything (no persistence, a failover to an empty
  // replica): the client's registration, grant and session are gone. The SDK
  // must recover by itself: its refresh gets 401 invalid_client, it drops its
  // credentials, registers again and sends the user to sign in once more.
  let current = upgraded;
  if (redisPort) {
    execFileSync("redis-cli", ["-p", redisPort, "FLUSHALL"]);
    // A replica trusts a grant it has seen for about a second (DESIGN's hot
    // path); after that it finds the grant gone.
    await new Promise((r) => setTimeout(r, 1500));
    const lost = provider.ci.client_id;
    const registrations = () => calls.filter((c) => c === "POST /register 201").length;
    const before = registrations();
    let err = null;
    try { await upgraded.callTool({ name: "get-user-info", arguments: {} }); } catch (e) { err = e; }
    check(err instanceof UnauthorizedError && calls.includes("POST /token 401") && provider.invalidated?.includes("all"),
      "after Redis lost everything: 401, the refresh got 401 invalid_client and the SDK dropped its credentials");
    check(registrations() === before + 1 && provider.ci?.client_id && provider.ci.client_id !== lost,
      "the SDK registered again by itself (a new client_id) and sent the user to sign in");
    await upgraded.transport.finishAuth(provider.code);
    await upgraded.close();
    current = await sdkConnect(provider);
    const back = await current.callTool({ name: "get-user-info", arguments: {} });
    check(!back.isError && back.structuredContent?.client_id === provider.ci.client_id, "tools answer again for the new registration");
  }
  if (tokenOut) writeFileSync(tokenOut, provider.t.access_token);
  await current.close();
}

main().then(() => console.log("sdk-client: PASS"), (e) => {
  console.error("sdk-client: FAIL:", e?.stack ?? e);
  console.error(calls.join("\n"));
  process.exit(1);
});
