// A headless "person at the browser" for black-box tests: follows an
// authorization URL with manual redirects and a cookie jar, submits the
// proxy's consent form (approve) and the fake Clerk's sign-in form (the
// preselected user), and stops at the client's redirect URI.
const decode = (s) => s.replace(/&amp;/g, "&").replace(/&#43;/g, "+").replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
const attrs = (tag) => Object.fromEntries([...tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*"([^"]*)")?/g)].slice(1).map((m) => [m[1].toLowerCase(), decode(m[2] ?? "")]));

/** parseForm returns the first form of a page: action, method, fields, buttons. */
export function parseForm(html) {
  const m = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!m) return null;
  const form = attrs("<form " + m[1]);
  const fields = new URLSearchParams();
  const buttons = [];
  for (const [tag] of m[2].matchAll(/<(input|button)\b[^>]*>/gi)) {
    const a = attrs(tag);
    const isButton = tag.toLowerCase().startsWith("<button") || a.type === "submit";
    if (isButton) { if (a.name) buttons.push({ name: a.name, value: a.value ?? "" }); continue; }
    if (!a.name) continue;
    if ((a.type === "radio" || a.type === "checkbox") && !("checked" in a)) continue;
    fields.set(a.name, a.value ?? "");
  }
  return { action: form.action ?? "", method: (form.method ?? "get").toUpperCase(), fields, buttons };
}

export class Browser {
  constructor({ log = () => {}, choose = "approve" } = {}) {
    this.jar = new Map(); // host -> Map(name -> value)
    this.log = log;
    this.choose = choose;
    this.pages = [];
  }
  cookieHeader(url) {
    const c = this.jar.get(new URL(url).host);
    return c && c.size ? [...c].map(([k, v]) => `${k}=${v}`).join("; ") : undefined;
  }
  keep(url, res) {
    const host = new URL(url).host;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    for (const c of res.headers.getSetCookie()) {
      const kv = c.split(";")[0];
      const i = kv.indexOf("=");
      if (/max-age=0|max-age=-/i.test(c)) this.jar.get(host).delete(kv.slice(0, i));
      else this.jar.get(host).set(kv.slice(0, i), kv.slice(i + 1));
    }
  }
  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    this.keep(url, res);
    return res;
  }
  /** authorize walks from url until a redirect starts with redirectPrefix; returns that URL. */
  async authorize(url, redirectPrefix, maxHops = 15) {
    let next = url, init = {};
    for (let hop = 0; hop < maxHops; hop++) {
      if (next.startsWith(redirectPrefix)) return new URL(next);
      const res = await this.request(next, init);
      this.log(`${init.method ?? "GET"} ${next.split("?")[0]} -> ${res.status}`);
      const loc = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && loc) {
        next = new URL(loc, next).href;
        init = {};
        continue;
      }
      const html = await res.text();
      this.pages.push({ url: next, status: res.status, headers: res.headers, html });
      if (res.status !== 200) throw new Error(`${next.split("?")[0]} answered ${res.status}: ${html.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").slice(0, 300)}`);
      const form = parseForm(html);
      if (!form) throw new Error(`${next.split("?")[0]} has no form`);
      const body = new URLSearchParams(form.fields);
      const button = form.buttons.find((b) => b.name === "action" && b.value === this.choose) ?? form.buttons[0];
      if (button) body.set(button.name, button.value);
      const target = new URL(form.action || next, next).href;
      if (form.method === "POST") {
        next = target;
        init = { method: "POST", body: body.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
      } else {
        const u = new URL(target);
        u.search = body.toString();
        next = u.href;
        init = {};
      }
    }
    throw new Error("too many hops");
  }
}
