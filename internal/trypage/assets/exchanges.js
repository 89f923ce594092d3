// The record of every HTTP exchange the page makes, with secrets masked
// before anything is shown or stored: the list survives the trip to the
// sign-in pages in sessionStorage, so only masked text is ever kept there.

// Names whose values are secrets wherever they appear: JSON members, form
// fields, query parameters.
const SECRET_NAMES = new Set([
  "access_token", "refresh_token", "id_token", "code", "code_verifier", "client_secret",
  "registration_access_token", "token",
]);
// Headers worth showing; the others are left out to keep the list legible.
const SHOWN_HEADERS = ["content-type", "accept", "authorization", "www-authenticate", "mcp-session-id",
  "mcp-protocol-version", "location", "cache-control"];
const SECRET_HEADERS = new Set(["mcp-session-id"]);
const STORAGE_KEY = "try.exchanges";
const MAX_KEPT = 60;
const MAX_BODY = 16000;

/** masked stands for a secret value: its length only. */
export const masked = (v) => `‹masked, ${String(v).length} chars›`;

const maskDeep = (v) => {
  if (Array.isArray(v)) return v.map(maskDeep);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_NAMES.has(k) && typeof x === "string" ? masked(x) : maskDeep(x)]));
  }
  return v;
};

const maskJSON = (text) => {
  try {
    return JSON.stringify(maskDeep(JSON.parse(text)), null, 2);
  } catch {
    return null;
  }
};

/** maskParams masks the secret fields of a query string or form body. */
export function maskParams(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) out.append(k, SECRET_NAMES.has(k) ? masked(v) : v);
  return out;
}

/** maskURL masks the secret query parameters of url. */
export function maskURL(url) {
  const u = new URL(url, location.href);
  const q = maskParams(u.searchParams).toString();
  return u.origin + u.pathname + (q ? "?" + decodeURIComponent(q.replace(/\+/g, " ")) : "");
}

/**
 * maskBody masks a request or response body: JSON, a form, or an event
 * stream (each data line is JSON). Anything else is shown as it is.
 */
export function maskBody(text, contentType = "") {
  if (!text) return "";
  let out;
  if (/json/.test(contentType)) out = maskJSON(text) ?? text;
  else if (/x-www-form-urlencoded/.test(contentType)) out = [...maskParams(new URLSearchParams(text))].map(([k, v]) => `${k}=${v}`).join("\n");
  else if (/event-stream/.test(contentType)) out = text.replace(/^data:(.*)$/gm, (line, data) => "data: " + (maskJSON(data)?.replace(/\n\s*/g, " ") ?? data));
  else out = maskJSON(text) ?? text;
  return out.length > MAX_BODY ? out.slice(0, MAX_BODY) + `\n… (${out.length - MAX_BODY} more characters)` : out;
}

/** maskHeaders keeps the headers worth showing, their secrets masked. */
export function maskHeaders(headers) {
  const h = headers instanceof Headers ? headers : new Headers(headers ?? {});
  const out = [];
  for (const name of SHOWN_HEADERS) {
    const v = h.get(name);
    if (v === null) continue;
    if (name === "authorization") out.push([name, v.replace(/^(\S+)\s+(.+)$/, (_, scheme, cred) => `${scheme} ${masked(cred)}`)]);
    else if (SECRET_HEADERS.has(name)) out.push([name, masked(v)]);
    else out.push([name, v]);
  }
  return out;
}

/** Exchanges is the list on the page and its copy in sessionStorage. */
export class Exchanges {
  constructor(list) {
    this.list = list;
    this.entries = [];
    try {
      this.entries = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "[]");
    } catch {
      this.entries = [];
    }
    this.entries.forEach((e, i) => this.list.append(this.render(e, i === this.entries.length - 1)));
  }

  clear() {
    this.entries = [];
    sessionStorage.removeItem(STORAGE_KEY);
    this.list.replaceChildren();
  }

  /** add records one exchange; every field must already be masked. */
  add(entry) {
    this.entries.push(entry);
    this.entries = this.entries.slice(-MAX_KEPT);
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.entries));
    for (const open of this.list.querySelectorAll("details[open]")) open.open = false;
    this.list.append(this.render(entry, true));
    if (this.list.children.length > MAX_KEPT) this.list.firstElementChild.remove();
  }

  /** note records a step that was not a fetch (a navigation, a check). */
  note(title, detail) {
    this.add({ title, detail });
  }

  render(e, open) {
    const li = el("li", e.status >= 400 || e.failed ? "failed" : "");
    const details = el("details");
    details.open = open;
    const summary = el("summary");
    if (e.method) {
      summary.append(el("span", "method", e.method), " ", el("span", "url", e.url), " ",
        el("span", "status", e.failed ? "failed" : `→ ${e.status}`), " ", el("span", "muted", `· ${e.title}`));
    } else {
      summary.append(el("span", "method", "note"), " ", el("span", "", e.title));
    }
    details.append(summary);
    if (e.detail) details.append(el("p", "muted", e.detail));
    const part = (label, headers, body) => {
      if (!headers?.length && !body) return;
      details.append(el("h4", "", label));
      if (headers?.length) details.append(el("pre", "headers", headers.map(([k, v]) => `${k}: ${v}`).join("\n")));
      if (body) details.append(el("pre", "body", body));
    };
    part("Request", e.reqHeaders, e.reqBody);
    part(e.failed ? "Failure" : "Response", e.resHeaders, e.resBody);
    li.append(details);
    return li;
  }
}

/** el makes an element with a class and text: the page never parses markup. */
export function el(tag, className = "", text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

/**
 * recorder returns fetch wrapped to add each exchange to the list. The
 * wrapped fetch reads the answer's text (events, for an event stream, until
 * done(text) says the awaited message has arrived) and returns
 * { res, text }.
 */
export function recorder(exchanges) {
  return async function exchange(title, url, init = {}, done) {
    const reqHeaders = new Headers(init.headers ?? {});
    const entry = { title, method: init.method ?? "GET", url: maskURL(url), reqHeaders: maskHeaders(reqHeaders),
      reqBody: typeof init.body === "string" ? maskBody(init.body, reqHeaders.get("content-type") ?? "") : "" };
    let res;
    try {
      res = await fetch(url, { ...init, credentials: "omit", cache: "no-store", redirect: "error" });
    } catch (err) {
      exchanges.add({ ...entry, failed: true, resBody: String(err) });
      throw new Error(`${title}: the request failed (${err.message})`);
    }
    const type = res.headers.get("content-type") ?? "";
    const text = /event-stream/.test(type) ? await readStream(res, done) : await res.text();
    exchanges.add({ ...entry, status: res.status, resHeaders: maskHeaders(res.headers), resBody: maskBody(text, type) });
    return { res, text };
  };
}

// readStream reads an event stream until it ends or done(textSoFar) is true
// (a server may keep the stream open after the answer; the page stops there).
async function readStream(res, done) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    text += decoder.decode(value, { stream: true });
    if (done?.(text)) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return text + decoder.decode();
}
