// The Try it page (/try) in a real browser (Debian's chromium via
// playwright-core), clicked through as a person would: discovery, Dynamic
// Client Registration, PKCE sign-in through the consent page and the fake
// Clerk, tools/list, a tool called through the form generated from its
// input schema showing the signed-in user, a refresh, sign-out (the old
// access token is then refused at /mcp). Along the way: the page and its
// modules carry the strict CSP and cannot be framed, the page never shows
// or stores a token, no console error and no CSP violation, every form
// control has a label. Screenshots of each step at desktop and phone width
// go to the artifacts folder.
// With a step-up tool (one TOOL_SCOPES gives an extra scope), calling it
// answers 403 insufficient_scope, and the page's "sign in again" button gets
// the scope granted, reusing its registration (RFC 7592 read).
// Usage: node e2e/try.mjs <BASE_URL> <ARTIFACTS> [<STEP_UP_TOOL>]
import { join } from "node:path";
import { framingOrigin, launchChromium } from "./lib/chromium.mjs";

const [base, art, stepUpTool] = process.argv.slice(2);
const check = (cond, what) => { if (!cond) throw new Error(what); console.log(`  ok  ${what}`); };
const tryURL = `${base}/try`;

// Every asset of the page, with the headers a strict page needs.
const page0 = await fetch(tryURL);
const html = await page0.text();
const csp = page0.headers.get("content-security-policy") ?? "";
check(page0.status === 200 && /script-src 'self'/.test(csp) && /connect-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp) &&
  /form-action 'none'/.test(csp) && !/unsafe/.test(csp) && page0.headers.get("x-frame-options") === "DENY", `/try is served with a strict CSP: ${csp}`);
check(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html) && !/<style|\sstyle=/i.test(html), "/try has no inline script or style");
const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]);
for (const a of assets) {
  const r = await fetch(base + a);
  check(r.status === 200 && r.headers.get("x-content-type-options") === "nosniff" && /^(text\/css|text\/javascript)/.test(r.headers.get("content-type")),
    `${a} is served (${r.headers.get("content-type")}, nosniff)`);
}

const consoleErrors = [];
const framer = await framingOrigin();
const browser = await launchChromium();
const shots = [];
const shoot = async (page, name) => {
  await page.screenshot({ path: join(art, `try-${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(art, `try-${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 900, height: 900 });
  shots.push(name);
};
try {
  await framer.notFramable(browser, check, tryURL, tryURL, "the Try it page");

  const page = await browser.newPage();
  // CSP violations are reported to the page as events; collect them from
  // the first script on (an init script is the browser's, not the page's).
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${m.text()} at ${m.location().url}`); });
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message} at ${page.url()}`));
  // What the page sends and receives, to prove it never shows or stores it,
  // and where: only the endpoints any MCP client may use.
  const secrets = new Set();
  const paths = new Set();
  page.on("request", (r) => {
    if (r.url().startsWith(`${base}/`)) paths.add(`${r.method()} ${new URL(r.url()).pathname}`);
    const auth = r.headers().authorization;
    if (auth) secrets.add(auth.replace(/^Bearer /, ""));
    if (r.url().startsWith(`${base}/token`) || r.url().startsWith(`${base}/revoke`)) {
      for (const [k, v] of new URLSearchParams(r.postData() ?? "")) if (["code", "code_verifier", "refresh_token", "token"].includes(k)) secrets.add(v);
    }
  });
  page.on("response", async (r) => {
    if (r.url().startsWith(`${base}/token`) || r.url().startsWith(`${base}/register`)) {
      const body = await r.json().catch(() => ({}));
      for (const k of ["access_token", "refresh_token", "registration_access_token"]) if (body[k]) secrets.add(body[k]);
    }
    const sid = r.headers()["mcp-session-id"];
    if (sid) secrets.add(sid);
  });
  const noSecretShown = async (when) => {
    const shown = await page.locator("body").innerText();
    const stored = await page.evaluate(() => JSON.stringify(Object.entries(sessionStorage).filter(([k]) => k !== "try.client")));
    const leaked = [...secrets].filter((s) => s.length >= 8 && (shown.includes(s) || stored.includes(s)));
    check(secrets.size > 0 && leaked.length === 0, `${when}: none of the ${secrets.size} tokens, codes and verifiers seen on the wire is shown or stored by the page`);
  };
  const exchangesText = () => page.locator("#exchanges").innerText();

  await page.goto(tryURL);
  await page.getByRole("button", { name: "Sign in and connect" }).waitFor();
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea")].filter((e) => e.labels.length === 0).map((e) => e.id));
  check(unlabelled.length === 0, "every form control of the page has a label");
  await shoot(page, "1-start");

  // Keyboard: the first button is reachable with Tab and starts the flow with Enter.
  for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.id === "start")); i++) await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement?.id === "start"), "the Sign in button is reached with the keyboard");
  await page.keyboard.press("Enter");

  // The consent page, reached by discovery and registration in the page.
  await page.waitForURL((u) => u.pathname === "/consent");
  check((await page.locator("body").innerText()).includes("Try it (browser)"), "the consent page names the page's registration, Try it (browser)");
  await page.screenshot({ path: join(art, "try-2-consent.png"), fullPage: true });
  await page.getByRole("button", { name: /approve/i }).click();

  // The fake Clerk's sign-in: the second seeded user.
  await page.waitForURL((u) => u.pathname === "/oauth/authorize");
  const user = page.locator('input[name="user_id"]').nth(1);
  const userID = await user.getAttribute("value");
  const userLabel = (await page.locator(`label:has(input[value="${userID}"])`).innerText()).trim();
  const firstName = userLabel.split(/\s+/)[0];
  await page.screenshot({ path: join(art, "try-3-signin.png"), fullPage: true });
  await user.check();
  await page.getByRole("button", { name: /continue/i }).click();

  // Back at /try: the code is exchanged, MCP initialized, tools listed.
  await page.waitForURL((u) => u.pathname === "/try");
  await page.locator("#tools").waitFor({ state: "visible" });
  check(page.url() === tryURL, `the code is gone from the address bar (${page.url()})`);
  for (const step of ["discover", "register", "signin", "connect"]) {
    check(await page.locator(`#steps li[data-step="${step}"]`).getAttribute("data-state") === "done", `step ${step} is done`);
  }
  const log = await exchangesText();
  for (const [what, re] of [
    ["the unauthenticated MCP request got 401", /POST http:\S+\/mcp → 401/],
    ["protected resource metadata fetched", /GET \S+\/\.well-known\/oauth-protected-resource\S* → 200/],
    ["authorization server metadata fetched", /GET \S+\/\.well-known\/oauth-authorization-server → 200/],
    ["registered by DCR", /POST \S+\/register → 201/],
    ["the code exchanged at /token", /POST \S+\/token → 200/],
    ["MCP initialize answered", /MCP initialize/],
    ["tools/list answered", /MCP tools\/list/],
  ]) check(re.test(log), `exchange list: ${what}`);
  check(/‹masked, \d+ chars›/.test(await page.locator("#exchanges").evaluate((e) => e.textContent)), "the exchange list shows tokens masked");
  const toolNames = await page.locator("#tool option").evaluateAll((os) => os.map((o) => o.value));
  check(toolNames.includes("get-user-greeting") && toolNames.includes("get-user-info"), `tools listed: ${toolNames.join(", ")}`);
  await noSecretShown("after sign-in");
  await shoot(page, "4-connected");

  // A tool called through the generated form: the salutation field.
  await page.locator("#tool").selectOption("get-user-greeting");
  const salutation = page.getByLabel("salutation");
  await salutation.waitFor();
  check(await salutation.getAttribute("maxlength") === "40", "the form field follows the schema (maxLength 40)");
  await salutation.fill("Bonjour");
  await page.getByRole("button", { name: "Call tool" }).click();
  await page.locator("#result").waitFor({ state: "visible" });
  const greeting = await page.locator("#result-body").innerText();
  check(greeting.includes(`Bonjour, ${firstName}`) && greeting.includes(userID), `get-user-greeting greets the signed-in user: ${greeting.split("\n")[0]}`);
  await shoot(page, "5-tool-result");

  await page.locator("#tool").selectOption("get-user-info");
  await page.getByRole("button", { name: "Call tool" }).click();
  await page.locator("#result-title", { hasText: "get-user-info answered" }).waitFor();
  check((await page.locator("#result-body").innerText()).includes(userID), "get-user-info names the signed-in user");

  // The form generator on a schema with every kind of field.
  await page.evaluate(async () => {
    const { buildForm } = await import("/try/assets/schemaform.js");
    const fs = document.createElement("fieldset");
    fs.id = "schema-test";
    document.querySelector("#call").after(fs);
    window.__form = buildForm(fs, { type: "object", required: ["title", "count", "verbose", "mode"], properties: {
      title: { type: "string", description: "A title" }, count: { type: "integer", minimum: 1 }, ratio: { type: "number" },
      verbose: { type: "boolean" }, quiet: { type: "boolean" }, mode: { type: "string", enum: ["fast", "slow"] },
      level: { enum: [1, 2, 3] }, tags: { type: "array", items: { type: "string" } } } }, "t");
  });
  const read = () => page.evaluate(() => { const r = window.__form.read(); return r.errors ? { errors: r.errors.map((e) => e.name) } : r; });
  const empty = await read();
  check(JSON.stringify(empty.errors) === JSON.stringify(["title", "count"]), `required fields are refused empty: ${JSON.stringify(empty)}`);
  const form = page.locator("#schema-test");
  await form.getByLabel("title").fill("Hi");
  await form.getByLabel("count").fill("2.5");
  check(JSON.stringify((await read()).errors) === JSON.stringify(["count"]), "an integer field refuses 2.5");
  await form.getByLabel("count").fill("3");
  await form.getByLabel("ratio").fill("0.25");
  await form.getByLabel("verbose").check();
  await form.getByLabel("quiet").selectOption("false");
  await form.getByLabel("level").selectOption({ label: "2" });
  await form.getByLabel("tags").fill("[\"a\", \"b\"");
  check(JSON.stringify((await read()).errors) === JSON.stringify(["tags"]), "a JSON field refuses invalid JSON");
  await form.getByLabel("tags").fill("[\"a\", \"b\"]");
  const args = (await read()).args;
  check(JSON.stringify(args) === JSON.stringify({ title: "Hi", count: 3, ratio: 0.25, verbose: true, quiet: false, mode: "fast", level: 2, tags: ["a", "b"] }),
    `the generated form reads back typed arguments: ${JSON.stringify(args)}`);
  await page.evaluate(() => document.querySelector("#schema-test").remove());

  // Refresh, then a call with the new token.
  await page.getByRole("button", { name: "Refresh the token" }).click();
  await page.locator("#exchanges li", { hasText: "Refresh the access token" }).waitFor();
  check(/POST \S+\/token → 200 · Refresh the access token/.test(await exchangesText()), "the refresh token was exchanged");
  await page.getByRole("button", { name: "Call tool" }).click();
  await page.locator("#exchanges li", { hasText: "tools/call get-user-info" }).nth(1).waitFor();
  check(!(await page.locator("#error").isVisible()), "a tool call works with the refreshed token");
  await noSecretShown("after refresh");

  // A tool that needs one more scope: 403, sign in again with it.
  if (stepUpTool) {
    await page.locator("#tool").selectOption(stepUpTool);
    await page.getByRole("button", { name: "Call tool" }).click();
    const again = page.getByRole("button", { name: "Sign in again with that scope" });
    await again.waitFor();
    check(/needs more access \(scope [^)]+\)/.test(await page.locator("#error").innerText()), `${stepUpTool} is refused with insufficient_scope and the page offers to sign in again`);
    await shoot(page, "6-step-up");
    await again.click();
    await page.waitForURL((u) => u.pathname === "/consent");
    await page.getByRole("button", { name: /approve/i }).click();
    await page.waitForURL((u) => u.pathname === "/oauth/authorize");
    await page.locator(`input[name="user_id"][value="${userID}"]`).check();
    await page.getByRole("button", { name: /continue/i }).click();
    await page.waitForURL((u) => u.pathname === "/try");
    await page.locator("#tools").waitFor({ state: "visible" });
    const log2 = await exchangesText();
    check(/GET \S+\/register\/\S+ → 200 · Read this page's registration/.test(log2) && (log2.match(/POST \S+\/register → 201/g) ?? []).length === 1,
      "the second sign-in reused the page's registration (RFC 7592 read, no second DCR)");
    check(/POST \S+\/revoke → 200/.test(log2), "the first grant was revoked before leaving for the second sign-in");
    await page.locator("#tool").selectOption(stepUpTool);
    await page.getByRole("button", { name: "Call tool" }).click();
    await page.locator("#result-title", { hasText: `${stepUpTool} answered` }).waitFor();
    check((await page.locator("#result-body").innerText()).includes(userID), `${stepUpTool} answers after the step-up`);
    await noSecretShown("after the step-up");
  }

  // Sign out: the grant is revoked, so the last access token is refused.
  const accessTokens = [...secrets].filter((s) => s.split(".").length === 3);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in and connect" }).waitFor();
  await page.locator("#exchanges li").last().filter({ hasText: "Revoke the grant" }).waitFor();
  const lastExchange = await page.locator("#exchanges li summary").last().innerText();
  check(/POST \S+\/revoke → 200 · Revoke the grant/.test(lastExchange), `sign-out revoked the grant at /revoke (${lastExchange})`);
  check(await page.getByRole("button", { name: "Sign in and connect" }).isVisible(), "the page is signed out");
  await shoot(page, "7-signed-out");
  let refused = false;
  const last = accessTokens.at(-1);
  for (let i = 0; i < 30 && !refused; i++) { // within the documented ~1 s grant cache
    const r = await fetch(`${base}/mcp`, { method: "POST", headers: { authorization: `Bearer ${last}`, "content-type": "application/json",
      accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) });
    refused = r.status === 401;
    if (!refused) await new Promise((ok) => setTimeout(ok, 100));
  }
  check(last && refused, "after sign-out the page's last access token is refused at /mcp (401)");

  const publicPath = /^(GET \/try|GET \/try\/assets\/[a-z]+\.js|GET \/assets\/pages\.css|GET \/\.well-known\/[a-z-]+(\/mcp)?|POST \/mcp|DELETE \/mcp|POST \/register|GET \/register\/[\w-]+|GET \/authorize|GET \/consent|POST \/consent|GET \/oauth\/callback|POST \/token|POST \/revoke)$/;
  const private_ = [...paths].filter((p) => !publicPath.test(p));
  check(private_.length === 0, `the browser only reached public endpoints (${[...paths].sort().join(", ")})${private_.length ? "; not public: " + private_.join(", ") : ""}`);

  const violations = await page.evaluate(() => window.__csp);
  check(violations.length === 0, `no CSP violation (${violations.join("; ")})`);
  // A refused request is the browser's console error "Failed to load
  // resource": the ones this test provokes (the 401 discovery probe, the
  // step-up tool's 403) are expected, nothing else on this server's pages
  // (the fake Clerk's sign-in page is not the product's).
  const expected = stepUpTool ? /status of 40[13] .*\/mcp$/ : /status of 401 .*\/mcp$/;
  const unexpected = consoleErrors.filter((e) => !expected.test(e) && e.includes(` at ${base}/`));
  check(unexpected.length === 0, `no console error (${unexpected.join(" | ")})`);
  console.log(`screenshots: ${shots.map((s) => `try-${s}.png, try-${s}-phone.png`).join(", ")}, try-2-consent.png, try-3-signin.png`);
} finally {
  await browser.close();
  framer.close();
}
console.log("try: PASS");
