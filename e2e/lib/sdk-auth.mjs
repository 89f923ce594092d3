// What the TypeScript SDK client scripts share: a headless
// OAuthClientProvider whose redirectToAuthorization plays the browser
// (consent page + fake Clerk sign-in), and connect(), which runs the SDK's
// 401 → authorize → finishAuth → reconnect dance.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Browser } from "./browser.mjs";
import { MemoryProvider, publicClientMetadata } from "./provider.mjs";

export class HeadlessProvider extends MemoryProvider {
  // base: the proxy's issuer; registered: the redirect URI registered by DCR;
  // used: the one sent at /authorize (may differ in port, RFC 8252 §7.3).
  constructor({ base, name, registered, used = registered }) {
    super();
    Object.assign(this, { base, name, registered, used });
    this.code = null;
  }
  get redirectUrl() { return this.used; }
  get clientMetadata() { return publicClientMetadata(this.name, this.registered); }
  // What the SDK calls when the server no longer knows the client or grant
  // (invalid_client / invalid_grant), before it starts over.
  invalidateCredentials(scope) {
    this.invalidated = [...(this.invalidated ?? []), scope];
    if (scope === "all" || scope === "client") this.ci = undefined;
    if (scope === "all" || scope === "tokens") this.t = undefined;
    if (scope === "all" || scope === "verifier") this.v = undefined;
  }
  async redirectToAuthorization(url) {
    this.authorizeURL = url;
    const final = await new Browser().authorize(url.href, this.used);
    const q = final.searchParams;
    if (q.get("state") !== this.st) throw new Error("state mismatch");
    if (q.get("iss") !== this.base) throw new Error(`iss ${q.get("iss")} != ${this.base}`);
    if (q.get("error")) throw new Error(`authorization error ${q.get("error")}`);
    this.code = q.get("code");
  }
}

// connect returns an SDK client connected to mcpURL, signing in first when
// the server answers 401.
export async function connect(mcpURL, provider, { name = "sdk-e2e", fetch } = {}) {
  const opts = { authProvider: provider, ...(fetch ? { fetch } : {}) };
  let transport = new StreamableHTTPClientTransport(mcpURL, opts);
  const client = new Client({ name, version: "1.0.0" });
  try {
    await client.connect(transport);
    return client;
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(mcpURL, opts);
  const again = new Client({ name, version: "1.0.0" });
  await again.connect(transport);
  return again;
}
