// MCP's streamable HTTP transport over fetch: JSON-RPC in a POST, the answer
// as JSON or as an event stream, the session id the server gives at
// initialize sent back on every request, and the negotiated protocol version
// in MCP-Protocol-Version after initialization.
import { PROTOCOL_VERSION, parseChallenge } from "./oauth.js";

/** MCPError is an answer the page cannot use; challenge is a 401/403's. */
export class MCPError extends Error {
  constructor(message, status, challenge = {}) {
    super(message);
    this.status = status;
    this.challenge = challenge;
  }
}

/** events splits an event stream into the JSON messages of its data lines. */
export function events(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
    if (!data) continue;
    try {
      out.push(JSON.parse(data));
    } catch {
      // A partial event at the end of what was read so far.
    }
  }
  return out;
}

export class MCPClient {
  /** token() returns the current access token. */
  constructor(exchange, url, token) {
    this.exchange = exchange;
    this.url = url;
    this.token = token;
    this.sessionId = null;
    this.protocolVersion = null;
    this.nextId = 1;
  }

  headers() {
    const h = { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${this.token()}` };
    if (this.sessionId) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  // post sends one JSON-RPC message; for a request, waits for the response
  // with its id (in JSON, or among the events of a stream).
  async post(title, message) {
    const isRequest = message.id !== undefined;
    const answered = (text) => events(text).some((m) => m.id === message.id && (m.result !== undefined || m.error !== undefined));
    const { res, text } = await this.exchange(title, this.url, { method: "POST", headers: this.headers(), body: JSON.stringify(message) },
      isRequest ? answered : undefined);
    if (res.status === 401 || res.status === 403) {
      const challenge = parseChallenge(res.headers.get("www-authenticate"));
      throw new MCPError(`${title}: ${res.status} ${challenge.error_description ?? challenge.error ?? ""}`.trim(), res.status, challenge);
    }
    if (res.status === 404 && this.sessionId) throw new MCPError(`${title}: the server no longer knows this session`, 404);
    if (!isRequest) {
      if (!res.ok) throw new MCPError(`${title}: ${res.status}`, res.status);
      return { res };
    }
    if (!res.ok) throw new MCPError(`${title}: ${res.status}`, res.status);
    const type = res.headers.get("content-type") ?? "";
    const messages = /event-stream/.test(type) ? events(text) : /json/.test(type) ? [JSON.parse(text)].flat() : [];
    const answer = messages.find((m) => m.id === message.id);
    if (!answer) throw new MCPError(`${title}: no answer to request ${message.id} in the response`, res.status);
    if (answer.error) throw new MCPError(`${title}: JSON-RPC error ${answer.error.code}: ${answer.error.message}`, res.status);
    return { res, result: answer.result };
  }

  request(title, method, params = {}) {
    return this.post(title, { jsonrpc: "2.0", id: this.nextId++, method, params });
  }

  /** initialize opens a session (MCP lifecycle) and says it is done. */
  async initialize() {
    this.sessionId = null;
    this.protocolVersion = null;
    const { res, result } = await this.request("MCP initialize", "initialize", { protocolVersion: PROTOCOL_VERSION, capabilities: {},
      clientInfo: { name: "clerk-mcp-proxy-try-it", title: "Try it (browser)", version: "1" } });
    this.sessionId = res.headers.get("mcp-session-id");
    this.protocolVersion = result.protocolVersion;
    this.server = result.serverInfo ?? {};
    await this.post("MCP notifications/initialized", { jsonrpc: "2.0", method: "notifications/initialized" });
    return result;
  }

  /** listTools follows nextCursor to the end. */
  async listTools() {
    const tools = [];
    let cursor;
    for (let page = 0; page < 50; page++) {
      const { result } = await this.request("MCP tools/list", "tools/list", cursor ? { cursor } : {});
      tools.push(...(result.tools ?? []));
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return tools;
  }

  async callTool(name, args) {
    const { result } = await this.request(`MCP tools/call ${name}`, "tools/call", { name, arguments: args });
    return result;
  }

  /** close ends the session at the server (a DELETE, when it gave one). */
  async close() {
    if (!this.sessionId) return;
    await this.exchange("MCP end the session", this.url, { method: "DELETE", headers: this.headers() }).catch(() => {});
    this.sessionId = null;
  }
}
