// The operator console in a real browser (Debian's chromium via
// playwright-core). Two users connect the same client (the second seeded
// user, Bob, and the first, Alice, who is the fake Clerk organisation's
// org:admin). Carol (org:member) signs in to /admin and gets 403 with no
// data. Alice signs in to /admin, sees the client with its 2 grants and the
// security events, opens the client's grants, finds Bob's grants by user id
// with the keyboard, and revokes the client everywhere: both access tokens
// are refused at /mcp and the fake Clerk counts the Clerk tokens revoked.
// Every console page is unframeable and screenshotted at desktop and phone
// width (admin-*.png in the artifacts folder).
// Usage: node e2e/browser-admin.mjs <BASE_URL> <ARTIFACTS> <CLERK_URL>
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { launchChromium, registeredClient } from "./lib/chromium.mjs";

const [base, art, clerk] = process.argv.slice(2);
const check = (cond, what) => { if (!cond) throw new Error(what); console.log(`  ok  ${what}`); };
const USERS = { alice: 0, bob: 1, carol: 2 }; // the fake Clerk's seeded users, in its sign-in page's order

// Its own client name: browser.mjs runs first against the same stack.
const APP = "Harbor Notes";
const client = await registeredClient(base, APP);
const revocations = async () => ((await (await fetch(`${clerk}/__admin/stats`)).json())["/oauth/token/revoke"] ?? 0);
const mcpStatus = async (token) => (await fetch(`${base}/mcp`, { method: "POST", headers: { authorization: `Bearer ${token}`,
  "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {},
    clientInfo: { name: "browser-admin-e2e", version: "1" } } }) })).status;

// pickUser signs in on the fake Clerk's page as the n-th seeded user and
// returns that user's id.
const pickUser = async (page, n) => {
  await page.waitForURL((u) => u.pathname === "/oauth/authorize");
  const radio = page.locator('input[name="user_id"]').nth(n);
  const id = await radio.getAttribute("value");
  await radio.check();
  await page.getByRole("button", { name: /continue/i }).click();
  return id;
};

// connect runs the whole authorization in the browser as the n-th user and
// returns the client's access token and the user's id.
const connect = async (browser, n) => {
  const page = await browser.newPage();
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(8).toString("hex");
  await page.goto(`${base}/authorize?` + new URLSearchParams({ response_type: "code", client_id: client.reg.client_id, redirect_uri: client.redirect,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", state,
    scope: "openid profile email", resource: `${base}/mcp` }));
  await page.getByRole("button", { name: /approve/i }).click();
  const user = await pickUser(page, n);
  await page.waitForURL((u) => u.href.startsWith(client.redirect));
  const cb = client.last();
  check(cb?.searchParams.get("state") === state, `user ${n} authorized the client`);
  const tok = await (await fetch(`${base}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: cb.searchParams.get("code"), redirect_uri: client.redirect,
      client_id: client.reg.client_id, code_verifier: verifier }) })).json();
  await page.close();
  return { token: tok.access_token, user };
};

// shoot saves a desktop and a phone-width screenshot of the page.
const shoot = async (page, name) => {
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.screenshot({ path: join(art, `${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(art, `${name}-phone.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `${name}: nothing wider than a phone screen (${overflow}px overflow)`);
  await page.setViewportSize({ width: 1100, height: 900 });
};

// openConsole opens /admin in a fresh browser, signs in as the n-th user
// and returns the browser, the page and the console's answer.
const openConsole = async (n) => {
  const browser = await launchChromium();
  const page = await browser.newPage();
  await page.goto(`${base}/admin`);
  await pickUser(page, n);
  await page.waitForURL((u) => u.pathname === "/admin");
  return { browser, page, resp: await page.reload() };
};

// guarded asserts a console response cannot be framed, runs no script and
// is not cached.
const guarded = (resp, what) => {
  const h = resp.headers();
  check(h["x-frame-options"] === "DENY" && /frame-ancestors 'none'/.test(h["content-security-policy"] ?? "") &&
    /default-src 'none'/.test(h["content-security-policy"] ?? "") && h["cache-control"] === "no-store",
  `${what}: X-Frame-Options DENY, CSP frame-ancestors 'none', no script, not cached`);
};

let browser = await launchChromium();
let alice, bob;
try {
  bob = await connect(browser, USERS.bob);
  alice = await connect(browser, USERS.alice);
  check(await mcpStatus(bob.token) === 200 && await mcpStatus(alice.token) === 200, "both users' access tokens work at /mcp");
  // A denied consent, for the security events.
  {
    const page = await browser.newPage();
    await page.goto(`${base}/authorize?` + new URLSearchParams({ response_type: "code", client_id: client.reg.client_id, redirect_uri: client.redirect,
      code_challenge: createHash("sha256").update("x".repeat(43)).digest("base64url"), code_challenge_method: "S256", state: "deny-1" }));
    await page.getByRole("button", { name: /deny/i }).click();
    await page.waitForURL((u) => u.href.startsWith(client.redirect));
    await page.close();
  }
} finally {
  await browser.close();
}

// Carol, an org:member: 403, no data.
let page, resp;
({ browser, page, resp } = await openConsole(USERS.carol));
try {
  check(resp.status() === 403, "a signed-in user without the operator role gets 403 at /admin");
  guarded(resp, "the 403 page");
  const text = await page.locator("body").innerText();
  check(!text.includes(APP) && !text.includes(client.reg.client_id) && !text.includes(bob.user),
    "the 403 page shows no client, grant or user");
  await shoot(page, "admin-forbidden");
} finally {
  await browser.close();
}

// Alice, the organisation's org:admin.
let home;
({ browser, page, resp: home } = await openConsole(USERS.alice));
try {
  check(home.status() === 200, "the operator sees /admin");
  guarded(home, "/admin");
  const row = page.locator('table[aria-labelledby="clients"]').getByRole("row").filter({ hasText: APP });
  check(await row.count() === 1 && (await row.getByRole("link", { name: `2 grants of ${APP}` }).count()) === 1,
    "/admin lists the client with its 2 grants");
  check(await page.locator('form[action="/admin/clients/revoke"] input[name="csrf_token"]').count() >= 1, "the revoke form carries a CSRF token");
  // Events are written in the background: reload until they show.
  let events = "";
  for (let i = 0; i < 50 && !events.includes("consent_denied"); i++) {
    if (i) { await new Promise((ok) => setTimeout(ok, 100)); await page.reload(); }
    events = await page.locator("#events ~ table").innerText().catch(() => "");
  }
  check(events.includes("consent_denied"), "the recent security events show the denied consent");
  await shoot(page, "admin");

  // The client's grants.
  await row.getByRole("link", { name: /2 grants/ }).click();
  await page.waitForURL((u) => u.pathname === "/admin/grants");
  guarded(await page.reload(), "/admin/grants");
  const grants = await page.locator("table").innerText();
  check(grants.includes(alice.user) && grants.includes(bob.user), "the client's grants list both users");
  check(/last used/i.test(grants) && /first connected/i.test(grants), "the grants show first connected and last used");
  await shoot(page, "admin-grants-client");

  // Bob's grants, found by keyboard: Tab to the search field, type, Enter.
  await page.goto(`${base}/admin`);
  let focused = "";
  for (let i = 0; i < 40 && focused !== "user_id"; i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.id ?? "");
  }
  check(focused === "user_id", "the user search is reachable with the keyboard");
  check(await page.getByLabel("Clerk user id").count() === 1, "the search field has a label");
  await page.keyboard.type(bob.user);
  await page.keyboard.press("Enter");
  await page.waitForURL((u) => u.pathname === "/admin/grants" && u.searchParams.get("user_id") === bob.user);
  const bobs = await page.locator("table").innerText();
  check(bobs.includes(APP) && !bobs.includes(alice.user), "the user search shows Bob's grant only");
  await shoot(page, "admin-grants-user");

  // Revoke the client everywhere, from /admin.
  await page.goto(`${base}/admin`);
  const before = await revocations();
  await page.getByRole("button", { name: `Revoke ${APP} everywhere` }).click();
  await page.waitForURL((u) => u.pathname === "/admin" && u.searchParams.has("done"));
  check(/2 grant\(s\) ended/.test(await page.getByRole("status").innerText()), "the console says 2 grants were ended");
  await shoot(page, "admin-revoked");
  let refused = 0;
  for (let i = 0; i < 30 && refused < 2; i++) { // within the documented ~1 s grant cache
    refused = (await mcpStatus(alice.token) === 401 ? 1 : 0) + (await mcpStatus(bob.token) === 401 ? 1 : 0);
    if (refused < 2) await new Promise((ok) => setTimeout(ok, 100));
  }
  check(refused === 2, "both users' access tokens for the revoked client are refused at /mcp (401)");
  check(await revocations() - before === 4, "the fake Clerk saw the 4 Clerk tokens revoked (access and refresh of 2 grants)");
} finally {
  await browser.close();
  client.close();
}
console.log("browser-admin: PASS");
