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

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testflow"
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
	cases     int
	fivexx    int
	byStatus  map[int]int
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

func (r *badRunner) run(t *testing.T, c badCase) {
	t.Helper()
	r.cases++
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
	r.byStatus[status]++
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s %s -> %d: %s\n  body: %.300s", c.name, c.method, badTruncate(c.target, 200), status, fmt.Sprintf(format, args...), raw)
	}
	path := strings.SplitN(c.target, "?", 2)[0]
	loc := resp.Header.Get("Location")
	switch {
	case status >= 500:
		r.fivexx++
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

func TestMalformedRequests(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{})
	const httpsRedirect = "https://client.example/cb"
	pub := e.Register("http://127.0.0.1:7777/callback", httpsRedirect)
	e.Login(pub, testflow.Choices{})
	// A confidential client for the Basic-authentication cases.
	regBody := `{"client_name":"bad input","redirect_uris":["https://conf.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`
	resp, err := http.Post(e.BaseURL+"/register", "application/json", strings.NewReader(regBody))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		ID       string `json:"client_id"`
		Secret   string `json:"client_secret"`
		RegToken string `json:"registration_access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if conf.Secret == "" {
		t.Fatalf("confidential registration: %d", resp.StatusCode)
	}

	r := &badRunner{e: e, redirects: []string{"http://127.0.0.1:7777/callback", httpsRedirect}, byStatus: map[int]int{},
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	form := func(v ...string) http.Header {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for i := 0; i+1 < len(v); i += 2 {
			h.Set(v[i], v[i+1])
		}
		return h
	}
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	pkce := e2etest.NewPKCE()
	// A valid authorization request; cases change one thing.
	authQ := func(set map[string]string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {pub.ID}, "redirect_uri": {httpsRedirect},
			"code_challenge": {pkce.Challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"},
			"resource": {e.BaseURL + "/mcp"}, "scope": {"openid"}}
		for k, v := range set {
			if v == "\x00delete" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
		}
		return q.Encode()
	}
	var cases []badCase
	group := ""
	groups := map[string]int{} // cases per section, for the log
	add := func(c badCase) { cases = append(cases, c); groups[group]++ }

	// 1. Wrong methods on every endpoint.
	group = "wrong methods"
	endpoints := map[string][]string{
		"/.well-known/oauth-authorization-server": {"GET"}, "/.well-known/openid-configuration": {"GET"},
		"/.well-known/jwks.json": {"GET"}, "/.well-known/oauth-protected-resource": {"GET"},
		"/.well-known/oauth-protected-resource/mcp": {"GET"}, "/register": {"POST"},
		"/register/" + conf.ID: {"GET", "DELETE"}, "/authorize": {"GET", "POST"}, "/consent": {"GET", "POST"},
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
			header: http.Header{"Authorization": {"Bearer " + pub.AccessToken}}})
	}

	// 2. Wrong or missing content types.
	group = "content types"
	formBodies := map[string]string{
		"/token":      "grant_type=authorization_code&code=x&code_verifier=" + pkce.Verifier + "&client_id=" + pub.ID,
		"/revoke":     "token=x&client_id=" + pub.ID,
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
			header: http.Header{"Authorization": {"Bearer " + pub.AccessToken}, "Content-Type": {ct}, "Accept": {"application/json, text/event-stream"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}

	// 3. Bodies over 1 MiB (with and without a Content-Length).
	group = "bodies over 1 MiB"
	huge := bytes.Repeat([]byte("a"), 3<<19) // 1.5 MiB
	for _, chunked := range []bool{false, true} {
		sfx := map[bool]string{false: " (length)", true: " (chunked)"}[chunked]
		for _, path := range []string{"/token", "/revoke", "/introspect", "/consent"} {
			add(badCase{name: "huge body " + path + sfx, method: "POST", target: path, header: form(), chunked: chunked,
				body: append([]byte("x="), huge...), want: []int{http.StatusRequestEntityTooLarge}})
		}
		add(badCase{name: "huge body /authorize" + sfx, method: "POST", target: "/authorize", header: form(), chunked: chunked,
			body: append([]byte("x="), huge...), want: []int{400, 413}})
		add(badCase{name: "huge body /register" + sfx, method: "POST", target: "/register", header: jsonHdr, chunked: chunked,
			body: append(append([]byte(`{"redirect_uris":["https://ok.example/cb"],"client_name":"`), huge...), `"}`...),
			want: []int{http.StatusRequestEntityTooLarge}})
		add(badCase{name: "huge body /mcp" + sfx, method: "POST", target: "/mcp", chunked: chunked,
			header: http.Header{"Authorization": {"Bearer " + pub.AccessToken}, "Content-Type": {"application/json"}},
			body:   append(append([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"`), bytes.Repeat(huge, 3)...), `"}}`...),
			want:   []int{http.StatusRequestEntityTooLarge}})
		add(badCase{name: "huge body /mcp without token" + sfx, method: "POST", target: "/mcp", chunked: chunked,
			header: http.Header{"Content-Type": {"application/json"}}, body: huge, want: []int{http.StatusUnauthorized}})
	}

	// 4. Repeated parameters (RFC 6749 §3.1), same and different values.
	group = "repeated parameters"
	authParams := []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope", "resource"}
	for _, p := range authParams {
		base, _ := url.ParseQuery(authQ(nil))
		for _, second := range []string{base.Get(p), "other"} {
			q := authQ(nil) + "&" + url.Values{p: {second}}.Encode()
			add(badCase{name: "repeated " + p + "=" + second + " /authorize", method: "GET", target: "/authorize?" + q, want: []int{400}})
		}
	}
	add(badCase{name: "repeated state POST /authorize", method: "POST", target: "/authorize", header: form(), body: []byte(authQ(nil) + "&state=x"), want: []int{400}})
	tokenForm := url.Values{"grant_type": {"authorization_code"}, "code": {"abc"}, "code_verifier": {pkce.Verifier},
		"client_id": {pub.ID}, "redirect_uri": {httpsRedirect}, "resource": {e.BaseURL + "/mcp"}}
	for _, p := range []string{"grant_type", "code", "code_verifier", "client_id", "redirect_uri", "resource", "scope", "refresh_token", "client_secret"} {
		for _, second := range []string{tokenForm.Get(p), "other"} {
			if second == "" {
				second = "x"
			}
			add(badCase{name: "repeated " + p + " /token", method: "POST", target: "/token", header: form(),
				body: []byte(tokenForm.Encode() + "&" + url.Values{p: {second}}.Encode() + "&" + url.Values{p: {second}}.Encode()), want: []int{400}})
		}
	}
	for path, b := range map[string]string{"/revoke": "token=abc&client_id=" + pub.ID, "/introspect": "token=abc"} {
		for _, p := range []string{"token", "token_type_hint", "client_id"} {
			add(badCase{name: "repeated " + p + " " + path, method: "POST", target: path, header: form("Authorization", basic(conf.ID, conf.Secret)),
				body: []byte(b + "&" + p + "=a&" + p + "=b"), want: []int{400}})
		}
	}
	for _, p := range []string{"txn", "csrf_token", "action"} {
		add(badCase{name: "repeated " + p + " /consent", method: "POST", target: "/consent", header: form(),
			body: []byte("txn=a&csrf_token=b&action=approve&" + p + "=c"), want: []int{400}})
	}
	for _, q := range []string{"state=a&state=a", "state=a&state=b&code=c", "state=a&code=b&code=b"} {
		add(badCase{name: "repeated " + q + " /oauth/callback", method: "GET", target: "/oauth/callback?" + q, want: []int{400}})
	}

	// 5. Invalid UTF-8 and control characters (CR/LF header injection).
	group = "invalid UTF-8 and control characters"
	bad := map[string]string{"invalid UTF-8": "%ff%fe", "overlong UTF-8": "%c0%af", "CRLF": "a%0d%0aX-Injected:%201",
		"LF Set-Cookie": "a%0aSet-Cookie:%20injected=1", "CR": "a%0db", "NUL": "a%00b", "BEL": "%07", "DEL": "%7f", "surrogate": "%ed%a0%80"}
	for what, v := range bad {
		for _, p := range []string{"state", "client_id", "redirect_uri", "code_challenge", "scope"} {
			add(badCase{name: what + " in " + p + " /authorize", method: "GET",
				target: "/authorize?" + authQ(map[string]string{p: "\x00delete"}) + "&" + p + "=" + v, want: []int{400}})
		}
		for _, p := range []string{"code", "client_id", "code_verifier"} {
			f := url.Values{}
			for k, vv := range tokenForm {
				if k != p {
					f[k] = vv
				}
			}
			add(badCase{name: what + " in " + p + " /token", method: "POST", target: "/token", header: form(),
				body: []byte(f.Encode() + "&" + p + "=" + v), want: []int{400, 401}})
		}
		add(badCase{name: what + " in state /oauth/callback", method: "GET", target: "/oauth/callback?code=x&state=" + v, want: []int{400}})
		add(badCase{name: what + " in txn /consent", method: "GET", target: "/consent?txn=" + v, want: []int{400}})
		add(badCase{name: what + " in token /revoke", method: "POST", target: "/revoke", header: form(), body: []byte("client_id=" + pub.ID + "&token=" + v), want: []int{400}})
	}
	for _, b := range []string{"{\"redirect_uris\":[\"https://ok.example/cb\"],\"client_name\":\"\xff\xfe\"}",
		"{\"redirect_uris\":[\"https://ok.example/\xc0\xafcb\"]}", "\xef\xbb\xbf{\"redirect_uris\":[\"https://ok.example/cb\"]}",
		"\xff\xfe{\x00\"\x00}\x00"} {
		add(badCase{name: fmt.Sprintf("bad UTF-8 JSON %q", badTruncate(b, 40)), method: "POST", target: "/register", header: jsonHdr, body: []byte(b), want: []int{400}})
	}

	// 6. redirect_uri tricks against a client that registered
	// http://127.0.0.1:7777/callback and https://client.example/cb.
	group = "redirect_uri tricks"
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
			q := authQ(map[string]string{"redirect_uri": tr})
			c := badCase{name: "redirect trick " + tr + " " + m, method: m, target: "/authorize?" + q, want: []int{400}}
			if m == "POST" {
				c.target, c.header, c.body = "/authorize", form(), []byte(q)
			}
			add(c)
		}
	}
	for _, id := range []string{"mcp_unknown", "", conf.ID, "https://client.example/metadata.json", strings.Repeat("a", 3000)} {
		add(badCase{name: "redirect to " + httpsRedirect + " for client " + badTruncate(id, 30), method: "GET",
			target: "/authorize?" + authQ(map[string]string{"client_id": id}), want: []int{400}})
	}
	add(badCase{name: "no redirect_uri with two registered", method: "GET", target: "/authorize?" + authQ(map[string]string{"redirect_uri": "\x00delete"}), want: []int{400}})

	// 7. Bad PKCE and response types: errors sent back to the registered URI.
	group = "bad PKCE, response types, resource, scope"
	for what, set := range map[string]map[string]string{
		"no challenge":          {"code_challenge": "\x00delete"},
		"no challenge, S256":    {"code_challenge": ""},
		"no method":             {"code_challenge_method": "\x00delete"},
		"plain":                 {"code_challenge_method": "plain"},
		"lowercase s256":        {"code_challenge_method": "s256"},
		"SHA256":                {"code_challenge_method": "SHA256"},
		"S256 with space":       {"code_challenge_method": "S256 "},
		"42 chars":              {"code_challenge": pkce.Challenge[:42]},
		"44 chars":              {"code_challenge": pkce.Challenge + "A"},
		"128 chars":             {"code_challenge": strings.Repeat("a", 128)},
		"base64 std alphabet":   {"code_challenge": strings.Repeat("+/", 21) + "A"},
		"padding":               {"code_challenge": pkce.Challenge[:42] + "="},
		"spaces":                {"code_challenge": pkce.Challenge[:40] + "   "},
		"response_type token":   {"response_type": "token"},
		"response_type id":      {"response_type": "id_token"},
		"response_type hybrid":  {"response_type": "code token"},
		"response_type CODE":    {"response_type": "CODE"},
		"response_type none":    {"response_type": "none"},
		"no response_type":      {"response_type": "\x00delete"},
		"unknown scope":         {"scope": "openid admin:all"},
		"foreign resource":      {"resource": "https://evil.example/mcp"},
		"resource fragment":     {"resource": e.BaseURL + "/mcp#x"},
		"relative resource":     {"resource": "/mcp"},
		"resource other path":   {"resource": e.BaseURL + "/mcp-other"},
		"prompt none":           {"prompt": "none"},
		"state over 1024 bytes": {"state": strings.Repeat("s", 1100)},
	} {
		// To a loopback redirect URI (an app on the user's machine) the error
		// goes back by itself; to an https one the client registered for
		// itself, only through a link on a local page (RFC 9700 §4.11.2).
		add(badCase{name: "authorize " + what, method: "GET", target: "/authorize?" + authQ(set), want: []int{400}})
		loopback := maps.Clone(set)
		loopback["redirect_uri"] = "http://127.0.0.1:7777/callback"
		add(badCase{name: "authorize (loopback) " + what, method: "GET", target: "/authorize?" + authQ(loopback), want: []int{302}, redirect: true})
	}

	// 8. Bad token requests: grant types, verifiers, missing parameters.
	group = "bad token requests"
	for _, g := range []string{"password", "client_credentials", "implicit", "token", "urn:ietf:params:oauth:grant-type:device_code",
		"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange", "AUTHORIZATION_CODE",
		"authorization_code ", "refresh_token\t", ""} {
		add(badCase{name: "grant_type " + g, method: "POST", target: "/token", header: form(),
			body: []byte(url.Values{"grant_type": {g}, "client_id": {pub.ID}, "code": {"x"}, "code_verifier": {pkce.Verifier}}.Encode()), want: []int{400}})
	}
	for what, v := range map[string]string{"42 chars": pkce.Verifier[:42], "129 chars": strings.Repeat("a", 129), "invalid chars": strings.Repeat("a", 42) + "!",
		"empty": "", "spaces": strings.Repeat("a ", 25), "unicode": strings.Repeat("é", 43)} {
		add(badCase{name: "code_verifier " + what, method: "POST", target: "/token", header: form(),
			body: []byte(url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code": {"x"}, "code_verifier": {v}}.Encode()), want: []int{400}})
	}
	for what, v := range map[string]url.Values{
		"no code":                  {"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code_verifier": {pkce.Verifier}},
		"unknown code":             {"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code": {strings.Repeat("c", 43)}, "code_verifier": {pkce.Verifier}},
		"no refresh_token":         {"grant_type": {"refresh_token"}, "client_id": {pub.ID}},
		"garbage refresh_token":    {"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {"garbage"}},
		"forged refresh_token":     {"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {strings.Repeat("g", 22) + "." + strings.Repeat("s", 43)}},
		"access token as refresh":  {"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {pub.AccessToken}},
		"another client's refresh": {"grant_type": {"refresh_token"}, "refresh_token": {pub.RefreshToken}, "client_id": {conf.ID}, "client_secret": {conf.Secret}},
		"widening scope":           {"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {"x"}, "scope": {"openid admin"}},
		"no client":                {"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {pkce.Verifier}},
		"unknown client":           {"grant_type": {"authorization_code"}, "client_id": {"mcp_nobody"}, "code": {"x"}, "code_verifier": {pkce.Verifier}},
		"public with secret":       {"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "client_secret": {"s"}, "code": {"x"}, "code_verifier": {pkce.Verifier}},
		"basic client via post":    {"grant_type": {"authorization_code"}, "client_id": {conf.ID}, "client_secret": {conf.Secret}, "code": {"x"}, "code_verifier": {pkce.Verifier}},
		"empty body":               {},
	} {
		add(badCase{name: "token " + what, method: "POST", target: "/token", header: form(), body: []byte(v.Encode()), want: []int{400, 401}})
	}
	add(badCase{name: "token query instead of body", method: "POST", target: "/token?" + tokenForm.Encode(), header: form(), body: []byte(""), want: []int{400, 401}})
	add(badCase{name: "token malformed form", method: "POST", target: "/token", header: form(), body: []byte("grant_type=%zz&client_id=" + pub.ID), want: []int{400}})

	// 9. Malformed registration JSON.
	group = "malformed registrations"
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
		add(badCase{name: "register " + what, method: "POST", target: "/register", header: jsonHdr, body: []byte(b), want: []int{400, 413}})
	}
	for _, u := range []string{"https://good.example@evil.example/cb", "https://ok.example/a/../cb", "https://ok.example/a/%2e%2e/cb", "HTTPS://ok.example/cb",
		"https://ok.example/cb#f", "javascript:alert(1)", "data:text/html,x", "https:\\\\ok.example\\cb", "http://ok.example/cb",
		"https://ok.example/c b", "https://ok.example/cb\r\n", "https://ok.example/é", "/cb", "", "https:///cb", "file:///etc/passwd",
		"http://127.0.0.1.evil.example/cb", "ftp://ok.example/cb", "about:blank", "myapp:"} {
		b, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://ok.example/fine", u}})
		add(badCase{name: "register redirect " + u, method: "POST", target: "/register", header: jsonHdr, body: b, want: []int{400}})
	}

	// 10. Bad client authentication headers.
	group = "bad client authentication"
	for what, h := range map[string]string{
		"Basic alone": "Basic", "Basic space": "Basic ", "Basic not base64": "Basic !!!", "Basic no colon": "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
		"Basic empty id": basic("", conf.Secret), "Basic bad escape": basic("%zz", "%zz"), "Basic unknown client": basic("mcp_nobody", "secret"),
		"Basic wrong secret": basic(conf.ID, "wrong"), "Basic empty secret": basic(conf.ID, ""), "Basic secret of another client": basic(pub.ID, conf.Secret),
		"basic lowercase wrong": "basic " + base64.StdEncoding.EncodeToString([]byte(conf.ID+":nope")), "Basic NUL": basic(conf.ID+"\x00", conf.Secret),
		"Basic invalid UTF-8 id": basic("\xff\xfe", "x"), "Basic extra words": "Basic a b c", "Basic huge": "Basic " + strings.Repeat("QUFB", 4000),
		"Digest": `Digest username="x", realm="y"`, "Negotiate": "Negotiate YII=", "Bearer instead": "Bearer " + pub.AccessToken,
	} {
		for path, b := range map[string]string{"/token": "grant_type=authorization_code&code=x&code_verifier=" + pkce.Verifier,
			"/revoke": "token=x", "/introspect": "token=x"} {
			add(badCase{name: what + " " + path, method: "POST", target: path, header: form("Authorization", h), body: []byte(b), want: []int{400, 401}})
		}
	}
	add(badCase{name: "Basic plus client_secret /token", method: "POST", target: "/token", header: form("Authorization", basic(conf.ID, conf.Secret)),
		body: []byte("grant_type=authorization_code&code=x&code_verifier=" + pkce.Verifier + "&client_secret=" + conf.Secret), want: []int{400}})
	add(badCase{name: "Basic id differs from client_id /token", method: "POST", target: "/token", header: form("Authorization", basic(conf.ID, conf.Secret)),
		body: []byte("grant_type=authorization_code&code=x&code_verifier=" + pkce.Verifier + "&client_id=" + pub.ID), want: []int{401}})
	add(badCase{name: "introspect as public client", method: "POST", target: "/introspect", header: form(), body: []byte("token=x&client_id=" + pub.ID), want: []int{401}})
	add(badCase{name: "revoke unsupported hint", method: "POST", target: "/revoke", header: form(), body: []byte("token=x&token_type_hint=id_token&client_id=" + pub.ID), want: []int{400}})
	add(badCase{name: "revoke without token", method: "POST", target: "/revoke", header: form(), body: []byte("client_id=" + pub.ID), want: []int{400}})
	add(badCase{name: "introspect without token", method: "POST", target: "/introspect", header: form("Authorization", basic(conf.ID, conf.Secret)), body: []byte("x=1"), want: []int{400}})

	// 11. Bad bearer headers, Origin and Host at /mcp.
	group = "bad bearer, Origin, Host at /mcp"
	parts := strings.Split(pub.AccessToken, ".")
	flip := func(s string) string {
		b := []byte(s)
		b[len(b)/2] ^= 1
		return string(b)
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	hsHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`))
	for what, h := range map[string]string{
		"Bearer alone": "Bearer", "Bearer space": "Bearer ", "Bearer junk": "Bearer x", "bearer junk": "bearer garbage.garbage.garbage",
		"refresh token": "Bearer " + pub.RefreshToken, "appended byte": "Bearer " + pub.AccessToken + "x", "tampered payload": "Bearer " + parts[0] + "." + flip(parts[1]) + "." + parts[2],
		"tampered signature": "Bearer " + parts[0] + "." + parts[1] + "." + flip(parts[2]), "alg none": "Bearer " + noneHeader + "." + parts[1] + ".",
		"alg HS256": "Bearer " + hsHeader + "." + parts[1] + "." + parts[2], "no signature": "Bearer " + parts[0] + "." + parts[1],
		"Basic": basic(pub.ID, "x"), "two words": "Bearer a b", "huge": "Bearer " + strings.Repeat("a", 20000),
		"Clerk-shaped token": "Bearer oat_" + strings.Repeat("A", 40), "registration token": "Bearer " + conf.RegToken,
		"client secret": "Bearer " + conf.Secret, "tab separator": "Bearer\t" + pub.AccessToken, "DPoP scheme": "DPoP " + pub.AccessToken,
		"token68 padding": "Bearer " + pub.AccessToken + "==", "unicode": "Bearer ééé",
	} {
		for _, m := range []string{"POST", "GET", "DELETE"} {
			add(badCase{name: "mcp " + what + " " + m, method: m, target: "/mcp", want: []int{401},
				header: http.Header{"Authorization": {h}, "Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}},
				body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
		}
	}
	add(badCase{name: "mcp two Authorization headers", method: "POST", target: "/mcp", want: []int{401},
		header: http.Header{"Authorization": {"Bearer x", "Bearer " + pub.AccessToken}, "Content-Type": {"application/json"}}, body: []byte(`{}`)})
	add(badCase{name: "mcp access_token query parameter", method: "POST", target: "/mcp?access_token=" + pub.AccessToken, want: []int{401},
		header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	for _, o := range []string{"https://evil.example", "null", "http://localhost", e.BaseURL + ".evil.example", strings.Replace(e.BaseURL, "http:", "https:", 1), "file://"} {
		add(badCase{name: "mcp Origin " + o, method: "POST", target: "/mcp", want: []int{403},
			header: http.Header{"Authorization": {"Bearer " + pub.AccessToken}, "Origin": {o}, "Content-Type": {"application/json"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}
	port := e.BaseURL[strings.LastIndex(e.BaseURL, ":"):]
	for _, h := range []string{"evil.example", "localhost" + port, "evil.example" + port, "127.0.0.2" + port, "127.0.0.1:1"} {
		add(badCase{name: "mcp Host " + h, method: "POST", target: "/mcp", host: h, want: []int{403},
			header: http.Header{"Authorization": {"Bearer " + pub.AccessToken}, "Content-Type": {"application/json"}},
			body:   []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	}

	// 12. Consent, callback and RFC 7592 with bad values.
	group = "consent, callback, RFC 7592, unknown paths"
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
		h := form()
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
		"no token": {"/register/" + conf.ID, ""}, "wrong token": {"/register/" + conf.ID, "Bearer " + strings.Repeat("w", 43)},
		"Basic": {"/register/" + conf.ID, basic(conf.ID, conf.Secret)}, "client secret as token": {"/register/" + conf.ID, "Bearer " + conf.Secret},
		"unknown client": {"/register/mcp_nobody", "Bearer " + conf.RegToken}, "other client": {"/register/" + pub.ID, "Bearer " + conf.RegToken},
		"NUL id": {"/register/%00", "Bearer " + conf.RegToken}, "long id": {"/register/" + strings.Repeat("i", 3000), "Bearer " + conf.RegToken},
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

	// Run everything against the one proxy; refused registrations store nothing.
	clientsBefore := badCountKeys(t, e, "client:")
	txnsBefore := badCountKeys(t, e, "ticket:txn:")
	for _, c := range cases {
		r.run(t, c)
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
	if st, _ := e.Refresh(pub, pub.RefreshToken); st != http.StatusOK {
		t.Errorf("refresh after the bad input: %d", st)
	}
	t.Logf("malformed requests: %d, 5xx answers: %d, statuses: %v", r.cases, r.fivexx, r.byStatus)
	t.Logf("cases per section: %v", groups)
	if r.cases < 300 {
		t.Fatalf("only %d cases", r.cases)
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
	var mu sync.Mutex
	var offset time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	e := e2etest.Start(t, e2etest.Options{Now: clock})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	for _, scope := range []string{"openid admin:all", "offline_access email admin", "openid\u0000"} {
		st, out := e.Token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}, "scope": {scope}})
		if st != http.StatusBadRequest || (out["error"] != "invalid_scope" && out["error"] != "invalid_request") {
			t.Fatalf("scope %q: %d %v", scope, st, out)
		}
	}
	mu.Lock()
	offset += 5 * time.Minute // well past REFRESH_GRACE
	mu.Unlock()
	st, out := e.Refresh(c, c.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("the token of a refused refresh no longer works: %d %v", st, out)
	}
	if r := e.MCP(out["access_token"].(string), "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"}}); r.Status != http.StatusOK {
		t.Fatalf("access token after the refused refreshes: %d", r.Status)
	}
}
