package app_test

// Nothing readable at rest, nothing leaked in logs or error answers.
//
// TestNothingReadableAtRest runs the whole product through a full flow (a
// confidential client_secret_basic client and a public one: registration,
// consent, Clerk sign-in, code exchange, MCP tool calls, refresh, RFC 7592
// read, introspection, an upstream Clerk refresh, revocation) while
// recording every secret that exists in it: the proxy's access and refresh
// tokens, authorization codes, client secrets, registration access tokens,
// the browser's consent/CSRF/binding values, the client's PKCE verifier, and
// what Clerk really returned and was sent (access, refresh and ID tokens,
// Clerk's authorization code, the proxy's PKCE verifier for Clerk), seen by
// wrapping the proxy's HTTP transport to Clerk. At several points of the
// flow it dumps every Redis key under the prefix (SCAN, then GET / HGETALL /
// LRANGE / SMEMBERS / ZRANGE by type, plus DUMP) and asserts that no secret
// appears in it, plain or base64 / base64url (at every byte alignment) / hex
// / URL-encoded, nor PROXY_SECRET, CLERK_CLIENT_SECRET or CLERK_SECRET_KEY.
//
// TestNothingLeakedInLogsOrErrors runs the same flow plus failures (bad
// client secrets, bad codes, a bad PKCE verifier, code and refresh replays,
// forged CSRF and callback state, Clerk faults on every endpoint, Redis
// down) and asserts that the proxy's whole log output holds none of those
// secrets, and that no error answer (JSON, page, WWW-Authenticate or error
// redirect) echoes a secret or a Go internal error.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// leakSecrets is every secret a flow produced, with what it is.
type leakSecrets struct {
	mu     sync.Mutex
	m      map[string]string // value -> label
	labels map[string]int    // every label ever given -> sightings
}

func newLeakSecrets() *leakSecrets {
	s := &leakSecrets{m: map[string]string{}, labels: map[string]int{}}
	s.add("PROXY_SECRET", e2etest.ProxySecret)
	s.add("CLERK_CLIENT_SECRET", e2etest.ClerkClientSecret)
	s.add("CLERK_SECRET_KEY", e2etest.ClerkSecretKey)
	return s
}

// add records a secret (a value seen again is relabelled: the last sighting,
// closest to its use, names it best). JWTs are also recorded by their
// signature, and "<id>.<secret>" refresh tokens by their secret half (the
// grant id before the dot is a public handle).
func (s *leakSecrets) add(label, v string) {
	if len(v) < 16 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[v] = label
	s.labels[label]++
	if parts := strings.Split(v, "."); len(parts) == 3 && len(parts[2]) >= 16 {
		s.m[parts[2]] = label + " (JWT signature)"
	} else if len(parts) == 2 && len(parts[1]) >= 32 {
		s.m[parts[1]] = label + " (secret part)"
	}
}

// count is how many times a secret was recorded under label.
func (s *leakSecrets) count(label string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.labels[label]
}

// needles returns, for every secret, the byte strings that would reveal it:
// the secret itself, JSON- and URL-escaped, hex (both cases), base64 and
// base64url of it at each of the three byte alignments (only the characters
// that do not depend on neighbouring bytes), and, when the secret is itself
// base64url, its decoded bytes in the same encodings.
func (s *leakSecrets) needles() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for v, label := range s.m {
		for enc, n := range leakEncodings([]byte(v)) {
			out[n] = label + " [" + enc + "]"
		}
		if raw, err := base64.RawURLEncoding.DecodeString(v); err == nil && len(raw) >= 12 {
			for enc, n := range leakEncodings(raw) {
				if enc != "plain" && enc != "json" && enc != "query" {
					out[n] = label + " [decoded, " + enc + "]"
				}
			}
			out[string(raw)] = label + " [decoded bytes]"
		}
	}
	return out
}

func leakEncodings(b []byte) map[string]string {
	out := map[string]string{
		"plain": string(b),
		"hex":   hex.EncodeToString(b),
		"HEX":   strings.ToUpper(hex.EncodeToString(b)),
		"query": url.QueryEscape(string(b)),
	}
	if j, err := json.Marshal(string(b)); err == nil {
		out["json"] = string(j[1 : len(j)-1])
	}
	for shift := 0; shift < 3; shift++ {
		padded := append(make([]byte, shift), b...)
		first := (shift + 2) / 3     // first 3-byte group made only of secret bytes
		last := (shift + len(b)) / 3 // groups before this one are complete
		if last-first < 3 {
			continue
		}
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
			e := enc.EncodeToString(padded)
			out[fmt.Sprintf("%s@%d", name, shift)] = e[4*first : 4*last]
		}
	}
	return out
}

// leakScan reports every needle found in blob.
func leakScan(t *testing.T, where string, blob []byte, needles map[string]string) int {
	t.Helper()
	found := 0
	for n, label := range needles {
		if len(n) >= 12 && bytes.Contains(blob, []byte(n)) {
			t.Errorf("%s: %s found", where, label)
			found++
		}
	}
	return found
}

// leakDump reads every key under the environment's prefix with its value(s).
func leakDump(t *testing.T, e *e2etest.Env) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	rdb := e.Redis.Client(t)
	out := map[string][]byte{}
	iter := rdb.Scan(ctx, 0, e.Prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var b bytes.Buffer
		b.WriteString(key + "\n")
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		}
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, key).Bytes()
			b.Write(v)
		case "hash":
			for f, v := range rdb.HGetAll(ctx, key).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		case "list":
			b.WriteString(strings.Join(rdb.LRange(ctx, key, 0, -1).Val(), "\n"))
		case "set":
			b.WriteString(strings.Join(rdb.SMembers(ctx, key).Val(), "\n"))
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, key, 0, -1).Val() {
				fmt.Fprintf(&b, "%v=%v\n", z.Member, z.Score)
			}
		case "none": // expired between SCAN and TYPE
			continue
		}
		if d, err := rdb.Dump(ctx, key).Result(); err == nil {
			b.WriteString("\n" + d)
		}
		out[key] = b.Bytes()
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}

// leakCheckRedis dumps Redis and fails for every secret found at rest.
func leakCheckRedis(t *testing.T, e *e2etest.Env, sec *leakSecrets, when string) map[string][]byte {
	t.Helper()
	dump := leakDump(t, e)
	needles := sec.needles()
	keys := make([]string, 0, len(dump))
	for k := range dump {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		leakScan(t, fmt.Sprintf("Redis %s, key %s", when, k), dump[k], needles)
	}
	return dump
}

// leakTTLs returns the TTL of every key whose name contains marker, keyed
// by what follows the marker up to the next ':' (the ticket kind) or by the
// whole key.
func leakTTLs(t *testing.T, e *e2etest.Env, marker string) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	rdb := e.Redis.Client(t)
	out := map[string]time.Duration{}
	keys, err := rdb.Keys(ctx, e.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		i := strings.Index(k, marker)
		if i < 0 || strings.HasSuffix(k, ":spent") {
			continue
		}
		name := k
		if marker == ":ticket:" {
			name, _, _ = strings.Cut(k[i+len(marker):], ":")
		}
		d, err := rdb.PTTL(ctx, k).Result()
		if err == nil {
			out[name] = max(out[name], d)
		}
	}
	return out
}

// leakClerkTransport sits between the proxy and the fake Clerk and records
// every token and code that crosses it, in either direction.
type leakClerkTransport struct {
	sec  *leakSecrets
	base http.RoundTripper
}

func (c *leakClerkTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		raw, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(raw))
		form, _ := url.ParseQuery(string(raw))
		for name, label := range map[string]string{"code": "Clerk authorization code", "code_verifier": "proxy PKCE verifier for Clerk",
			"refresh_token": "Clerk refresh token", "token": "Clerk token"} {
			c.sec.add(label, form.Get(name))
		}
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		c.sec.add("Clerk bearer credential", strings.TrimPrefix(h, "Bearer "))
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		for name, label := range map[string]string{"access_token": "Clerk access token", "refresh_token": "Clerk refresh token", "id_token": "Clerk ID token"} {
			if v, ok := m[name].(string); ok {
				c.sec.add(label, v)
			}
		}
	}
	return resp, nil
}

// leakExchange is one answer the proxy gave (error answers are checked for
// echoed secrets and internal errors).
type leakExchange struct {
	what   string
	status int
	header http.Header
	body   string
}

// leakSpy is an HTTP client for the MCP client and the browser that records
// every secret the proxy hands out and every answer it gives.
type leakSpy struct {
	e       *e2etest.Env
	sec     *leakSecrets
	base    http.RoundTripper
	before  func(*http.Request) // called before each request (mid-flow Redis dumps)
	mu      sync.Mutex
	answers []leakExchange
	// problems are protocol violations seen in passing (RFC 9700 §4.12
	// redirect codes, §4.16 framing, RFC 9207 iss, token response headers).
	problems []string
	client   *http.Client
	// lastCallback is the last Clerk callback URL the browser followed.
	lastCallback string
}

func (s *leakSpy) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// assertNoProblems fails for every violation the spy saw.
func (s *leakSpy) assertNoProblems(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		t.Error(p)
	}
}

// checkAnswer applies the rules every proxy answer of the flow must follow.
func (s *leakSpy) checkAnswer(r *http.Request, resp *http.Response) {
	what := r.Method + " " + r.URL.Path
	h := resp.Header
	if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect {
		s.problem("%s: %d would replay a POST body to the next hop (RFC 9700 §4.12)", what, resp.StatusCode)
	}
	if r.URL.Path == "/consent" && r.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(h.Get("Cache-Control"), "no-store") {
			s.problem("consent page without anti-framing / no-referrer / no-store headers (RFC 9700 §4.16, §4.2.4): %v", h)
		}
	}
	if loc, err := url.Parse(h.Get("Location")); err == nil && resp.StatusCode == http.StatusFound && loc.Query().Has("code") && strings.HasPrefix(r.URL.Path, "/oauth/callback") {
		q := loc.Query()
		if len(q["code"]) != 1 || len(q["state"]) != 1 || len(q["iss"]) != 1 || q.Get("iss") != s.e.BaseURL || q.Has("code_challenge") ||
			h.Get("Referrer-Policy") != "no-referrer" {
			s.problem("authorization response %q: code, state and iss exactly once, iss = issuer (RFC 9207), no code_challenge, no referrer", loc)
		}
	}
	if r.URL.Path == "/token" && resp.StatusCode == http.StatusOK {
		if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
			s.problem("token response headers (RFC 6749 §5.1): %v", h)
		}
	}
}

// newLeakSpy puts a spy between e's helpers (and its browser) and the proxy.
func newLeakSpy(e *e2etest.Env, sec *leakSecrets) *leakSpy {
	s := &leakSpy{e: e, sec: sec, base: http.DefaultTransport}
	s.client = &http.Client{Transport: s, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.HTTP = s.client
	return s
}

func (s *leakSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	proxy := strings.HasPrefix(r.URL.String(), s.e.BaseURL)
	for _, name := range []string{"txn", "code", "state"} {
		if v := r.URL.Query().Get(name); v != "" && (!proxy || r.URL.Path != "/authorize") {
			s.sec.add("browser-carried "+name, v)
		}
	}
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	if form, err := url.ParseQuery(string(reqBody)); err == nil && r.URL.Path == "/consent" {
		s.sec.add("consent transaction", form.Get("txn"))
		s.sec.add("CSRF token", form.Get("csrf_token"))
	}
	if proxy && r.URL.Path == "/oauth/callback" {
		s.mu.Lock()
		s.lastCallback = r.URL.String()
		s.mu.Unlock()
	}
	if s.before != nil {
		s.before(r)
	}
	resp, err := s.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil {
		// The proxy's code and txn, and Clerk's code and the proxy's state
		// for Clerk on the way back.
		for _, name := range []string{"txn", "code", "state"} {
			s.sec.add("redirect-carried "+name, loc.Query().Get(name))
		}
	}
	if !proxy {
		return resp, nil
	}
	s.checkAnswer(r, resp)
	for _, c := range resp.Cookies() {
		s.sec.add("proxy cookie "+c.Name, c.Value)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		for name, label := range map[string]string{"access_token": "proxy access token", "refresh_token": "proxy refresh token",
			"client_secret": "client secret", "registration_access_token": "registration access token"} {
			if v, ok := m[name].(string); ok {
				s.sec.add(label, v)
			}
		}
	}
	s.mu.Lock()
	s.answers = append(s.answers, leakExchange{what: r.Method + " " + r.URL.Path, status: resp.StatusCode, header: resp.Header.Clone(), body: string(raw)})
	s.mu.Unlock()
	return resp, nil
}

func (s *leakSpy) do(t *testing.T, method, path string, header http.Header, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.e.BaseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (s *leakSpy) form(t *testing.T, path string, v url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if basicID != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))))
	}
	return s.do(t, http.MethodPost, path, h, v.Encode())
}

// leakClient is one registered MCP client and its MCP session.
type leakClient struct {
	*e2etest.Client
	session string
}

// register runs DCR through the spy (e.HTTP), which records the secrets.
func (s *leakSpy) register(t *testing.T, confidential bool, redirect string) *leakClient {
	t.Helper()
	method := "none"
	if confidential {
		method = "client_secret_basic"
	}
	return &leakClient{Client: s.e.RegisterClient(e2etest.ClientOptions{Name: "leak test " + method, RedirectURIs: []string{redirect}, AuthMethod: method})}
}

// signIn walks the browser through consent and Clerk; it returns the code
// (or, when Clerk fails, the error redirect's query).
func (s *leakSpy) signIn(t *testing.T, c *leakClient, p e2etest.PKCE) url.Values {
	t.Helper()
	s.sec.add("client PKCE verifier", p.Verifier)
	return s.e.Authorize(c.Client, p, testflow.Choices{})
}

func (s *leakSpy) token(t *testing.T, c *leakClient, v url.Values) (int, map[string]any) {
	t.Helper()
	return s.e.TokenAs(c.Client, v)
}

func (s *leakSpy) login(t *testing.T, c *leakClient) { s.loginHook(t, c, nil) }

// loginHook is login with afterSignIn run while the code is unredeemed.
func (s *leakSpy) loginHook(t *testing.T, c *leakClient, afterSignIn func()) {
	t.Helper()
	p := e2etest.NewPKCE()
	q := s.signIn(t, c, p)
	if q.Get("code") == "" {
		t.Fatalf("sign-in gave no code: %v", q)
	}
	if afterSignIn != nil {
		afterSignIn()
	}
	status, out := s.token(t, c, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {c.RedirectURI}, "code_verifier": {p.Verifier}})
	if status != http.StatusOK {
		t.Fatalf("code exchange: %d %v", status, out)
	}
	c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
	if exp, _ := out["expires_in"].(float64); out["token_type"] != "Bearer" || exp <= 0 {
		t.Errorf("token response (RFC 6749 §5.1): %v", out)
	}
}

func (s *leakSpy) refreshTokens(t *testing.T, c *leakClient) {
	t.Helper()
	status, out := s.token(t, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, out)
	}
	c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
}

// mcp posts one JSON-RPC message to /mcp and returns the status.
func (s *leakSpy) mcp(t *testing.T, c *leakClient, method string, params any) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {"2025-11-25"}, "Authorization": {"Bearer " + c.AccessToken}}
	if c.session != "" {
		h.Set("Mcp-Session-Id", c.session)
	}
	req, _ := http.NewRequest(http.MethodPost, s.e.BaseURL+"/mcp", bytes.NewReader(body))
	req.Header = h
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("mcp %s: %v", method, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		c.session = sid
		s.sec.add("MCP session id", sid)
	}
	return resp.StatusCode
}

func (s *leakSpy) useTools(t *testing.T, c *leakClient) {
	t.Helper()
	c.session = ""
	if st := s.mcp(t, c, "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "leak", "version": "1"}}); st != http.StatusOK {
		t.Fatalf("initialize: %d", st)
	}
	s.mcp(t, c, "notifications/initialized", nil)
	for _, tool := range []string{"get-user-info", "get-clerk-user-profile", "get-user-greeting"} {
		if st := s.mcp(t, c, "tools/call", map[string]any{"name": tool, "arguments": map[string]any{}}); st != http.StatusOK {
			t.Fatalf("%s: %d", tool, st)
		}
	}
	if st := s.mcp(t, c, "tools/list", map[string]any{}); st != http.StatusOK {
		t.Fatalf("tools/list: %d", st)
	}
}

// leakEnv starts the product with the Clerk transport recorder and a clock
// the test can move (to make the proxy refresh Clerk's token), on a Redis of
// its own (TestNothingLeakedInLogsOrErrors stops it).
func leakEnv(t *testing.T, sec *leakSecrets) (*e2etest.Env, func(time.Duration)) {
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{
		Redis:           testredis.Start(t),
		Now:             clock.Now,
		ClerkHTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &leakClerkTransport{sec: sec, base: http.DefaultTransport}},
		Clerk:           func(c *mockclerk.Config) { c.AccessTokenTTL = time.Minute },
	})
	return e, clock.Advance
}

// leakFullFlow is the happy path for both kinds of client; it returns them.
// mid, when set, runs before each browser step of the first sign-in.
func leakFullFlow(t *testing.T, e *e2etest.Env, spy *leakSpy, advance func(time.Duration), mid func(string)) (conf, pub *leakClient) {
	t.Helper()
	conf = spy.register(t, true, "http://127.0.0.1:7781/callback")
	pub = spy.register(t, false, "http://127.0.0.1:7782/callback")
	var afterSignIn func()
	if mid != nil {
		spy.before = func(r *http.Request) {
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/consent":
				mid("with a consent transaction pending")
			case r.URL.Path == "/oauth/callback":
				mid("with Clerk's callback pending")
			}
		}
		afterSignIn = func() { mid("with an authorization code unredeemed") }
	}
	spy.loginHook(t, conf, afterSignIn)
	spy.before = nil
	spy.login(t, pub)
	for _, c := range []*leakClient{conf, pub} {
		spy.useTools(t, c)
		spy.refreshTokens(t, c)
		spy.useTools(t, c)
		st, out := spy.do(t, http.MethodGet, "/register/"+url.PathEscape(c.ID), http.Header{"Authorization": {"Bearer " + c.RegistrationToken}}, "")
		if st != http.StatusOK || out["client_id"] != c.ID {
			t.Fatalf("RFC 7592 read: %d %v", st, out)
		}
		if _, ok := out["client_secret"]; ok {
			t.Error("RFC 7592 read returns the client secret again: it is returned once, at registration")
		}
	}
	if st, out := spy.form(t, "/introspect", url.Values{"token": {conf.AccessToken}}, conf.ID, conf.Secret); st != http.StatusOK || out["active"] != true {
		t.Fatalf("introspect: %d %v", st, out)
	}
	// Clerk's access token expires for the proxy: it refreshes it at Clerk.
	before := e.Clerk.Stats()["/oauth/token"]
	advance(2 * time.Minute)
	if st := spy.mcp(t, conf, "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}}); st != http.StatusOK {
		t.Fatalf("after Clerk expiry: %d", st)
	}
	if e.Clerk.Stats()["/oauth/token"] <= before {
		t.Fatal("the proxy did not refresh Clerk's token")
	}
	return conf, pub
}

func TestNothingReadableAtRest(t *testing.T) {
	t.Parallel()
	sec := newLeakSecrets()
	e, advance := leakEnv(t, sec)
	spy := newLeakSpy(e, sec)
	// Mid-flow dumps are scanned at the end, when every secret is known (the
	// proxy's PKCE verifier for Clerk, say, is only seen after the callback).
	mids := map[string]map[string][]byte{}
	ttls := map[string]time.Duration{} // ticket family -> longest TTL seen
	conf, pub := leakFullFlow(t, e, spy, advance, func(when string) {
		mids[when] = leakDump(t, e)
		for family, d := range leakTTLs(t, e, ":ticket:") {
			ttls[family] = max(ttls[family], d)
		}
	})
	// Single-use tickets are short-lived (RFC 9700 §4.7, RFC 6749 §4.1.2):
	// transaction 15 min, upstream state 10 min, code 10 min at most.
	for family, limit := range map[string]time.Duration{"txn": 15 * time.Minute, "state": 10 * time.Minute, "code": 10 * time.Minute} {
		if d, ok := ttls[family]; !ok || d <= 0 || d > limit {
			t.Errorf("%s tickets: TTL %v (seen %v), want (0, %v]", family, d, ok, limit)
		}
	}
	if len(mids) < 3 {
		t.Fatalf("mid-flow dumps taken: %d", len(mids))
	}
	for when, dump := range mids {
		for k, v := range dump {
			leakScan(t, fmt.Sprintf("Redis %s, key %s", when, k), v, sec.needles())
		}
	}
	// The recorders really saw the secrets (otherwise the scan proves nothing).
	for _, label := range []string{"proxy access token", "proxy refresh token", "client secret", "registration access token",
		"Clerk access token", "Clerk refresh token", "Clerk ID token", "Clerk authorization code", "proxy PKCE verifier for Clerk",
		"redirect-carried code", "consent transaction", "CSRF token", "client PKCE verifier"} {
		if sec.count(label) == 0 {
			t.Errorf("no %s was recorded", label)
		}
	}
	dump := leakCheckRedis(t, e, sec, "after the flow")
	grants, clients := 0, 0
	for k := range dump {
		grants += strings.Count(k, ":grant:")
		clients += strings.Count(k, ":client:")
	}
	if grants < 2 || clients < 2 {
		t.Fatalf("the dump does not hold the flow's state (%d grants, %d clients of %d keys): the scan would prove nothing", grants, clients, len(dump))
	}
	// Registrations expire when unused (CLIENT_IDLE_TTL): every client key has a TTL.
	for k, d := range leakTTLs(t, e, ":client:") {
		if d <= 0 {
			t.Errorf("client %s has no expiry", k)
		}
	}
	// RFC 7009 §2.2: an unknown token is answered 200 like any other.
	if st, _ := spy.form(t, "/revoke", url.Values{"token": {"unknown-token-0123456789abcdef"}}, conf.ID, conf.Secret); st != http.StatusOK {
		t.Fatalf("revoke of an unknown token: %d", st)
	}
	// Revocation (which revokes Clerk's tokens too) leaves nothing either.
	if st, _ := spy.form(t, "/revoke", url.Values{"token": {pub.RefreshToken}, "client_id": {pub.ID}}, "", ""); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	if st, _ := spy.form(t, "/revoke", url.Values{"token": {conf.AccessToken}}, conf.ID, conf.Secret); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	leakCheckRedis(t, e, sec, "after revocation")
	t.Logf("%d secrets (%d needles) checked against %d keys", len(sec.m), len(sec.needles()), len(dump))
	spy.assertNoProblems(t)

	// The detector itself: a secret stored as a JSON []byte field (base64 at
	// an odd alignment), as hex, or in a hash field is found.
	rdb := e.Redis.Client(t)
	ctx := context.Background()
	blob, _ := json.Marshal(map[string][]byte{"x": []byte("a" + conf.RefreshToken)})
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.Set(ctx, e.Prefix+"leak-canary:json", blob, time.Minute).Err())
	must(rdb.Set(ctx, e.Prefix+"leak-canary:hex", hex.EncodeToString([]byte("<"+conf.Secret+">")), time.Minute).Err())
	must(rdb.HSet(ctx, e.Prefix+"leak-canary:hash", "d", `{"t":"`+pub.AccessToken+`"}`).Err())
	canaries := leakDump(t, e)
	for _, k := range []string{"json", "hex", "hash"} {
		if leakScanQuiet(canaries[e.Prefix+"leak-canary:"+k], sec.needles()) == 0 {
			t.Errorf("the scanner misses a secret planted as %s", k)
		}
		_ = rdb.Del(ctx, e.Prefix+"leak-canary:"+k)
	}
}

// leakScanQuiet counts needles found without reporting them.
func leakScanQuiet(blob []byte, needles map[string]string) int {
	n := 0
	for needle := range needles {
		if len(needle) >= 12 && bytes.Contains(blob, []byte(needle)) {
			n++
		}
	}
	return n
}

// leakInternalErrors are texts of Go, network or Redis errors that must
// never reach a client.
var leakInternalErrors = []string{"dial tcp", "redis:", "context deadline", "context canceled", "connection refused",
	"i/o timeout", "EOF", "goroutine", "panic", "runtime error", "json:", "x509:", "tls:", "127.0.0.1:", "[::1]:", "store:",
	"seal:", "tokens:", "clerk ", "oauth2:", "oidc:", "go-jose", "HTTP 5"}

// leakCheckAnswers checks every error answer the proxy gave.
func leakCheckAnswers(t *testing.T, spy *leakSpy, needles map[string]string) (errorsSeen int) {
	t.Helper()
	spy.mu.Lock()
	answers := append([]leakExchange(nil), spy.answers...)
	spy.mu.Unlock()
	for _, a := range answers {
		loc, _ := url.Parse(a.header.Get("Location"))
		redirectErr := loc != nil && loc.Query().Get("error") != ""
		if a.status < 400 && !redirectErr {
			continue
		}
		errorsSeen++
		text := a.body + "\n" + a.header.Get("WWW-Authenticate")
		if redirectErr {
			// The redirect itself legitimately carries the client's URI.
			text = loc.Query().Get("error") + " " + loc.Query().Get("error_description")
		}
		where := fmt.Sprintf("answer %d to %s", a.status, a.what)
		leakScan(t, where, []byte(text), needles)
		// The proxy's own URL (in challenges) is public; any other address is not.
		text = strings.ReplaceAll(text, spy.e.BaseURL, "BASE_URL")
		for _, bad := range leakInternalErrors {
			if strings.Contains(text, bad) {
				t.Errorf("%s exposes an internal error (%q): %.300s", where, bad, text)
			}
		}
	}
	return errorsSeen
}

func TestNothingLeakedInLogsOrErrors(t *testing.T) {
	t.Parallel()
	sec := newLeakSecrets()
	e, advance := leakEnv(t, sec)
	spy := newLeakSpy(e, sec)
	conf, pub := leakFullFlow(t, e, spy, advance, nil)

	expect := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: status %d, want %d", what, got, want)
		}
	}
	// Bad client credentials, each carrying a real secret somewhere wrong.
	st, _ := spy.form(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {conf.RefreshToken}}, conf.ID, conf.Secret+"x")
	expect("wrong Basic secret", st, http.StatusUnauthorized)
	st, _ = spy.form(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {conf.RefreshToken}, "client_id": {conf.ID}, "client_secret": {conf.Secret}}, "", "")
	expect("secret sent by the wrong method", st, http.StatusUnauthorized)
	st, _ = spy.form(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {conf.RefreshToken}}, pub.ID, conf.Secret)
	expect("a public client sending a secret", st, http.StatusUnauthorized)
	st, _ = spy.form(t, "/introspect", url.Values{"token": {pub.AccessToken}}, conf.ID, pub.RegistrationToken)
	expect("introspection with a wrong secret", st, http.StatusUnauthorized)
	st, _ = spy.do(t, http.MethodGet, "/register/"+conf.ID, http.Header{"Authorization": {"Bearer " + pub.RegistrationToken}}, "")
	expect("RFC 7592 with another client's token", st, http.StatusUnauthorized)
	// Bad codes and a bad verifier.
	st, _ = spy.token(t, pub, url.Values{"grant_type": {"authorization_code"}, "code": {conf.RefreshToken}, "code_verifier": {e2etest.NewPKCE().Verifier}, "redirect_uri": {pub.RedirectURI}})
	expect("a refresh token as a code", st, http.StatusBadRequest)
	p := e2etest.NewPKCE()
	q := spy.signIn(t, pub, p)
	code := q.Get("code")
	st, _ = spy.token(t, pub, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {e2etest.NewPKCE().Verifier}, "redirect_uri": {pub.RedirectURI}})
	expect("wrong PKCE verifier", st, http.StatusBadRequest)
	st, _ = spy.token(t, pub, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.Verifier}, "redirect_uri": {pub.RedirectURI}})
	expect("a code after a failed redemption", st, http.StatusBadRequest)
	// Code replay and refresh replay (reuse detection revokes, and revokes at Clerk).
	p = e2etest.NewPKCE()
	code = spy.signIn(t, pub, p).Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.Verifier}, "redirect_uri": {pub.RedirectURI}}
	st, out := spy.token(t, pub, form)
	expect("redemption", st, http.StatusOK)
	replayed, _ := out["access_token"].(string)
	st, _ = spy.token(t, pub, form)
	expect("code replay", st, http.StatusBadRequest)
	st, _ = spy.do(t, http.MethodPost, "/mcp", http.Header{"Authorization": {"Bearer " + replayed}, "Content-Type": {"application/json"}}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	expect("token of a replayed code", st, http.StatusUnauthorized)
	old := conf.RefreshToken
	spy.refreshTokens(t, conf)
	// The client moves on: its successor's access token is used, which ends
	// the old token's grace once REFRESH_GRACE has passed.
	if st := spy.mcp(t, conf, "ping", nil); st != http.StatusOK {
		t.Fatalf("the successor's access token: %d", st)
	}
	advance(2 * time.Minute) // past REFRESH_GRACE
	st, _ = spy.token(t, conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}})
	expect("refresh replay", st, http.StatusBadRequest)
	// A code is bound to its client, redirect URI and resource (RFC 6749
	// §4.1.3, RFC 8707); a refresh token to its client and scopes (§6).
	for what, c := range map[string]struct {
		form       url.Values
		asConf     bool
		wantStatus int
	}{
		"code redeemed by another client": {url.Values{}, true, http.StatusBadRequest},
		"code with another redirect_uri":  {url.Values{"redirect_uri": {"http://127.0.0.1:7782/other"}}, false, http.StatusBadRequest},
		"code with another resource":      {url.Values{"resource": {"https://other.example/mcp"}}, false, http.StatusBadRequest},
	} {
		p := e2etest.NewPKCE()
		code := spy.signIn(t, pub, p).Get("code")
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.Verifier}, "redirect_uri": {pub.RedirectURI}}
		for k, v := range c.form {
			f[k] = v
		}
		who := pub
		if c.asConf {
			who = conf
		}
		st, out := spy.token(t, who, f)
		if st != c.wantStatus || out["error"] != "invalid_grant" && out["error"] != "invalid_target" {
			t.Errorf("%s: %d %v", what, st, out)
		}
	}
	st, out = spy.token(t, pub, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pub.RefreshToken}, "scope": {"openid admin:all"}})
	if st != http.StatusBadRequest || out["error"] != "invalid_scope" {
		t.Errorf("refresh widening the scope: %d %v", st, out)
	}
	st, out = spy.token(t, conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pub.RefreshToken}})
	if st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("another client's refresh token: %d %v", st, out)
	}
	// The upstream state is single use: replaying Clerk's callback fails.
	spy.mu.Lock()
	callback := spy.lastCallback
	spy.mu.Unlock()
	st, _ = spy.do(t, http.MethodGet, strings.TrimPrefix(callback, e.BaseURL), nil, "")
	expect("Clerk callback replay", st, http.StatusBadRequest)
	// Forged consent and callback.
	st, _ = spy.do(t, http.MethodPost, "/consent", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"cmp_csrf=" + conf.Secret}},
		url.Values{"txn": {pub.RegistrationToken}, "csrf_token": {conf.Secret}, "action": {"approve"}}.Encode())
	expect("forged consent", st, http.StatusForbidden)
	st, _ = spy.do(t, http.MethodGet, "/oauth/callback?"+url.Values{"state": {pub.RefreshToken}, "code": {conf.Secret}}.Encode(), nil, "")
	expect("forged callback", st, http.StatusBadRequest)
	st, _ = spy.do(t, http.MethodPost, "/mcp", http.Header{"Authorization": {"Bearer " + pub.RefreshToken}, "Content-Type": {"application/json"}}, `{}`)
	expect("a refresh token as a bearer", st, http.StatusUnauthorized)

	// Clerk faults on every endpoint the proxy calls.
	fresh := spy.register(t, false, "http://127.0.0.1:7783/callback")
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token", Status: http.StatusInternalServerError})
	q = spy.signIn(t, fresh, e2etest.NewPKCE())
	if q.Get("error") == "" || q.Get("code") != "" {
		t.Errorf("Clerk token endpoint down at sign-in: %v", q)
	}
	e.Clerk.ClearFaults()
	spy.login(t, fresh)
	initialize := func() int {
		fresh.session = ""
		return spy.mcp(t, fresh, "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "leak", "version": "1"}})
	}
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: http.StatusInternalServerError})
	expect("introspection down", initialize(), http.StatusServiceUnavailable)
	e.Clerk.ClearFaults()
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/userinfo", Status: http.StatusInternalServerError})
	expect("userinfo down", initialize(), http.StatusOK)
	e.Clerk.ClearFaults()
	advance(2 * time.Minute) // Clerk's token expires again: the refresh at Clerk fails
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token", Status: http.StatusInternalServerError})
	expect("Clerk refresh down", initialize(), http.StatusServiceUnavailable)
	e.Clerk.ClearFaults()
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token/revoke", Status: http.StatusInternalServerError})
	st, _ = spy.form(t, "/revoke", url.Values{"token": {fresh.RefreshToken}, "client_id": {fresh.ID}}, "", "")
	expect("revoke with Clerk's revocation down", st, http.StatusOK)
	e.Clerk.ClearFaults()

	// Redis down: every answer is a clean 503 naming nothing internal.
	e.Redis.Stop(t)
	st, _ = spy.do(t, http.MethodPost, "/register", http.Header{"Content-Type": {"application/json"}}, `{"redirect_uris":["http://127.0.0.1:7784/cb"]}`)
	expect("register with Redis down", st, http.StatusServiceUnavailable)
	st, _ = spy.token(t, conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {conf.RefreshToken}})
	expect("refresh with Redis down", st, http.StatusServiceUnavailable)
	st, _ = spy.do(t, http.MethodGet, "/authorize?"+url.Values{"client_id": {pub.ID}, "response_type": {"code"}}.Encode(), nil, "")
	expect("authorize with Redis down", st, http.StatusServiceUnavailable)
	st, _ = spy.do(t, http.MethodPost, "/mcp", http.Header{"Authorization": {"Bearer " + pub.AccessToken}, "Content-Type": {"application/json"}}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if st != http.StatusServiceUnavailable && st != http.StatusUnauthorized {
		t.Errorf("MCP with Redis down: %d", st)
	}
	e.Redis.Restart(t)

	needles := sec.needles()
	logs := e.Logs.String()
	if !strings.Contains(logs, `"event":"refresh_token_reuse_detected"`) || !strings.Contains(logs, "store error") {
		t.Fatalf("the log does not cover the failures (reuse detection, store errors): %d bytes", len(logs))
	}
	if leakScan(t, "proxy log", []byte(logs), needles) > 0 {
		t.Logf("log excerpt: %.2000s", logs)
	}
	n := leakCheckAnswers(t, spy, needles)
	if n < 15 {
		t.Fatalf("only %d error answers checked", n)
	}
	t.Logf("%d secrets (%d needles) checked against %d log bytes and %d error answers", len(sec.m), len(needles), len(logs), n)
	spy.assertNoProblems(t)
}
