// What must survive a Redis crash and a `docker compose down`/`up`:
// a registration, a grant with its refresh-token family, and the signing keys.
// Usage:
//   node e2e/compose-state.mjs save  <BASE_URL> <STATE.json>   register, sign in, call a tool; write the state
//   node e2e/compose-state.mjs check <BASE_URL> <STATE.json> [--clerk-restarted]
//   node e2e/compose-state.mjs save  <BASE_URL> <STATE.json> --no-call      sign in only
//   node e2e/compose-state.mjs call  <BASE_URL> <STATE.json>                one tool call with the saved token
// check: the JWKS still has the key that signed the saved access token; the
// old access token still calls a tool (the grant and its Clerk token are
// found; skipped with --clerk-restarted, since the fake Clerk keeps its
// tokens in memory and forgets them when its container is recreated); the
// saved refresh token is accepted (the registration and the grant are still
// in Redis: an unknown client would be invalid_client, an unknown grant
// invalid_grant). The rotated tokens are written back to STATE.json.
import { readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Browser } from "./lib/browser.mjs";

const [cmd, base, file, flag] = process.argv.slice(2);
const check = (cond, what) => {
  if (!cond) throw new Error(what);
  console.log(`  ok  ${what}`);
};
const form = (url, params) => fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(params).toString() });
const kid = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString()).kid;

async function callTool(accessToken) {
  const client = new Client({ name: "compose-state", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(base + "/mcp"),
    { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
  await client.connect(transport);
  try {
    const res = await client.callTool({ name: "get-user-info", arguments: {} });
    if (res.isError) throw new Error(`get-user-info: ${JSON.stringify(res.content)}`);
    return res.structuredContent;
  } finally {
    await client.close();
  }
}

async function save() {
  const redirect = "http://127.0.0.1:41077/callback";
  const reg = await fetch(`${base}/register`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "compose state", redirect_uris: [redirect], token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"] }) });
  check(reg.status === 201, `registered (${reg.status})`);
  const { client_id } = await reg.json();
  const verifier = randomBytes(32).toString("base64url");
  const url = `${base}/authorize?` + new URLSearchParams({ response_type: "code", client_id, redirect_uri: redirect,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
    state: "compose-state", scope: "openid profile email offline_access", resource: `${base}/mcp` });
  const final = await new Browser().authorize(url, redirect);
  const code = final.searchParams.get("code");
  check(code, "consent and sign-in returned a code");
  const tok = await form(`${base}/token`, { grant_type: "authorization_code", code, redirect_uri: redirect, client_id,
    code_verifier: verifier, resource: `${base}/mcp` });
  const t = await tok.json();
  check(tok.status === 200 && t.access_token && t.refresh_token, `code exchanged (${tok.status})`);
  let user = { email: null };
  if (flag !== "--no-call") {
    user = await callTool(t.access_token);
    check(user?.email && user?.client_id === client_id, `get-user-info answers for ${user?.email}`);
  }
  writeFileSync(file, JSON.stringify({ client_id, access_token: t.access_token, refresh_token: t.refresh_token,
    kid: kid(t.access_token), email: user.email }, null, 2));
}

async function verify() {
  const st = JSON.parse(readFileSync(file, "utf8"));
  const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
  check(jwks.keys?.some((k) => k.kid === st.kid), `the signing key ${st.kid} is still published`);
  if (flag !== "--clerk-restarted") {
    const user = await callTool(st.access_token);
    check(user?.email === st.email && user?.client_id === st.client_id, "the old access token still calls a tool (grant kept)");
  }
  const res = await form(`${base}/token`, { grant_type: "refresh_token", refresh_token: st.refresh_token, client_id: st.client_id,
    resource: `${base}/mcp` });
  const t = await res.json();
  check(res.status === 200 && t.refresh_token && t.refresh_token !== st.refresh_token,
    `the saved refresh token is accepted and rotated (registration and grant kept): ${res.status} ${t.error ?? ""}`);
  writeFileSync(file, JSON.stringify({ ...st, access_token: t.access_token, refresh_token: t.refresh_token }, null, 2));
  if (flag !== "--clerk-restarted") {
    const user = await callTool(t.access_token);
    check(user?.email === st.email, "the refreshed access token calls a tool");
  }
}

async function call() {
  const st = JSON.parse(readFileSync(file, "utf8"));
  const user = await callTool(st.access_token);
  check(user?.client_id === st.client_id, `get-user-info answers for ${user?.email}`);
}

(cmd === "save" ? save() : cmd === "check" ? verify() : cmd === "call" ? call() : Promise.reject(new Error(`unknown command ${cmd}`))).then(
  () => console.log(`compose-state ${cmd}: PASS`),
  (e) => { console.error(`compose-state ${cmd}: FAIL:`, e?.stack ?? e); process.exit(1); });
