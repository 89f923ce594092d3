// A real browser (Debian's chromium via playwright-core) goes through the
// proxy's consent page and the fake Clerk's sign-in as a person would, by
// clicking. Screenshots of both pages go to the artifacts folder. Fails if a
// page can be framed, the consent form has no CSRF token, or the flow does
// not reach the client's redirect URI with a code.
// Then the user opens the connected-apps page (/account), signs in again,
// sees the client and disconnects it: its access token is refused at /mcp
// and the fake Clerk counts the revocations (screenshots at desktop and
// phone width).
// Usage: node e2e/browser.mjs <BASE_URL> <ARTIFACTS> [<CLERK_URL>]
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { framingOrigin, launchChromium, registeredClient } from "./lib/chromium.mjs";

const [base, art, clerk] = process.argv.slice(2);
const check = (cond, what) => { if (!cond) throw new Error(what); console.log(`  ok  ${what}`); };

const { reg, redirect, last, close: closeClient } = await registeredClient(base);
const verifier = randomBytes(32).toString("base64url");
const challenge = createHash("sha256").update(verifier).digest("base64url");
const authorize = `${base}/authorize?` + new URLSearchParams({ response_type: "code", client_id: reg.client_id, redirect_uri: redirect,
  code_challenge: challenge, code_challenge_method: "S256", state: "browser-state-1", scope: "openid profile email", resource: `${base}/mcp` });

const framer = await framingOrigin();
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const notFramable = (url, pathPrefix, what) => framer.notFramable(browser, check, url, pathPrefix, what);
  await notFramable(authorize, `${base}/consent`, "the consent page");

  // The consent page.
  const consent = await page.goto(authorize);
  const h = consent.headers();
  check(page.url().startsWith(`${base}/consent`), "the browser lands on the proxy's consent page");
  check(h["x-frame-options"] === "DENY" && /frame-ancestors 'none'/.test(h["content-security-policy"] ?? ""), "consent page: X-Frame-Options DENY and CSP frame-ancestors 'none'");
  check(await page.locator('form input[name="csrf_token"]').count() === 1 && (await page.locator('input[name="csrf_token"]').getAttribute("value")).length >= 32,
    "consent form carries a CSRF token");
  const text = await page.locator("body").innerText();
  check(text.includes("Acme Notes Desktop") && text.includes("127.0.0.1") && /approve/i.test(text) && /deny/i.test(text), "consent page names the client, its redirect host, approve and deny");
  await page.screenshot({ path: join(art, "consent.png"), fullPage: true });

  // Approve: the fake Clerk's sign-in page.
  await page.getByRole("button", { name: /approve/i }).click();
  await page.waitForURL((u) => u.pathname === "/oauth/authorize");
  const signInURL = page.url();
  const signInHeaders = await (await page.request.get(signInURL, { maxRedirects: 0 })).headers();
  check(signInHeaders["x-frame-options"] === "DENY" && /frame-ancestors 'none'/.test(signInHeaders["content-security-policy"] ?? ""),
    "sign-in page: X-Frame-Options DENY and CSP frame-ancestors 'none'");
  await notFramable(signInURL, signInURL.split("?")[0], "the sign-in page");
  check(await page.locator('input[name="user_id"]').count() >= 2, "sign-in page lists the seeded users");
  await page.screenshot({ path: join(art, "signin.png"), fullPage: true });
  await page.locator('input[name="user_id"]').nth(1).check(); // sign in as the second user
  await page.getByRole("button", { name: /continue/i }).click();
  await page.waitForURL((u) => u.href.startsWith(redirect));
  const callback = last();
  check(callback?.searchParams.get("code") && callback.searchParams.get("state") === "browser-state-1" && callback.searchParams.get("iss") === base,
    "the flow reached the client's redirect URI with code, state and iss");

  // The code is good: exchange it and ask who signed in.
  const tok = await (await fetch(`${base}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: callback.searchParams.get("code"), redirect_uri: redirect,
      client_id: reg.client_id, code_verifier: verifier }) })).json();
  check(typeof tok.access_token === "string", "the code was exchanged for tokens");

  // Connected apps: sign in to /account, see the client, disconnect it.
  const mcpStatus = async () => (await fetch(`${base}/mcp`, { method: "POST", headers: { authorization: `Bearer ${tok.access_token}`,
    "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {},
      clientInfo: { name: "browser-e2e", version: "1" } } }) })).status;
  check(await mcpStatus() === 200, "the client's access token works at /mcp");
  await page.goto(`${base}/account`);
  await page.waitForURL((u) => u.pathname === "/oauth/authorize");
  await page.locator('input[name="user_id"]').nth(1).check(); // the same user as the flow above
  await page.getByRole("button", { name: /continue/i }).click();
  await page.waitForURL((u) => u.href === `${base}/account`);
  const account = await page.request.get(`${base}/account`);
  const ah = account.headers();
  check(ah["x-frame-options"] === "DENY" && /frame-ancestors 'none'/.test(ah["content-security-policy"] ?? ""),
    "connected apps page: X-Frame-Options DENY and CSP frame-ancestors 'none'");
  const accountText = await page.locator("body").innerText();
  check(accountText.includes("Acme Notes Desktop") && accountText.includes("127.0.0.1"), "connected apps page lists the client and its redirect host");
  check(await page.locator('form[action="/account/disconnect"] input[name="csrf_token"]').count() === 1, "the disconnect form carries a CSRF token");
  await page.screenshot({ path: join(art, "account.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(art, "account-phone.png"), fullPage: true });
  const revocations = async () => clerk ? ((await (await fetch(`${clerk}/__admin/stats`)).json())["/oauth/token/revoke"] ?? 0) : 0;
  const before = await revocations();
  await page.getByRole("button", { name: /disconnect acme notes desktop/i }).click();
  await page.waitForURL((u) => u.pathname === "/account" && u.searchParams.has("disconnected"));
  check(await page.locator('section[aria-label="Acme Notes Desktop"]').count() === 0, "after Disconnect the page no longer lists the client");
  await page.screenshot({ path: join(art, "account-disconnected.png"), fullPage: true });
  let refused = false;
  for (let i = 0; i < 30 && !refused; i++) { // within the documented ~1 s grant cache
    refused = (await mcpStatus()) === 401;
    if (!refused) await new Promise((ok) => setTimeout(ok, 100));
  }
  check(refused, "the disconnected client's next MCP request is refused (401)");
  if (clerk) check(await revocations() - before >= 2, "the fake Clerk saw the Clerk tokens revoked");
} finally {
  await browser.close();
  closeClient();
  framer.close();
}
console.log("browser: PASS");
