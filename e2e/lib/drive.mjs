// drive.mjs <authorize-url> <redirect-prefix>: plays the browser from an
// authorization URL printed by a client under test (Inspector, conformance)
// to its loopback callback, then delivers the callback as the browser would.
import { Browser } from "./browser.mjs";
const [url, prefix] = process.argv.slice(2);
const final = await new Browser({ log: (l) => console.error(l) }).authorize(url, prefix);
console.error(`callback: ${final.origin}${final.pathname}?${[...final.searchParams.keys()].join("&")}`);
const res = await fetch(final, { redirect: "manual" });
console.error(`callback answered ${res.status}`);
