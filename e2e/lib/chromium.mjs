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

/**
 * framingOrigin is another origin that tries to frame a page (clickjacking):
 * notFramable(browser, check, url, pathPrefix, what) loads url inside its
 * iframe and asserts the browser refused to render it: the page was served
 * (200, so the refusal is the browser honouring its headers, not an error),
 * yet the frame holds no form — Chromium swaps a blocked frame for its
 * error page. Returns { notFramable, close() }.
 */
export async function framingOrigin() {
  const attr = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const server = await listen((req, res) => {
    const src = new URL(req.url, "http://x").searchParams.get("src") ?? "";
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><title>evil</title><iframe id="f" src="${attr(src)}" width="600" height="400"></iframe>`);
  });
  const framerURL = (src) => `http://127.0.0.1:${server.address().port}/?` + new URLSearchParams({ src });
  const notFramable = async (browser, check, url, pathPrefix, what) => {
    const p = await browser.newPage();
    try {
      const served = p.waitForResponse((r) => r.url().startsWith(pathPrefix) && r.request().frame() !== p.mainFrame());
      await p.goto(framerURL(url));
      const response = await served;
      const framed = p.frames().find((f) => f !== p.mainFrame());
      await framed.waitForLoadState("load").catch(() => {});
      const forms = await framed.locator("form, button").count().catch(() => 0);
      check(response.status() === 200 && forms === 0,
        `${what} (served ${response.status()}) does not render inside another origin's iframe (frame at ${framed.url().slice(0, 40)})`);
    } finally {
      await p.close();
    }
  };
  return { notFramable, close: () => server.close() };
}
