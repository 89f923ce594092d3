// Package testutil groups the test-only helpers: e2etest (a whole proxy,
// fake Clerk and Redis, with client helpers), testflow (a cookie-keeping
// browser that walks consent and sign-in), testredis (real redis-server
// processes: single, one-node and replicated clusters, Sentinel), syncbuf (a
// concurrency-safe log buffer) and testclock (one settable clock). No product
// package may import them; scripts/test checks it.
package testutil
