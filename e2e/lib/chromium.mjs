// What the real-browser tests share: Debian's chromium through
// playwright-core, and a local HTTP server for a client's redirect URI.
import http from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** listen starts an HTTP server on a free loopback port. */
export const listen = (handler) => new Promise((ok) => { const s = http.createServer(handler).listen(0, "127.0.0.1", () => ok(s)); });

/** launchChromium opens a fresh headless profile ($CHROMIUM or /usr/bin/chromium). */
export const launchChromium = () => chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "chromium-")), {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, viewport: { width: 900, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

/**
 * registeredClient registers a public client named name ("Acme Notes Desktop") at
 * base whose loopback redirect endpoint records what the browser brings to
 * /callback (and only there: Chromium asks for /favicon.ico afterwards).
 * Returns { reg, redirect, last(): URL|null, reset(), close() }.
 */
export async function registeredClient(base, name = "Acme Notes Desktop") {
  let callback = null;
  const server = await listen((req, res) => {
    const u = new URL(req.url, "http://x");
    if (u.pathname !== "/callback") { res.statusCode = 404; res.end(); return; }
    callback = u;
    res.end("<h1>Signed in. You can close this window.</h1>");
  });
  const redirect = `http://127.0.0.1:${server.address().port}/callback`;
  const reg = await (await fetch(`${base}/register`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirect], token_endpoint_auth_method: "none" }) })).json();
  return { reg, redirect, last: () => callback, reset: () => { callback = null; }, close: () => server.close() };
}
