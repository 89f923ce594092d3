// The official TypeScript MCP SDK client signs in through clerk-mcp-proxy in
// gateway mode (full OAuth against the fake Clerk) and uses the reference
// server @modelcontextprotocol/server-everything behind it: tools,
// resources, prompts, a long-running tool with progress notifications
// streamed through, and cancellation. Usage:
//   node e2e/gateway-everything.mjs <BASE_URL> [token-out-file]
import { writeFileSync } from "node:fs";
import { HeadlessProvider, connect } from "./lib/sdk-auth.mjs";

const [base, tokenOut] = process.argv.slice(2);
const mcpURL = new URL(base + "/mcp");
const redirect = "http://127.0.0.1:41002/callback";
const check = (cond, what) => {
  if (!cond) throw new Error(what);
  console.log(`  ok  ${what}`);
};

async function main() {
  const provider = new HeadlessProvider({ base, name: "gateway e2e", registered: redirect });
  const client = await connect(mcpURL, provider, { name: "gateway-e2e" });
  check(provider.t?.access_token && client.getServerVersion()?.name?.includes("everything"), `signed in through the gateway to ${client.getServerVersion()?.name}`);
  check(client.transport.sessionId && client.transport.sessionId.includes("."), "the session id is the gateway's bound one");

  const tools = (await client.listTools()).tools.map((t) => t.name);
  check(["echo", "get-sum", "trigger-long-running-operation"].every((n) => tools.includes(n)), `tools/list (${tools.length} tools)`);
  const echo = await client.callTool({ name: "echo", arguments: { message: "through the gateway" } });
  check(echo.content?.[0]?.text?.includes("through the gateway"), "tools/call echo");
  const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
  check(JSON.stringify(sum.content).includes("5"), "tools/call get-sum");

  const resources = (await client.listResources()).resources;
  check(resources.length > 0, `resources/list (${resources.length})`);
  const read = await client.readResource({ uri: resources[0].uri });
  check(read.contents?.length > 0, `resources/read ${resources[0].uri}`);
  const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  check(prompts.includes("simple-prompt"), `prompts/list (${prompts.join(", ")})`);
  const prompt = await client.getPrompt({ name: "simple-prompt" });
  check(prompt.messages?.length > 0, "prompts/get simple-prompt");

  // Progress notifications arrive one by one in the call's SSE stream.
  const progress = [];
  const long = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1, steps: 4 } }, undefined,
    { onprogress: (p) => progress.push(p.progress), timeout: 60000 });
  check(!long.isError && progress.join(",") === "1,2,3,4", `long-running tool with progress ${progress.join(",")}`);

  // Cancellation: abort after the first progress notification; the SDK sends
  // notifications/cancelled through the gateway and the call ends.
  const ac = new AbortController();
  let seen = 0;
  let err = null;
  try {
    await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 30, steps: 30 } }, undefined,
      { signal: ac.signal, onprogress: () => { if (++seen === 1) ac.abort("user cancelled"); }, timeout: 60000 });
  } catch (e) { err = e; }
  check(err && seen >= 1, `cancelled after ${seen} progress notification(s): ${String(err).slice(0, 60)}`);
  const after = await client.callTool({ name: "echo", arguments: { message: "still here" } });
  check(after.content?.[0]?.text?.includes("still here"), "the session goes on after the cancellation");

  if (tokenOut) writeFileSync(tokenOut, provider.t.access_token);
  await client.transport.terminateSession();
  await client.close();
}

main().then(() => console.log("gateway-everything: PASS"), (e) => {
  console.error("gateway-everything: FAIL:", e?.stack ?? e);
  process.exit(1);
});
