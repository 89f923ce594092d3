// The Try it page: wires the steps (discover, register, sign in, connect)
// to the buttons and shows each answer. Tokens live in this page's memory
// only: a reload signs out (the registration is kept for this tab).
import { Exchanges, el, maskURL, recorder } from "./exchanges.js";
import { MCPClient, MCPError } from "./mcp.js";
import { OAuthError, authorize, discover, finish, hasAuthorizationResponse, refresh, register, revoke } from "./oauth.js";
import { buildForm } from "./schemaform.js";

const DISCOVERY_KEY = "try.discovery";
const $ = (id) => document.getElementById(id);
const exchanges = new Exchanges($("exchanges"));
const exchange = recorder(exchanges);
const mcpURL = location.origin + "/mcp";

let session = null; // { tokens, client_id, token_endpoint, resource, scope, revocation_endpoint }
let mcp = null;
let tools = [];
let form = null;

function setStep(name, state, text) {
  const li = document.querySelector(`#steps li[data-step="${name}"]`);
  li.dataset.state = state;
  li.querySelector(".step-state").textContent = text;
}

function showError(message, action) {
  const box = $("error");
  box.replaceChildren(el("strong", "", "Something went wrong. "), el("span", "", message));
  if (action) {
    const b = el("button", "", action.label);
    b.type = "button";
    b.addEventListener("click", action.run);
    const wrap = el("div", "actions");
    wrap.append(b);
    box.append(wrap);
  }
  box.hidden = false;
}
const clearError = () => { $("error").hidden = true; };

function busy(on) {
  for (const id of ["start", "refresh", "signout", "call-button"]) $(id).disabled = on;
  document.body.setAttribute("aria-busy", on ? "true" : "false");
}

// run wraps a button's work: one thing at a time, every failure shown.
async function run(fn) {
  clearError();
  busy(true);
  try {
    await fn();
  } catch (e) {
    console.warn(e); // the page shows it; a warning, not an error, for a server's refusal
    showError(e instanceof OAuthError || e instanceof MCPError ? e.message : `Unexpected failure: ${e.message}`, e.action);
  } finally {
    busy(false);
  }
}

// showDiscovered names the server as its metadata does (RFC 9728 resource_name).
function showDiscovered(d) {
  setStep("discover", "done", `issuer ${d.as.issuer}`);
  if (d.prm.resource_name) $("service").textContent = d.prm.resource_name;
}

async function startSignIn(extraScope) {
  setStep("discover", "running", "asking /mcp without a token…");
  const d = await discover(exchange, mcpURL).catch((e) => { setStep("discover", "failed", "failed"); throw e; });
  sessionStorage.setItem(DISCOVERY_KEY, JSON.stringify(d));
  showDiscovered(d);
  setStep("register", "running", "registering…");
  const { client, reused } = await register(exchange, d.as).catch((e) => { setStep("register", "failed", "failed"); throw e; });
  setStep("register", "done", `${reused ? "reused" : "new"} client ${client.client_id}`);
  const scope = [...new Set([...d.scope.split(" "), ...(extraScope ?? "").split(" ")].filter(Boolean))].join(" ");
  const url = await authorize(d, client, scope);
  if (session) await endSession();
  setStep("signin", "running", "on the way to the consent page…");
  exchanges.note("The browser goes to the authorization endpoint", maskURL(url));
  location.assign(url);
}

async function comeBack(params) {
  const d = JSON.parse(sessionStorage.getItem(DISCOVERY_KEY) ?? "null");
  if (d) {
    showDiscovered(d);
    setStep("register", "done", "registered");
  }
  exchanges.note("Back from sign-in", `The browser came back to ${maskURL(location.origin + location.pathname + "?" + params.toString())}; the page removed the code from the address bar.`);
  setStep("signin", "running", "checking state and exchanging the code…");
  let result;
  try {
    result = await finish(exchange, params);
  } catch (e) {
    setStep("signin", "failed", "failed");
    throw e;
  }
  const { tokens, pending } = result;
  session = { tokens, client_id: pending.client_id, token_endpoint: pending.token_endpoint, resource: pending.resource,
    scope: pending.scope, revocation_endpoint: d?.as.revocation_endpoint };
  setStep("signin", "done", `signed in, scopes: ${tokens.scope ?? pending.scope}`);
  await connect();
}

// withAuth runs fn, refreshing the token once on a 401 and opening a new
// session once when the server forgot the old one.
async function withAuth(fn) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof MCPError)) throw e;
    if (e.status === 401 && session?.tokens.refresh_token) {
      await doRefresh();
      return fn();
    }
    if (e.status === 404) {
      await mcp.initialize();
      return fn();
    }
    if (e.status === 403 && e.challenge.error === "insufficient_scope") {
      e.message = `This tool needs more access (scope ${e.challenge.scope ?? "?"}). Sign in again to grant it.`;
      e.action = { label: "Sign in again with that scope", run: () => run(() => startSignIn(e.challenge.scope)) };
    }
    throw e;
  }
}

async function connect() {
  setStep("connect", "running", "initialize…");
  mcp = new MCPClient(exchange, session.resource, () => session.tokens.access_token);
  try {
    await withAuth(() => mcp.initialize());
    tools = await withAuth(() => mcp.listTools());
  } catch (e) {
    setStep("connect", "failed", "failed");
    throw e;
  }
  setStep("connect", "done", `protocol ${mcp.protocolVersion}, ${mcp.sessionId ? "session open" : "no session"}, ${tools.length} tools`);
  showSignedIn();
  const select = $("tool");
  select.replaceChildren(...tools.map((t) => {
    const o = el("option", "", t.title ?? t.annotations?.title ? `${t.name} — ${t.title ?? t.annotations.title}` : t.name);
    o.value = t.name;
    return o;
  }));
  $("tools").hidden = false;
  showTool();
  $("tools-title").focus();
}

function showSignedIn() {
  const t = session.tokens;
  $("who").textContent = `Signed in as client ${session.client_id}. Scopes: ${t.scope ?? session.scope}. ` +
    `Access token valid for ${t.expires_in ?? "?"} s${t.refresh_token ? "; a refresh token was issued" : ""}.`;
  $("signed-in").hidden = false;
  $("signed-out").hidden = true;
}

function showTool() {
  const tool = tools.find((t) => t.name === $("tool").value);
  $("tool-description").textContent = tool?.description ?? "";
  const args = $("args");
  args.replaceChildren(el("legend", "", "Arguments"));
  form = buildForm(args, tool?.inputSchema ?? {});
  $("result").hidden = true;
}

async function callTool() {
  const name = $("tool").value;
  const read = form.read();
  if (read.errors) {
    read.errors[0].control.focus();
    throw new OAuthError(`Check the arguments: ${read.errors.map((e) => `${e.name}: ${e.message}`).join("; ")}`);
  }
  const result = await withAuth(() => mcp.callTool(name, read.args));
  const parts = (result.content ?? []).map((c) => (c.type === "text" ? c.text : JSON.stringify(c, null, 2)));
  if (result.structuredContent !== undefined) parts.push("structuredContent:\n" + JSON.stringify(result.structuredContent, null, 2));
  $("result-title").textContent = result.isError ? `${name} reported an error` : `${name} answered`;
  $("result-body").textContent = parts.join("\n\n") || "(no content)";
  $("result").hidden = false;
  $("result").classList.toggle("failed", Boolean(result.isError));
}

async function doRefresh() {
  session.tokens = { ...session.tokens, ...(await refresh(exchange, session)) };
  showSignedIn();
}

// endSession closes the MCP session and revokes the grant: the tokens live
// in this page's memory only, so leaving for a new sign-in would otherwise
// strand a live grant nobody holds.
async function endSession() {
  const s = session;
  await mcp?.close();
  mcp = null;
  session = null;
  if (s?.revocation_endpoint) await revoke(exchange, s, s.revocation_endpoint);
}

async function signOut() {
  $("tools").hidden = true;
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  for (const step of ["signin", "connect"]) setStep(step, "idle", "not started");
  await endSession();
  $("start").focus();
}

$("server-url").textContent = mcpURL;
$("start").addEventListener("click", () => run(() => startSignIn()));
$("refresh").addEventListener("click", () => run(doRefresh));
$("signout").addEventListener("click", () => run(signOut));
$("tool").addEventListener("change", showTool);
$("call").addEventListener("submit", (ev) => {
  ev.preventDefault();
  run(callTool);
});
$("clear-log").addEventListener("click", () => exchanges.clear());

const params = new URLSearchParams(location.search);
if (hasAuthorizationResponse(params)) {
  // The code must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", location.pathname);
  run(() => comeBack(params));
} else if (params.toString()) {
  history.replaceState(null, "", location.pathname);
}
// Back from the sign-in pages by the browser's Back button: the page may be
// restored as it was left, buttons disabled on the way out.
window.addEventListener("pageshow", () => busy(false));
