// The OAuth side of an MCP client, as the MCP authorization spec describes
// it: discovery (RFC 9728, RFC 8414), Dynamic Client Registration (RFC 7591,
// reused through RFC 7592), the authorization code flow with PKCE S256
// (RFC 7636) and the iss check (RFC 9207), refresh and revocation (RFC 7009).
import { maskURL } from "./exchanges.js";

export const PROTOCOL_VERSION = "2025-11-25";
const CLIENT_KEY = "try.client";
const PENDING_KEY = "try.pending";

/** OAuthError is a failure of one step, said in words for the page. */
export class OAuthError extends Error {}

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

/** pkce makes a code verifier (32 random bytes) and its S256 challenge. */
export async function pkce() {
  const verifier = random(32);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  return { verifier, challenge };
}

/** parseChallenge reads the parameters of a Bearer WWW-Authenticate header. */
export function parseChallenge(header) {
  const out = {};
  if (!header || !/^\s*bearer\b/i.test(header)) return out;
  for (const m of header.replace(/^\s*bearer\s*/i, "").matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return out;
}

// wellKnown puts a well-known name between an identifier's origin and its
// path (RFC 8414 §3.1, RFC 9728 §3.1).
const wellKnown = (id, name) => {
  const u = new URL(id);
  return `${u.origin}/.well-known/${name}${u.pathname === "/" ? "" : u.pathname}`;
};

async function getJSON(exchange, title, url) {
  if (new URL(url, location.href).origin !== location.origin) {
    throw new OAuthError(`${title} is at another origin (${maskURL(url)}); this page only talks to its own server`);
  }
  const { res, text } = await exchange(title, url, { headers: { accept: "application/json" } });
  if (!res.ok) throw new OAuthError(`${title}: ${url} answered ${res.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new OAuthError(`${title}: ${url} did not answer JSON`);
  }
}

const mcpHeaders = { "content-type": "application/json", accept: "application/json, text/event-stream" };

/**
 * discover asks /mcp without a token, follows the 401's resource_metadata to
 * the protected resource metadata and from its authorization server to the
 * authorization server metadata.
 */
export async function discover(exchange, mcpURL) {
  const { res } = await exchange("MCP request without a token", mcpURL, { method: "POST", headers: mcpHeaders,
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize",
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "try-it", version: "1" } } }) });
  const challenge = res.status === 401 ? parseChallenge(res.headers.get("www-authenticate")) : {};
  // Without a challenge (some tools may be public) the well-known URL of the
  // resource is where its metadata is (RFC 9728 §3.1).
  const prmURL = challenge.resource_metadata ?? wellKnown(mcpURL, "oauth-protected-resource");
  const prm = await getJSON(exchange, "Protected resource metadata (RFC 9728)", prmURL);
  if (prm.resource !== mcpURL) throw new OAuthError(`the resource metadata names ${prm.resource}, not ${mcpURL} (RFC 9728 §3.3)`);
  const issuer = prm.authorization_servers?.[0];
  if (!issuer) throw new OAuthError("the resource metadata names no authorization server");
  const as = await getJSON(exchange, "Authorization server metadata (RFC 8414)", wellKnown(issuer, "oauth-authorization-server"));
  if (as.issuer !== issuer) throw new OAuthError(`the authorization server metadata is for ${as.issuer}, not ${issuer} (RFC 8414 §3.3)`);
  if (!as.code_challenge_methods_supported?.includes("S256")) throw new OAuthError("the authorization server does not offer PKCE S256, so this client will not use it");
  if (!as.registration_endpoint) throw new OAuthError("the authorization server offers no registration endpoint (Dynamic Client Registration is off)");
  const scope = challenge.scope ?? prm.scopes_supported?.join(" ") ?? "";
  return { mcpURL, prm, as, scope };
}

/** redirectURI is where the authorization server sends the browser back. */
export const redirectURI = () => location.origin + "/try";

/**
 * register returns this page's registration: the one kept in this tab when
 * the server still knows it (read back with its registration access token,
 * RFC 7592), otherwise a new one (RFC 7591).
 */
export async function register(exchange, as) {
  const kept = JSON.parse(sessionStorage.getItem(CLIENT_KEY) ?? "null");
  if (kept?.issuer === as.issuer && kept.registration_client_uri && kept.registration_access_token) {
    const { res } = await exchange("Read this page's registration (RFC 7592)", kept.registration_client_uri,
      { headers: { accept: "application/json", authorization: `Bearer ${kept.registration_access_token}` } });
    if (res.ok) return { client: kept, reused: true };
  }
  const { res, text } = await exchange("Dynamic Client Registration (RFC 7591)", as.registration_endpoint, {
    method: "POST", headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ client_name: "Try it (browser)", redirect_uris: [redirectURI()], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" }),
  });
  const reg = safeJSON(text);
  if (!res.ok || !reg?.client_id) throw new OAuthError(`registration refused: ${reg?.error_description ?? reg?.error ?? res.status}`);
  const client = { issuer: as.issuer, client_id: reg.client_id, registration_client_uri: reg.registration_client_uri,
    registration_access_token: reg.registration_access_token };
  sessionStorage.setItem(CLIENT_KEY, JSON.stringify(client));
  return { client, reused: false };
}

const safeJSON = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/**
 * authorize sends the browser to the authorization endpoint. The verifier and
 * state wait in this tab's sessionStorage for the way back.
 */
export async function authorize(discovery, client, scope) {
  const u = new URL(discovery.as.authorization_endpoint);
  if (u.origin !== location.origin) throw new OAuthError("the authorization endpoint is at another origin");
  const { verifier, challenge } = await pkce();
  const state = random(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state, verifier, client_id: client.client_id, issuer: discovery.as.issuer,
    token_endpoint: discovery.as.token_endpoint, resource: discovery.mcpURL, scope, created: Date.now() }));
  u.search = new URLSearchParams({ response_type: "code", client_id: client.client_id, redirect_uri: redirectURI(), scope,
    state, code_challenge: challenge, code_challenge_method: "S256", resource: discovery.mcpURL }).toString();
  return u.href;
}

/** hasAuthorizationResponse says whether the URL is the way back from sign-in. */
export const hasAuthorizationResponse = (params) => params.has("code") || params.has("error");

/**
 * finish checks the authorization response against the request this tab made
 * (state, RFC 9207 iss) and exchanges the code, once: the pending request is
 * removed first. Returns the token response and the request's context.
 */
export async function finish(exchange, params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
  sessionStorage.removeItem(PENDING_KEY);
  if (!pending) throw new OAuthError("no sign-in was started in this tab, so this answer is not for it (nothing was exchanged)");
  if (params.get("state") !== pending.state) throw new OAuthError("the state does not match the sign-in this tab started: the answer was ignored (RFC 6749 §10.12)");
  if (params.has("iss") && params.get("iss") !== pending.issuer) throw new OAuthError(`the answer comes from ${params.get("iss")}, not ${pending.issuer} (RFC 9207)`);
  if (params.has("error")) {
    throw new OAuthError(`sign-in ended with ${params.get("error")}${params.get("error_description") ? ": " + params.get("error_description") : ""}`);
  }
  const tokens = await tokenRequest(exchange, "Exchange the code (PKCE)", pending.token_endpoint, {
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectURI(), client_id: pending.client_id,
    code_verifier: pending.verifier, resource: pending.resource });
  return { tokens, pending };
}

/** refresh uses the refresh token (RFC 6749 §6); the old one is spent. */
export const refresh = (exchange, session) => tokenRequest(exchange, "Refresh the access token", session.token_endpoint, {
  grant_type: "refresh_token", refresh_token: session.tokens.refresh_token, client_id: session.client_id, resource: session.resource });

async function tokenRequest(exchange, title, endpoint, fields) {
  const { res, text } = await exchange(title, endpoint, { method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" }, body: new URLSearchParams(fields).toString() });
  const body = safeJSON(text);
  if (!res.ok || !body?.access_token) throw new OAuthError(`${title}: ${body?.error_description ?? body?.error ?? res.status}`);
  return body;
}

/** revoke ends the grant behind the refresh token (RFC 7009). */
export async function revoke(exchange, session, endpoint) {
  const token = session.tokens.refresh_token ?? session.tokens.access_token;
  const hint = session.tokens.refresh_token ? "refresh_token" : "access_token";
  const { res } = await exchange("Revoke the grant (RFC 7009)", endpoint, { method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token, token_type_hint: hint, client_id: session.client_id }).toString() });
  if (!res.ok) throw new OAuthError(`revocation answered ${res.status}`);
}
