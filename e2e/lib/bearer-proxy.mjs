// bearer-proxy.mjs <listen-port> <upstream-origin> <token-file>: a tiny
// reverse proxy that adds "Authorization: Bearer <token>" to every request,
// so token-less tools (the conformance `server` scenarios) can reach the
// protected /mcp. Host and Origin naming this proxy are mapped to the
// upstream's; any other value passes through untouched, so DNS-rebinding
// checks still see what the tool sent.
import http from "node:http";
import { readFileSync } from "node:fs";
const [port, upstream, tokenFile] = process.argv.slice(2);
const up = new URL(upstream);
const self = `127.0.0.1:${port}`;
const token = readFileSync(tokenFile, "utf8").trim();
http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  if (headers.host === self || headers.host === `localhost:${port}`) headers.host = up.host;
  if (headers.origin === `http://${self}` || headers.origin === `http://localhost:${port}`) headers.origin = up.origin;
  const p = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  p.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(p);
}).listen(Number(port), "127.0.0.1", () => console.log(`bearer proxy on ${self} -> ${upstream}`));
