package app_test

// TestMalformedRequests throws several hundred malformed HTTP requests at one
// running proxy (real Redis, fake Clerk, the app's router): wrong methods on
// every endpoint, wrong or missing content types, bodies over 1 MiB,
// repeated parameters (RFC 6749 §3.1), invalid UTF-8, CR/LF and control
// characters, redirect_uri tricks, bad PKCE values, bad grant and response
// types, malformed registration JSON, bad Basic credentials, bad bearer
// headers and foreign Origin/Host at /mcp. For every case: a 4xx (a 302
// error redirect only from /authorize, and only to a redirect URI the client
// registered), never a 5xx or a panic, JSON errors with an `error` from the
// RFC 6749/6750/7009/7591/8707 vocabulary of that endpoint and
// Cache-Control: no-store, HTML error pages unframeable and uncached, no
// injected header, and nothing stored by a refused registration.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// badCase is one malformed request and what may answer it.
type badCase struct {
	name     string
	method   string
	target   string // path and query
	header   http.Header
	body     []byte
	chunked  bool   // send the body without a Content-Length
	host     string // overrides the Host header
	want     []int  // acceptable statuses; nil means any 4xx
	redirect bool   // /authorize may answer 302 with an error to a registered redirect URI
}

// Error vocabularies per endpoint.
var (
	badAuthzErrors = []string{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "invalid_target", "consent_required"}
	badTokenErrors    = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "invalid_target"}
	badRevokeErrors   = append(slices.Clone(badTokenErrors), "unsupported_token_type")
	badRegisterErrors = []string{"invalid_redirect_uri", "invalid_client_metadata", "invalid_request"}
	badMCPErrors      = []string{"invalid_token", "insufficient_scope", "invalid_request"}
)

// badVocabulary is the error vocabulary of the endpoint at path.
func badVocabulary(path string, authorization bool, status int) []string {
	switch {
	case path == "/token", path == "/introspect":
		return badTokenErrors
	case path == "/revoke":
		return badRevokeErrors
	case path == "/register":
		return badRegisterErrors
	case strings.HasPrefix(path, "/register/"):
		return []string{"invalid_token", "invalid_request"}
	case path == "/mcp":
		if !authorization {
			// RFC 6750 §3.1: no error code when no credentials were sent;
			// the body names the situation.
			return append(slices.Clone(badMCPErrors), "unauthorized")
		}
		return badMCPErrors
	case path == "/authorize", path == "/consent", path == "/oauth/callback":
		return badAuthzErrors
	case status == http.StatusNotFound:
		return []string{"not_found", "invalid_request"}
	}
	return []string{"invalid_request"}
}

type badRunner struct {
	e         *e2etest.Env
	client    *http.Client
	redirects []string // the public client's registered redirect URIs

	mu       sync.Mutex // cases run in parallel
	cases    int
	fivexx   int
	byStatus map[int]int
}

// registeredRedirect reports whether loc goes to a registered redirect URI
// (exactly, or a loopback one on another port: RFC 8252 §7.3).
func (r *badRunner) registeredRedirect(loc string) bool {
	u, err := url.Parse(loc)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	for _, reg := range r.redirects {
		ru, _ := url.Parse(reg)
		if u.Scheme != ru.Scheme || u.EscapedPath() != ru.EscapedPath() {
			continue
		}
		if u.Host == ru.Host || u.Scheme == "http" && ru.Hostname() == "127.0.0.1" && u.Hostname() == "127.0.0.1" {
			return true
		}
	}
	return false
}

// count updates the tallies.
func (r *badRunner) count(update func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	update()
}

func (r *badRunner) run(t *testing.T, c badCase) {
	t.Helper()
	r.count(func() { r.cases++ })
	var body io.Reader = bytes.NewReader(c.body)
	if c.chunked {
		body = io.MultiReader(bytes.NewReader(c.body)) // hides the length
	}
	if c.body == nil {
		body = nil
	}
	req, err := http.NewRequest(c.method, r.e.BaseURL+c.target, body)
	if err != nil {
		t.Errorf("%s: building the request: %v", c.name, err)
		return
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	status := resp.StatusCode
	r.count(func() { r.byStatus[status]++ })
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s %s -> %d: %s\n  body: %.300s", c.name, c.method, badTruncate(c.target, 200), status, fmt.Sprintf(format, args...), raw)
	}
	path := strings.SplitN(c.target, "?", 2)[0]
	loc := resp.Header.Get("Location")
	switch {
	case status >= 500:
		r.count(func() { r.fivexx++ })
		fail("a server error for bad input")
		return
	case status == http.StatusFound && c.redirect:
		// Only an error, only to a registered redirect URI, with iss and at
		// most one state.
		u, err := url.Parse(loc)
		if err != nil || !r.registeredRedirect(loc) {
			fail("redirected to %q, which the client did not register", loc)
			return
		}
		q := u.Query()
		if q.Get("error") == "" || q.Has("code") || q.Has("code_challenge") || len(q["state"]) > 1 || q.Get("iss") != r.e.BaseURL ||
			!slices.Contains(badAuthzErrors, q.Get("error")) {
			fail("bad error redirect %q", loc)
		}
	case status < 400:
		fail("not a 4xx (Location %q)", loc)
		return
	case loc != "":
		fail("an error answer with a Location %q", loc)
	}
	if c.want != nil && !slices.Contains(c.want, status) {
		fail("status not in %v", c.want)
	}
	for name, vals := range resp.Header {
		if strings.Contains(strings.ToLower(name), "injected") || slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(v, "injected") }) {
			fail("header injection: %s: %v", name, vals)
		}
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case c.method == http.MethodHead || status == http.StatusFound:
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			fail("a JSON error that does not parse: %v", err)
			return
		}
		code, _ := m["error"].(string)
		if voc := badVocabulary(path, c.header.Get("Authorization") != "", status); !slices.Contains(voc, code) {
			fail("error %q is not in this endpoint's vocabulary %v", code, voc)
		}
		if desc, _ := m["error_description"].(string); strings.ContainsAny(desc, "\r\n") {
			fail("error_description with a line break")
		}
		if !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
			fail("a JSON error without Cache-Control: no-store")
		}
		if status == http.StatusUnauthorized && code == "invalid_client" && strings.HasPrefix(c.header.Get("Authorization"), "Basic ") &&
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			fail("invalid_client for Basic credentials without a Basic challenge (RFC 6749 §5.2)")
		}
	case strings.HasPrefix(ct, "text/html"):
		h := resp.Header
		if !strings.Contains(h.Get("Cache-Control"), "no-store") || h.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			fail("an error page without no-store / anti-framing headers: %v", h)
		}
	case path == "/mcp" && status != http.StatusUnauthorized && status != http.StatusForbidden:
		// Past authentication the MCP SDK answers transport errors itself.
	default:
		fail("an error answer of type %q", ct)
	}
	if path == "/mcp" && status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer resource_metadata="`) {
		fail("401 without a Bearer challenge naming the resource metadata")
	}
}

func badTruncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// badHTTPSRedirect is the public client's https redirect URI (its other is
// a loopback one).
const badHTTPSRedirect = "https://client.example/cb"

// badFixture is the one running proxy the malformed requests go to, with a
// signed-in public client and a confidential client, and the well-formed
// requests that cases change one thing of.
type badFixture struct {
	e         *e2etest.Env
	pub       *e2etest.Client
	conf      *e2etest.Client // client_secret_basic, for the Basic-authentication cases
	pkce      e2etest.PKCE
	tokenForm url.Values // a well-formed authorization_code token request
}

func newBadFixture(t *testing.T) *badFixture {
	t.Helper()
	f := &badFixture{e: e2etest.Start(t, e2etest.Options{}), pkce: e2etest.NewPKCE()}
	f.pub = f.e.Register("http://127.0.0.1:7777/callback", badHTTPSRedirect)
	f.e.Login(f.pub, testflow.Choices{})
	f.conf = f.e.RegisterClient(e2etest.ClientOptions{Name: "bad input", RedirectURIs: []string{"https://conf.example/cb"}, AuthMethod: "client_secret_basic"})
	f.tokenForm = url.Values{"grant_type": {"authorization_code"}, "code": {"abc"}, "code_verifier": {f.pkce.Verifier},
		"client_id": {f.pub.ID}, "redirect_uri": {badHTTPSRedirect}, "resource": {f.e.BaseURL + "/mcp"}}
	return f
}

// authQ is a valid authorization request with set applied ("\x00delete"
// removes a parameter).
func (f *badFixture) authQ(set map[string]string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {f.pub.ID}, "redirect_uri": {badHTTPSRedirect},
		"code_challenge": {f.pkce.Challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"},
		"resource": {f.e.BaseURL + "/mcp"}, "scope": {"openid"}}
	for k, v := range set {
		if v == "\x00delete" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// badForm is a form content type plus header name/value pairs.
func badForm(v ...string) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for i := 0; i+1 < len(v); i += 2 {
		h.Set(v[i], v[i+1])
	}
	return h
}

var badJSON = http.Header{"Content-Type": {"application/json"}}

// badBasic is an HTTP Basic header of user and pass as given (no
// form-encoding, so malformed values stay malformed).
func badBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestMalformedRequests: each group of cases is a subtest, and each case a
// subtest of it, so one case reruns alone:
//
//	go test -run 'TestMalformedRequests/redirect_uri_tricks/redirect_trick_javascript:alert(1)_GET' ./internal/app
//
// The cases of a group run in parallel against the one proxy: every one is
// refused, so none changes what another sees.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	f := newBadFixture(t)
	e := f.e
	r := &badRunner{e: e, redirects: []string{"http://127.0.0.1:7777/callback", badHTTPSRedirect}, byStatus: map[int]int{},
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	groups := []struct {
		name  string
		cases func(add func(badCase))
	}{
		{"wrong methods", f.wrongMethods},
		{"content types", f.contentTypes},
		{"bodies over 1 MiB", f.hugeBodies},
		{"repeated parameters", f.repeatedParams},
		{"invalid UTF-8 and control characters", f.badCharacters},
		{"redirect_uri tricks", f.redirectTricks},
		{"bad PKCE, response types, resource, scope", f.authorizeErrors},
		{"bad token requests", f.tokenRequests},
		{"malformed registrations", f.registrations},
		{"bad client authentication", f.clientAuth},
		{"bad bearer, Origin, Host at /mcp", f.mcpBearer},
		{"consent, callback, RFC 7592, unknown paths", f.consentCallbackRegistration},
	}
	// Refused registrations and authorization requests store nothing.
	clientsBefore := badCountKeys(t, e, "client:")
	txnsBefore := badCountKeys(t, e, "ticket:txn:")
	built := 0
	for _, g := range groups {
		var cases []badCase
		g.cases(func(c badCase) { cases = append(cases, c) })
		built += len(cases)
		t.Run(g.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					r.run(t, c)
				})
			}
		})
	}
	if n := badCountKeys(t, e, "client:"); n != clientsBefore {
		t.Errorf("refused registrations stored clients: %d -> %d", clientsBefore, n)
	}
	if n := badCountKeys(t, e, "ticket:txn:"); n != txnsBefore {
		t.Errorf("refused authorization requests stored transactions: %d -> %d", txnsBefore, n)
	}
	if strings.Contains(e.Logs.String(), "panic serving request") {
		t.Error("a handler panicked")
	}
	// The proxy still works after all that.
	if st, _ := e.Refresh(f.pub, f.pub.RefreshToken); st != http.StatusOK {
		t.Errorf("refresh after the bad input: %d", st)
	}
	r.mu.Lock()
	t.Logf("malformed requests: %d built, %d sent, 5xx answers: %d, statuses: %v", built, r.cases, r.fivexx, r.byStatus)
	r.mu.Unlock()
	if built < 300 {
		t.Fatalf("only %d cases", built)
	}
}

// Wrong methods on every endpoint.
func (f *badFixture) wrongMethods(add func(badCase)) {
	endpoints := map[string][]string{
		"/.well-known/oauth-authorization-server": {"GET"}, "/.well-known/openid-configuration": {"GET"},
		"/.well-known/jwks.json": {"GET"}, "/.well-known/oauth-protected-resource": {"GET"},
		"/.well-known/oauth-protected-resource/mcp": {"GET"}, "/register": {"POST"},
		"/register/" + f.conf.ID: {"GET", "DELETE"}, "/authorize": {"GET", "POST"}, "/consent": {"GET", "POST"},
		"/oauth/callback": {"GET"}, "/token": {"POST"}, "/revoke": {"POST"}, "/introspect": {"POST"},
		"/healthz": {"GET"}, "/readyz": {"GET"}, "/metrics": {"GET"},
	}
	for path, allowed := range endpoints {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", "PROPFIND"} {
			if slices.Contains(allowed, m) {
				continue
			}
			add(badCase{name: "method " + m + " " + path, method: m, target: path, want: []int{http.StatusMethodNotAllowed}})
		}
	}
	for _, m := range []string{"PUT", "PATCH", "TRACE"} {
		add(badCase{name: "method " + m + " /mcp without token", method: m, target: "/mcp", want: []int{http.StatusUnauthorized}})
		add(badCase{name: "method " + m + " /mcp with token", method: m, target: "/mcp",
			header: http.Header{"Authorization": {"Bearer " + f.pub.AccessToken}}})
	}
}

// Wrong or missing content types.
func (f *badFixture) contentTypes(add func(badCase)) {
	formBodies := map[string]string{
		"/token":      "grant_type=authorization_code&code=x&code_verifier=" + f.pkce.Verifier + "&client_id=" + f.pub.ID,
		"/revoke":     "token=x&client_id=" + f.pub.ID,
		"/introspect": "token=x",
		"/consent":    "txn=x&csrf_token=y&action=approve",
	}
	for path, b := range formBodies {
		for _, ct := range []string{"", "text/plain", "application/json", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded-evil", ";;;"} {
			h := http.Header{}
			if ct != "" {
				h.Set("Content-Type", ct)
			}
			add(badCase{name: "content type " + ct + " " + path, method: "POST", target: path, header: h, body: []byte(b)})
		}
	}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "text/json"} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		add(badCase{name: "content type " + ct + " /register", method: "POST", target: "/register", header: h,
			body: []byte(`{"redirect_uris":["https://ok.example/cb"]}`), want: []int{400, 415}})
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		add(badCase{name: "content type " + ct + " /mcp", method: "POST", target: "/mcp",
			header: http.Header{"Authorization": {"Bearer " + f.pub.AccessToken}, "Content-Type": {ct}, "Accept": {"application/json, text/event-stream"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}
}

// Bodies over 1 MiB (with and without a Content-Length).
func (f *badFixture) hugeBodies(add func(badCase)) {
	huge := bytes.Repeat([]byte("a"), 3<<19) // 1.5 MiB
	for _, chunked := range []bool{false, true} {
		sfx := map[bool]string{false: " (length)", true: " (chunked)"}[chunked]
		for _, path := range []string{"/token", "/revoke", "/introspect", "/consent"} {
			add(badCase{name: "huge body " + path + sfx, method: "POST", target: path, header: badForm(), chunked: chunked,
				body: append([]byte("x="), huge...), want: []int{http.StatusRequestEntityTooLarge}})
		}
		add(badCase{name: "huge body /authorize" + sfx, method: "POST", target: "/authorize", header: badForm(), chunked: chunked,
			body: append([]byte("x="), huge...), want: []int{400, 413}})
		add(badCase{name: "huge body /register" + sfx, method: "POST", target: "/register", header: badJSON, chunked: chunked,
			body: append(append([]byte(`{"redirect_uris":["https://ok.example/cb"],"client_name":"`), huge...), `"}`...),
			want: []int{http.StatusRequestEntityTooLarge}})
		add(badCase{name: "huge body /mcp" + sfx, method: "POST", target: "/mcp", chunked: chunked,
			header: http.Header{"Authorization": {"Bearer " + f.pub.AccessToken}, "Content-Type": {"application/json"}},
			body:   append(append([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"`), bytes.Repeat(huge, 3)...), `"}}`...),
			want:   []int{http.StatusRequestEntityTooLarge}})
		add(badCase{name: "huge body /mcp without token" + sfx, method: "POST", target: "/mcp", chunked: chunked,
			header: http.Header{"Content-Type": {"application/json"}}, body: huge, want: []int{http.StatusUnauthorized}})
	}
}

// Repeated parameters (RFC 6749 §3.1), same and different values.
func (f *badFixture) repeatedParams(add func(badCase)) {
	authParams := []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope", "resource"}
	for _, p := range authParams {
		base, _ := url.ParseQuery(f.authQ(nil))
		for _, second := range []string{base.Get(p), "other"} {
			q := f.authQ(nil) + "&" + url.Values{p: {second}}.Encode()
			add(badCase{name: "repeated " + p + "=" + second + " /authorize", method: "GET", target: "/authorize?" + q, want: []int{400}})
		}
	}
	add(badCase{name: "repeated state POST /authorize", method: "POST", target: "/authorize", header: badForm(), body: []byte(f.authQ(nil) + "&state=x"), want: []int{400}})
	for _, p := range []string{"grant_type", "code", "code_verifier", "client_id", "redirect_uri", "resource", "scope", "refresh_token", "client_secret"} {
		for i, second := range []string{f.tokenForm.Get(p), "other"} {
			if second == "" {
				second = "x"
			}
			add(badCase{name: "repeated " + p + " " + []string{"same value", "other value"}[i] + " /token", method: "POST", target: "/token", header: badForm(),
				body: []byte(f.tokenForm.Encode() + "&" + url.Values{p: {second}}.Encode() + "&" + url.Values{p: {second}}.Encode()), want: []int{400}})
		}
	}
	for path, b := range map[string]string{"/revoke": "token=abc&client_id=" + f.pub.ID, "/introspect": "token=abc"} {
		for _, p := range []string{"token", "token_type_hint", "client_id"} {
			add(badCase{name: "repeated " + p + " " + path, method: "POST", target: path, header: badForm("Authorization", badBasic(f.conf.ID, f.conf.Secret)),
				body: []byte(b + "&" + p + "=a&" + p + "=b"), want: []int{400}})
		}
	}
	for _, p := range []string{"txn", "csrf_token", "action"} {
		add(badCase{name: "repeated " + p + " /consent", method: "POST", target: "/consent", header: badForm(),
			body: []byte("txn=a&csrf_token=b&action=approve&" + p + "=c"), want: []int{400}})
	}
	for _, q := range []string{"state=a&state=a", "state=a&state=b&code=c", "state=a&code=b&code=b"} {
		add(badCase{name: "repeated " + q + " /oauth/callback", method: "GET", target: "/oauth/callback?" + q, want: []int{400}})
	}
}

// Invalid UTF-8 and control characters (CR/LF header injection).
func (f *badFixture) badCharacters(add func(badCase)) {
	bad := map[string]string{"invalid UTF-8": "%ff%fe", "overlong UTF-8": "%c0%af", "CRLF": "a%0d%0aX-Injected:%201",
		"LF Set-Cookie": "a%0aSet-Cookie:%20injected=1", "CR": "a%0db", "NUL": "a%00b", "BEL": "%07", "DEL": "%7f", "surrogate": "%ed%a0%80"}
	for what, v := range bad {
		for _, p := range []string{"state", "client_id", "redirect_uri", "code_challenge", "scope"} {
			add(badCase{name: what + " in " + p + " /authorize", method: "GET",
				target: "/authorize?" + f.authQ(map[string]string{p: "\x00delete"}) + "&" + p + "=" + v, want: []int{400}})
		}
		for _, p := range []string{"code", "client_id", "code_verifier"} {
			rest := url.Values{}
			for k, vv := range f.tokenForm {
				if k != p {
					rest[k] = vv
				}
			}
			add(badCase{name: what + " in " + p + " /token", method: "POST", target: "/token", header: badForm(),
				body: []byte(rest.Encode() + "&" + p + "=" + v), want: []int{400, 401}})
		}
		add(badCase{name: what + " in state /oauth/callback", method: "GET", target: "/oauth/callback?code=x&state=" + v, want: []int{400}})
		add(badCase{name: what + " in txn /consent", method: "GET", target: "/consent?txn=" + v, want: []int{400}})
		add(badCase{name: what + " in token /revoke", method: "POST", target: "/revoke", header: badForm(), body: []byte("client_id=" + f.pub.ID + "&token=" + v), want: []int{400}})
	}
	for _, b := range []string{"{\"redirect_uris\":[\"https://ok.example/cb\"],\"client_name\":\"\xff\xfe\"}",
		"{\"redirect_uris\":[\"https://ok.example/\xc0\xafcb\"]}", "\xef\xbb\xbf{\"redirect_uris\":[\"https://ok.example/cb\"]}",
		"\xff\xfe{\x00\"\x00}\x00"} {
		add(badCase{name: fmt.Sprintf("bad UTF-8 JSON %q", badTruncate(b, 40)), method: "POST", target: "/register", header: badJSON, body: []byte(b), want: []int{400}})
	}
}

// redirect_uri tricks against a client that registered
// http://127.0.0.1:7777/callback and https://client.example/cb.
func (f *badFixture) redirectTricks(add func(badCase)) {
	tricks := []string{
		"https://client.example@evil.example/cb", "https://evil.example@client.example/cb", "https://client.example/cb@evil.example",
		"https://client.example/cb/../evil", "https://client.example/x/../cb", "https://client.example/cb/%2e%2e/evil", "https://client.example/%2E/cb",
		"https://client.example/./cb", "HTTPS://client.example/cb", "https://CLIENT.EXAMPLE/cb", "https://client.example/CB",
		"https://client.example/cb#frag", "https://client.example/cb#", "https://client.example/cb/", "https://client.example/cb?x=1",
		"https://client.example/cb?", "https://client.example:443/cb", "https://client.example:8443/cb", "https://client.example./cb",
		"https://client.example%2e/cb", "https://client%2eexample/cb", "https://%63lient.example/cb", "https://cl\u0456ent.example/cb",
		"https://xn--clent-zlb.example/cb", "https://client.example.evil.example/cb", "https://evil.example/cb", "http://client.example/cb",
		"https:\\\\client.example\\cb", "https://client.example\\@evil.example/cb", "https://client.example\\cb", "//client.example/cb",
		"/cb", "cb", "", "javascript:alert(1)", "JaVaScRiPt:alert(document.domain)", "data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)", "file:///etc/passwd", "https://client.example/cb%00", "https://client.example/cb%0d%0aX-Injected:1",
		" https://client.example/cb", "https://client.example/cb ", "https://client.example/c%62", "wss://client.example/cb",
		"http://127.0.0.1.evil.example:7777/callback", "http://localhost:7777/callback", "http://127.0.0.1:7777@evil.example/callback",
		"http://evil.example@127.0.0.1:7777/callback", "http://127.0.0.1:7777/callback/../x", "http://127.0.0.1:7777/Callback",
		"http://127.0.0.1:7777/callback/", "http://127.0.0.1:0/callback", "http://127.0.0.1:99999/callback", "http://127.0.0.1:-1/callback",
		"http://127.0.0.1:7777/callback?x=1", "http://127.0.0.1:7777/callback#x", "http://0x7f000001:7777/callback",
		"http://2130706433:7777/callback", "http://127.1:7777/callback", "http://[::ffff:127.0.0.1]:7777/callback",
		"http://[::1]:7777/callback", "https://127.0.0.1:7777/callback", "http://127.0.0.1:7777\\@evil.example/callback",
		"http://127.0.0.1:7777/%63allback", "http://127.0.0.2:7777/callback",
	}
	for _, tr := range tricks {
		for _, m := range []string{"GET", "POST"} {
			q := f.authQ(map[string]string{"redirect_uri": tr})
			c := badCase{name: "redirect trick " + tr + " " + m, method: m, target: "/authorize?" + q, want: []int{400}}
			if m == "POST" {
				c.target, c.header, c.body = "/authorize", badForm(), []byte(q)
			}
			add(c)
		}
	}
	for _, id := range []string{"mcp_unknown", "", f.conf.ID, "https://client.example/metadata.json", strings.Repeat("a", 3000)} {
		add(badCase{name: "redirect to " + badHTTPSRedirect + " for client " + badTruncate(id, 30), method: "GET",
			target: "/authorize?" + f.authQ(map[string]string{"client_id": id}), want: []int{400}})
	}
	add(badCase{name: "no redirect_uri with two registered", method: "GET", target: "/authorize?" + f.authQ(map[string]string{"redirect_uri": "\x00delete"}), want: []int{400}})
}

// Bad PKCE and response types: errors sent back to the registered URI.
func (f *badFixture) authorizeErrors(add func(badCase)) {
	for what, set := range map[string]map[string]string{
		"no challenge":          {"code_challenge": "\x00delete"},
		"no challenge, S256":    {"code_challenge": ""},
		"no method":             {"code_challenge_method": "\x00delete"},
		"plain":                 {"code_challenge_method": "plain"},
		"lowercase s256":        {"code_challenge_method": "s256"},
		"SHA256":                {"code_challenge_method": "SHA256"},
		"S256 with space":       {"code_challenge_method": "S256 "},
		"42 chars":              {"code_challenge": f.pkce.Challenge[:42]},
		"44 chars":              {"code_challenge": f.pkce.Challenge + "A"},
		"128 chars":             {"code_challenge": strings.Repeat("a", 128)},
		"base64 std alphabet":   {"code_challenge": strings.Repeat("+/", 21) + "A"},
		"padding":               {"code_challenge": f.pkce.Challenge[:42] + "="},
		"spaces":                {"code_challenge": f.pkce.Challenge[:40] + "   "},
		"response_type token":   {"response_type": "token"},
		"response_type id":      {"response_type": "id_token"},
		"response_type hybrid":  {"response_type": "code token"},
		"response_type CODE":    {"response_type": "CODE"},
		"response_type none":    {"response_type": "none"},
		"no response_type":      {"response_type": "\x00delete"},
		"unknown scope":         {"scope": "openid admin:all"},
		"foreign resource":      {"resource": "https://evil.example/mcp"},
		"resource fragment":     {"resource": f.e.BaseURL + "/mcp#x"},
		"relative resource":     {"resource": "/mcp"},
		"resource other path":   {"resource": f.e.BaseURL + "/mcp-other"},
		"prompt none":           {"prompt": "none"},
		"state over 1024 bytes": {"state": strings.Repeat("s", 1100)},
	} {
		// To a loopback redirect URI (an app on the user's machine) the error
		// goes back by itself; to an https one the client registered for
		// itself, only through a link on a local page (RFC 9700 §4.11.2).
		add(badCase{name: "authorize " + what, method: "GET", target: "/authorize?" + f.authQ(set), want: []int{400}})
		loopback := maps.Clone(set)
		loopback["redirect_uri"] = "http://127.0.0.1:7777/callback"
		add(badCase{name: "authorize (loopback) " + what, method: "GET", target: "/authorize?" + f.authQ(loopback), want: []int{302}, redirect: true})
	}
}

// Bad token requests: grant types, verifiers, missing parameters.
func (f *badFixture) tokenRequests(add func(badCase)) {
	for _, g := range []string{"password", "client_credentials", "implicit", "token", "urn:ietf:params:oauth:grant-type:device_code",
		"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange", "AUTHORIZATION_CODE",
		"authorization_code ", "refresh_token\t", ""} {
		add(badCase{name: "grant_type " + g, method: "POST", target: "/token", header: badForm(),
			body: []byte(url.Values{"grant_type": {g}, "client_id": {f.pub.ID}, "code": {"x"}, "code_verifier": {f.pkce.Verifier}}.Encode()), want: []int{400}})
	}
	for what, v := range map[string]string{"42 chars": f.pkce.Verifier[:42], "129 chars": strings.Repeat("a", 129), "invalid chars": strings.Repeat("a", 42) + "!",
		"empty": "", "spaces": strings.Repeat("a ", 25), "unicode": strings.Repeat("é", 43)} {
		add(badCase{name: "code_verifier " + what, method: "POST", target: "/token", header: badForm(),
			body: []byte(url.Values{"grant_type": {"authorization_code"}, "client_id": {f.pub.ID}, "code": {"x"}, "code_verifier": {v}}.Encode()), want: []int{400}})
	}
	for what, v := range map[string]url.Values{
		"no code":                  {"grant_type": {"authorization_code"}, "client_id": {f.pub.ID}, "code_verifier": {f.pkce.Verifier}},
		"unknown code":             {"grant_type": {"authorization_code"}, "client_id": {f.pub.ID}, "code": {strings.Repeat("c", 43)}, "code_verifier": {f.pkce.Verifier}},
		"no refresh_token":         {"grant_type": {"refresh_token"}, "client_id": {f.pub.ID}},
		"garbage refresh_token":    {"grant_type": {"refresh_token"}, "client_id": {f.pub.ID}, "refresh_token": {"garbage"}},
		"forged refresh_token":     {"grant_type": {"refresh_token"}, "client_id": {f.pub.ID}, "refresh_token": {strings.Repeat("g", 22) + "." + strings.Repeat("s", 43)}},
		"access token as refresh":  {"grant_type": {"refresh_token"}, "client_id": {f.pub.ID}, "refresh_token": {f.pub.AccessToken}},
		"another client's refresh": {"grant_type": {"refresh_token"}, "refresh_token": {f.pub.RefreshToken}, "client_id": {f.conf.ID}, "client_secret": {f.conf.Secret}},
		"widening scope":           {"grant_type": {"refresh_token"}, "client_id": {f.pub.ID}, "refresh_token": {"x"}, "scope": {"openid admin"}},
		"no client":                {"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {f.pkce.Verifier}},
		"unknown client":           {"grant_type": {"authorization_code"}, "client_id": {"mcp_nobody"}, "code": {"x"}, "code_verifier": {f.pkce.Verifier}},
		"public with secret":       {"grant_type": {"authorization_code"}, "client_id": {f.pub.ID}, "client_secret": {"s"}, "code": {"x"}, "code_verifier": {f.pkce.Verifier}},
		"basic client via post":    {"grant_type": {"authorization_code"}, "client_id": {f.conf.ID}, "client_secret": {f.conf.Secret}, "code": {"x"}, "code_verifier": {f.pkce.Verifier}},
		"empty body":               {},
	} {
		add(badCase{name: "token " + what, method: "POST", target: "/token", header: badForm(), body: []byte(v.Encode()), want: []int{400, 401}})
	}
	add(badCase{name: "token query instead of body", method: "POST", target: "/token?" + f.tokenForm.Encode(), header: badForm(), body: []byte(""), want: []int{400, 401}})
	add(badCase{name: "token malformed form", method: "POST", target: "/token", header: badForm(), body: []byte("grant_type=%zz&client_id=" + f.pub.ID), want: []int{400}})
}

// Malformed registration JSON.
func (f *badFixture) registrations(add func(badCase)) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for what, b := range map[string]string{
		"truncated": `{"redirect_uris":["https://ok.example/cb"`, "truncated string": `{"redirect_uris":["https://ok.exa`,
		"array": `[{"redirect_uris":["https://ok.example/cb"]}]`, "empty array": `[]`, "null": `null`, "true": `true`, "number": `42`,
		"string": `"https://ok.example/cb"`, "empty object": `{}`, "empty body": ``, "whitespace": "  \n ",
		"redirect_uris null": `{"redirect_uris":null}`, "redirect_uris string": `{"redirect_uris":"https://ok.example/cb"}`,
		"redirect_uris number": `{"redirect_uris":[1]}`, "redirect_uris null item": `{"redirect_uris":[null]}`,
		"redirect_uris nested": `{"redirect_uris":[["https://ok.example/cb"]]}`, "redirect_uris object": `{"redirect_uris":{"a":"https://ok.example/cb"}}`,
		"redirect_uris empty": `{"redirect_uris":[]}`, "client_name number": `{"redirect_uris":["https://ok.example/cb"],"client_name":123}`,
		"auth method array":     `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":["none"]}`,
		"auth method null type": `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":7}`,
		"grant_types string":    `{"redirect_uris":["https://ok.example/cb"],"grant_types":"authorization_code"}`,
		"scope array":           `{"redirect_uris":["https://ok.example/cb"],"scope":["openid"]}`,
		"deep nesting":          `{"redirect_uris":` + deep + `}`, "deep unknown field": `{"x":` + strings.Repeat(`{"a":`, 12000) + `1` + strings.Repeat(`}`, 12000) + `,"redirect_uris":["https://ok.example/cb"]}`,
		"trailing garbage": `{"redirect_uris":["https://ok.example/cb"]} x`, "two objects": `{"redirect_uris":["https://ok.example/cb"]}{}`,
		"trailing brace": `{"redirect_uris":["https://ok.example/cb"]}}`, "trailing bracket": `{"redirect_uris":["https://ok.example/cb"]} ]`,
		"comment": `{/*x*/"redirect_uris":["https://ok.example/cb"]}`, "single quotes": `{'redirect_uris':['https://ok.example/cb']}`,
		"trailing comma": `{"redirect_uris":["https://ok.example/cb"],}`, "NaN": `{"redirect_uris":["https://ok.example/cb"],"x":NaN}`,
		"private_key_jwt":     `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		"unknown auth method": `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":"tls_client_auth"}`,
		"client_credentials":  `{"redirect_uris":["https://ok.example/cb"],"grant_types":["client_credentials"]}`,
		"implicit":            `{"redirect_uris":["https://ok.example/cb"],"grant_types":["implicit"],"response_types":["token"]}`,
		"refresh only":        `{"redirect_uris":["https://ok.example/cb"],"grant_types":["refresh_token"]}`,
		"response type token": `{"redirect_uris":["https://ok.example/cb"],"response_types":["token"]}`,
		"21 redirect URIs":    `{"redirect_uris":[` + strings.TrimSuffix(strings.Repeat(`"https://ok.example/cb",`, 21), ",") + `]}`,
		"long redirect URI":   `{"redirect_uris":["https://ok.example/` + strings.Repeat("a", 2100) + `"]}`,
		"javascript logo":     `{"redirect_uris":["https://ok.example/cb"],"logo_uri":"javascript:alert(1)"}`,
		"http client_uri":     `{"redirect_uris":["https://ok.example/cb"],"client_uri":"http://ok.example"}`,
		"long client_name":    `{"redirect_uris":["https://ok.example/cb"],"client_name":"` + strings.Repeat("n", 201) + `"}`,
	} {
		add(badCase{name: "register " + what, method: "POST", target: "/register", header: badJSON, body: []byte(b), want: []int{400, 413}})
	}
	for _, u := range []string{"https://good.example@evil.example/cb", "https://ok.example/a/../cb", "https://ok.example/a/%2e%2e/cb", "HTTPS://ok.example/cb",
		"https://ok.example/cb#f", "javascript:alert(1)", "data:text/html,x", "https:\\\\ok.example\\cb", "http://ok.example/cb",
		"https://ok.example/c b", "https://ok.example/cb\r\n", "https://ok.example/é", "/cb", "", "https:///cb", "file:///etc/passwd",
		"http://127.0.0.1.evil.example/cb", "ftp://ok.example/cb", "about:blank", "myapp:"} {
		b, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://ok.example/fine", u}})
		add(badCase{name: "register redirect " + u, method: "POST", target: "/register", header: badJSON, body: b, want: []int{400}})
	}
}

// Bad client authentication headers.
func (f *badFixture) clientAuth(add func(badCase)) {
	for what, h := range map[string]string{
		"Basic alone": "Basic", "Basic space": "Basic ", "Basic not base64": "Basic !!!", "Basic no colon": "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
		"Basic empty id": badBasic("", f.conf.Secret), "Basic bad escape": badBasic("%zz", "%zz"), "Basic unknown client": badBasic("mcp_nobody", "secret"),
		"Basic wrong secret": badBasic(f.conf.ID, "wrong"), "Basic empty secret": badBasic(f.conf.ID, ""), "Basic secret of another client": badBasic(f.pub.ID, f.conf.Secret),
		"basic lowercase wrong": "basic " + base64.StdEncoding.EncodeToString([]byte(f.conf.ID+":nope")), "Basic NUL": badBasic(f.conf.ID+"\x00", f.conf.Secret),
		"Basic invalid UTF-8 id": badBasic("\xff\xfe", "x"), "Basic extra words": "Basic a b c", "Basic huge": "Basic " + strings.Repeat("QUFB", 4000),
		"Digest": `Digest username="x", realm="y"`, "Negotiate": "Negotiate YII=", "Bearer instead": "Bearer " + f.pub.AccessToken,
	} {
		for path, b := range map[string]string{"/token": "grant_type=authorization_code&code=x&code_verifier=" + f.pkce.Verifier,
			"/revoke": "token=x", "/introspect": "token=x"} {
			add(badCase{name: what + " " + path, method: "POST", target: path, header: badForm("Authorization", h), body: []byte(b), want: []int{400, 401}})
		}
	}
	add(badCase{name: "Basic plus client_secret /token", method: "POST", target: "/token", header: badForm("Authorization", badBasic(f.conf.ID, f.conf.Secret)),
		body: []byte("grant_type=authorization_code&code=x&code_verifier=" + f.pkce.Verifier + "&client_secret=" + f.conf.Secret), want: []int{400}})
	add(badCase{name: "Basic id differs from client_id /token", method: "POST", target: "/token", header: badForm("Authorization", badBasic(f.conf.ID, f.conf.Secret)),
		body: []byte("grant_type=authorization_code&code=x&code_verifier=" + f.pkce.Verifier + "&client_id=" + f.pub.ID), want: []int{401}})
	add(badCase{name: "introspect as public client", method: "POST", target: "/introspect", header: badForm(), body: []byte("token=x&client_id=" + f.pub.ID), want: []int{401}})
	add(badCase{name: "revoke unsupported hint", method: "POST", target: "/revoke", header: badForm(), body: []byte("token=x&token_type_hint=id_token&client_id=" + f.pub.ID), want: []int{400}})
	add(badCase{name: "revoke without token", method: "POST", target: "/revoke", header: badForm(), body: []byte("client_id=" + f.pub.ID), want: []int{400}})
	add(badCase{name: "introspect without token", method: "POST", target: "/introspect", header: badForm("Authorization", badBasic(f.conf.ID, f.conf.Secret)), body: []byte("x=1"), want: []int{400}})
}

// Bad bearer headers, Origin and Host at /mcp.
func (f *badFixture) mcpBearer(add func(badCase)) {
	parts := strings.Split(f.pub.AccessToken, ".")
	flip := func(s string) string {
		b := []byte(s)
		b[len(b)/2] ^= 1
		return string(b)
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	hsHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`))
	for what, h := range map[string]string{
		"Bearer alone": "Bearer", "Bearer space": "Bearer ", "Bearer junk": "Bearer x", "bearer junk": "bearer garbage.garbage.garbage",
		"refresh token": "Bearer " + f.pub.RefreshToken, "appended byte": "Bearer " + f.pub.AccessToken + "x", "tampered payload": "Bearer " + parts[0] + "." + flip(parts[1]) + "." + parts[2],
		"tampered signature": "Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2]), "alg none": "Bearer " + noneHeader + "." + parts[1] + ".",
		"alg HS256": "Bearer " + hsHeader + "." + parts[1] + "." + parts[2], "no signature": "Bearer " + parts[0] + "." + parts[1],
		"Basic": badBasic(f.pub.ID, "x"), "two words": "Bearer a b", "huge": "Bearer " + strings.Repeat("a", 20000),
		"Clerk-shaped token": "Bearer oat_" + strings.Repeat("A", 40), "registration token": "Bearer " + f.conf.RegistrationToken,
		"client secret": "Bearer " + f.conf.Secret, "tab separator": "Bearer\t" + f.pub.AccessToken, "DPoP scheme": "DPoP " + f.pub.AccessToken,
		"token68 padding": "Bearer " + f.pub.AccessToken + "==", "unicode": "Bearer ééé",
	} {
		for _, m := range []string{"POST", "GET", "DELETE"} {
			add(badCase{name: "mcp " + what + " " + m, method: m, target: "/mcp", want: []int{401},
				header: http.Header{"Authorization": {h}, "Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}},
				body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
		}
	}
	add(badCase{name: "mcp two Authorization headers", method: "POST", target: "/mcp", want: []int{401},
		header: http.Header{"Authorization": {"Bearer x", "Bearer " + f.pub.AccessToken}, "Content-Type": {"application/json"}}, body: []byte(`{}`)})
	add(badCase{name: "mcp access_token query parameter", method: "POST", target: "/mcp?access_token=" + f.pub.AccessToken, want: []int{401},
		header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	for _, o := range []string{"https://evil.example", "null", "http://localhost", f.e.BaseURL + ".evil.example", strings.Replace(f.e.BaseURL, "http:", "https:", 1), "file://"} {
		add(badCase{name: "mcp Origin " + o, method: "POST", target: "/mcp", want: []int{403},
			header: http.Header{"Authorization": {"Bearer " + f.pub.AccessToken}, "Origin": {o}, "Content-Type": {"application/json"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}
	port := f.e.BaseURL[strings.LastIndex(f.e.BaseURL, ":"):]
	for _, h := range []string{"evil.example", "localhost" + port, "evil.example" + port, "127.0.0.2" + port, "127.0.0.1:1"} {
		add(badCase{name: "mcp Host " + h, method: "POST", target: "/mcp", host: h, want: []int{403},
			header: http.Header{"Authorization": {"Bearer " + f.pub.AccessToken}, "Content-Type": {"application/json"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}
}

// Consent, callback and RFC 7592 with bad values.
func (f *badFixture) consentCallbackRegistration(add func(badCase)) {
	for what, q := range map[string]string{"no txn": "", "unknown txn": "txn=" + strings.Repeat("t", 43), "long txn": "txn=" + strings.Repeat("t", 300)} {
		add(badCase{name: "consent page " + what, method: "GET", target: "/consent?" + q, want: []int{400}})
	}
	for what, c := range map[string]struct{ body, cookie string }{
		"no cookie":    {"txn=" + strings.Repeat("t", 43) + "&csrf_token=x&action=approve", ""},
		"wrong csrf":   {"txn=" + strings.Repeat("t", 43) + "&csrf_token=x&action=approve", "cmp_csrf=" + strings.Repeat("n", 43)},
		"no action":    {"txn=" + strings.Repeat("t", 43) + "&csrf_token=x", "cmp_csrf=" + strings.Repeat("n", 43)},
		"no txn":       {"csrf_token=x&action=approve", "cmp_csrf=" + strings.Repeat("n", 43)},
		"action maybe": {"txn=a&csrf_token=x&action=maybe", "cmp_csrf=" + strings.Repeat("n", 43)},
		"empty":        {"", ""},
		"malformed":    {"txn=%zz", ""},
	} {
		h := badForm()
		if c.cookie != "" {
			h.Set("Cookie", c.cookie)
		}
		add(badCase{name: "consent decision " + what, method: "POST", target: "/consent", header: h, body: []byte(c.body), want: []int{400, 403}})
	}
	for what, q := range map[string]string{"empty": "", "no state": "code=x", "unknown state": "code=x&state=" + strings.Repeat("s", 43),
		"long state": "code=x&state=" + strings.Repeat("s", 300), "error without state": "error=access_denied",
		"error unknown state": "error=access_denied&state=" + strings.Repeat("s", 43), "malformed": "state=%zz"} {
		add(badCase{name: "callback " + what, method: "GET", target: "/oauth/callback?" + q, want: []int{400}})
	}
	for what, c := range map[string]struct{ path, auth string }{
		"no token": {"/register/" + f.conf.ID, ""}, "wrong token": {"/register/" + f.conf.ID, "Bearer " + strings.Repeat("w", 43)},
		"Basic": {"/register/" + f.conf.ID, badBasic(f.conf.ID, f.conf.Secret)}, "client secret as token": {"/register/" + f.conf.ID, "Bearer " + f.conf.Secret},
		"unknown client": {"/register/mcp_nobody", "Bearer " + f.conf.RegistrationToken}, "other client": {"/register/" + f.pub.ID, "Bearer " + f.conf.RegistrationToken},
		"NUL id": {"/register/%00", "Bearer " + f.conf.RegistrationToken}, "long id": {"/register/" + strings.Repeat("i", 3000), "Bearer " + f.conf.RegistrationToken},
	} {
		for _, m := range []string{"GET", "DELETE"} {
			h := http.Header{}
			if c.auth != "" {
				h.Set("Authorization", c.auth)
			}
			add(badCase{name: "RFC 7592 " + what + " " + m, method: m, target: c.path, header: h, want: []int{401}})
		}
	}
	for _, p := range []string{"/.well-known/unknown", "/.well-known/oauth-authorization-server/extra", "/.well-known/openid-configuration/x", "/admin", "/token/x", "/authorize/x"} {
		add(badCase{name: "unknown path " + p, method: "GET", target: p, want: []int{404, 405}})
	}
}

// badCountKeys counts the keys of one family under the environment's prefix.
func badCountKeys(t *testing.T, e *e2etest.Env, family string) int {
	t.Helper()
	ctx := context.Background()
	keys, err := e.Redis.Client(t).Keys(ctx, e.Prefix+family+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestRefusedRefreshChangesNothing: a refresh request that is refused for
// its parameters (a widening scope, RFC 6749 §6 invalid_scope; a malformed
// scope) rotates nothing. The presented token stays current, so using it
// after the grace window is a normal refresh, not a replay that would read
// as reuse and revoke the grant.
func TestRefusedRefreshChangesNothing(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{Now: clock.Now})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	for _, scope := range []string{"openid admin:all", "offline_access email admin", "openid\u0000"} {
		st, out := e.Token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}, "scope": {scope}})
		if st != http.StatusBadRequest || (out["error"] != "invalid_scope" && out["error"] != "invalid_request") {
			t.Fatalf("scope %q: %d %v", scope, st, out)
		}
	}
	clock.Advance(5 * time.Minute) // well past REFRESH_GRACE
	st, out := e.Refresh(c, c.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("the token of a refused refresh no longer works: %d %v", st, out)
	}
	if r := e.MCP(out["access_token"].(string), "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"}}); r.Status != http.StatusOK {
		t.Fatalf("access token after the refused refreshes: %d", r.Status)
	}
}
