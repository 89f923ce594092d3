// Public and protected tools side by side, driven by the official MCP
// TypeScript SDK client: without signing in it connects, lists every tool
// (marked with the Apps SDK _meta.securitySchemes) and calls the public one;
// the protected one answers 401, the SDK's auth() runs the whole flow
// (discovery, DCR, PKCE, consent and the fake Clerk's sign-in), and a new
// connection calls it as the user. Also the Apps SDK convention: a call
// marked with openai/* _meta gets a tool error carrying
// _meta["mcp/www_authenticate"], the same challenge as the 401.
// Input (argv[2], JSON): {sdk, browser, base, publicTool, protectedTool}.
// Prints "PASS" or throws.
import { pathToFileURL } from "node:url";

const input = JSON.parse(process.argv[2]);
const imp = (p) => import(pathToFileURL(input.sdk + p));
const { Client } = await imp("/dist/esm/client/index.js");
const { StreamableHTTPClientTransport } = await imp("/dist/esm/client/streamableHttp.js");
const { UnauthorizedError } = await imp("/dist/esm/client/auth.js");
const { Browser } = await import(pathToFileURL(input.browser));

const mcpURL = new URL(input.base + "/mcp");
const redirect = "http://127.0.0.1:41777/callback";
const check = (cond, what) => { if (!cond) throw new Error(what); };

class HeadlessProvider {
  get redirectUrl() { return redirect; }
  get clientMetadata() {
    return { client_name: "sdk public tools", redirect_uris: [redirect], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  state() { return (this.st ??= crypto.randomUUID()); }
  clientInformation() { return this.ci; }
  saveClientInformation(c) { this.ci = c; }
  tokens() { return this.t; }
  saveTokens(t) { this.t = t; }
  saveCodeVerifier(v) { this.v = v; }
  codeVerifier() { return this.v; }
  async redirectToAuthorization(url) {
    const final = await new Browser().authorize(url.href, redirect);
    this.code = final.searchParams.get("code");
  }
}

async function connect(authProvider) {
  const client = new Client({ name: "sdk-public-tools", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(mcpURL, authProvider ? { authProvider } : {});
  await client.connect(transport);
  return { client, transport };
}

// 1. Anonymous: connect, list, call the public tool; the protected one is a 401.
const anon = await connect(null);
const tools = (await anon.client.listTools()).tools;
const scheme = (name) => tools.find((t) => t.name === name)?._meta?.securitySchemes?.[0]?.type;
check(scheme(input.publicTool) === "noauth" && scheme(input.protectedTool) === "oauth2",
  `tools/list marks public and protected tools: ${JSON.stringify(tools.map((t) => [t.name, t._meta]))}`);
const greeting = await anon.client.callTool({ name: input.publicTool, arguments: {} });
check(!greeting.isError, `anonymous call of the public tool: ${JSON.stringify(greeting)}`);
let refused = null;
try { await anon.client.callTool({ name: input.protectedTool, arguments: {} }); } catch (e) { refused = e; }
check(refused?.code === 401, `anonymous call of the protected tool: ${refused} (code ${refused?.code})`);
await anon.client.close();

// 2. The Apps SDK convention, raw: same challenge in the tool result.
const post = (body, headers = {}) => fetch(mcpURL, { method: "POST", body: JSON.stringify(body), headers: {
  "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25", ...headers } });
const init = await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {},
  clientInfo: { name: "apps-sdk-like", version: "1" } } });
const sid = init.headers.get("mcp-session-id");
const plain = await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: input.protectedTool, arguments: {} } }, { "mcp-session-id": sid });
const challenge = plain.headers.get("www-authenticate");
check(plain.status === 401 && challenge?.startsWith("Bearer "), `plain anonymous call: ${plain.status}`);
const apps = await post({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: input.protectedTool, arguments: {},
  _meta: { "openai/userAgent": "ChatGPT", "openai/locale": "en-US" } } }, { "mcp-session-id": sid });
const text = await apps.text();
const payload = JSON.parse(text.startsWith("{") ? text : text.split("\n").find((l) => l.startsWith("data:")).slice(5));
check(apps.status === 200 && payload.result?.isError === true && payload.result?._meta?.["mcp/www_authenticate"]?.[0] === challenge,
  `Apps SDK call: ${apps.status} ${text}`);

// 3. With an auth provider: the 401 on the protected tool starts sign-in.
const provider = new HeadlessProvider();
const first = await connect(provider);
let needAuth = null;
try { await first.client.callTool({ name: input.protectedTool, arguments: {} }); } catch (e) { needAuth = e; }
check(needAuth instanceof UnauthorizedError && provider.code, `the 401 ran the SDK's authorization: ${needAuth}`);
await first.transport.finishAuth(provider.code);
// The anonymous session is not the user's: with the token it is unknown
// (404, MCP's "start a new session"), so the app connects again.
let stale = null;
try { await first.client.callTool({ name: input.protectedTool, arguments: {} }); } catch (e) { stale = e; }
check(stale?.code === 404, `the anonymous session used with the token: ${stale} (code ${stale?.code})`);
await first.client.close();
const signedIn = await connect(provider);
const info = await signedIn.client.callTool({ name: input.protectedTool, arguments: {} });
check(!info.isError && info.structuredContent?.userId?.startsWith("user_"), `signed-in call: ${JSON.stringify(info)}`);
await signedIn.client.close();
process.stdout.write("PASS");
