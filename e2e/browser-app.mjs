// AUTH_MODE=app in a real browser (Debian's chromium via playwright-core):
// the proxy's consent page, then the team's app (the fake Clerk's
// /team-app/auth/mcp) where the user allows or denies, then back through the
// proxy's /callback to the client. Screenshots of the consent and team-app
// pages go to the artifacts folder. Usage:
//   node e2e/browser-app.mjs <BASE_URL> <ARTIFACTS>
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { launchChromium, registeredClient } from "./lib/chromium.mjs";

const [base, art] = process.argv.slice(2);
const check = (cond, what) => { if (!cond) throw new Error(what); console.log(`  ok  ${what}`); };

const { reg, redirect, last, reset, close: closeClient } = await registeredClient(base);

const browser = await launchChromium();
try {
  // signIn runs one flow and chooses at the team app; it returns the PKCE
  // verifier of the request.
  const signIn = async (choice, shots) => {
    reset();
    const verifier = randomBytes(32).toString("base64url");
    const authorize = `${base}/authorize?` + new URLSearchParams({ response_type: "code", client_id: reg.client_id, redirect_uri: redirect,
      code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
      state: `browser-app-${choice}`, scope: "openid profile email", resource: `${base}/mcp` });
    const page = await browser.newPage();
    await page.goto(authorize);
    check(page.url().startsWith(`${base}/consent`), "the browser lands on the proxy's consent page");
    if (shots) await page.screenshot({ path: join(art, "app-mode-consent.png"), fullPage: true });
    await page.getByRole("button", { name: /approve/i }).click();
    await page.waitForURL((u) => u.pathname.endsWith("/team-app/auth/mcp"));
    const team = new URL(page.url());
    check(team.searchParams.get("callback_url") === `${base}/callback` && team.searchParams.get("state")?.length >= 32,
      "after consent the browser is at the team app with the state and callback_url");
    const text = await page.locator("body").innerText();
    check(text.includes("Acme Notes Desktop") && /allow/i.test(text) && /deny/i.test(text), "the team app names the client, allow and deny");
    if (shots) await page.screenshot({ path: join(art, "app-mode-team-app.png"), fullPage: true });
    await page.getByRole("button", { name: choice === "allow" ? /allow/i : /deny/i }).click();
    await page.waitForURL((u) => u.href.startsWith(redirect));
    await page.close();
    const callback = last();
    check(callback?.searchParams.get("state") === `browser-app-${choice}` && callback.searchParams.get("iss") === base,
      "back at the client's redirect URI with its state and iss");
    return verifier;
  };

  const verifier = await signIn("allow", true);
  check(last().searchParams.get("code"), "allowed: the client got a code");
  const tok = await (await fetch(`${base}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: last().searchParams.get("code"), redirect_uri: redirect,
      client_id: reg.client_id, code_verifier: verifier }) })).json();
  check(typeof tok.access_token === "string" && typeof tok.refresh_token === "string", "the code was exchanged for the proxy's tokens");

  await signIn("deny", false);
  check(last().searchParams.get("error") === "access_denied" && !last().searchParams.get("code"), "denied in the team app: the client got access_denied");
} finally {
  await browser.close();
  closeClient();
}
console.log("browser-app: PASS");
