// The in-memory part of an SDK OAuthClientProvider that every headless test
// client shares: the registration, tokens, PKCE verifier and state it keeps.
// A test extends it with redirectUrl, clientMetadata and
// redirectToAuthorization (where it plays the browser).
export class MemoryProvider {
  state() { return (this.st ??= crypto.randomUUID()); }
  clientInformation() { return this.ci; }
  saveClientInformation(c) { this.ci = c; }
  tokens() { return this.t; }
  saveTokens(t) { this.t = t; }
  saveCodeVerifier(v) { this.v = v; }
  codeVerifier() { return this.v; }
}

/** publicClientMetadata is a public (PKCE-only) client's DCR metadata. */
export const publicClientMetadata = (name, redirect) => ({
  client_name: name, redirect_uris: [redirect], grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"], token_endpoint_auth_method: "none",
});

/** checkTools: tools/list names the built-in tools and get-user-info is the signed-in seeded user of clientId. */
export async function checkTools(client, check, clientId) {
  const tools = await client.listTools();
  const names = tools.tools.map((t) => t.name).sort();
  check(["get-clerk-user-profile", "get-user-greeting", "get-user-info"].every((n) => names.includes(n)), `tools/list: ${names.join(", ")}`);
  const info = await client.callTool({ name: "get-user-info", arguments: {} });
  const user = info.structuredContent;
  check(user?.email === "alice@example.com" && user?.userId?.startsWith("user_") && user?.client_id === clientId,
    `get-user-info is the signed-in user (${user?.email}, client ${user?.client_id})`);
}
