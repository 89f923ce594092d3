package proxy

// The fixture the handler tests run on: the authorization server on real
// HTTP (httptest) over the in-memory store, with the fake Clerk
// (internal/mockclerk) in-process behind the real Clerk client, and a
// cookie-keeping browser (internal/testutil/testflow) to walk consent and sign-in.
// Nothing here needs Redis, so every test runs in parallel.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/oauth2"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

// Credentials of the fake Clerk's one OAuth application (test data).
const (
	asClerkID     = "asClerkClient001"
	asClerkSecret = "as-clerk-secret-0123456789abcdef"
	asSecret      = "as-proxy-secret-0123456789abcdef0123456789"
	asRedirect    = "http://127.0.0.1:7777/callback"
	asState       = "client-state-1234"
)

// asEnv is one authorization server with its store, fake Clerk and clock.
type asEnv struct {
	s     *Server
	st    *grantLog
	clerk *mockclerk.Server
	clock *testclock.Clock
	url   string // BASE_URL: the issuer
	// clerkAuthorize is the fake Clerk's authorization endpoint, where
	// consent sends the browser.
	clerkAuthorize string
}

// newAS starts an authorization server; opts adjust its Config and Deps
// before New.
func newAS(t *testing.T, opts ...func(*Config, *Deps)) *asEnv {
	t.Helper()
	ckSrv := httptest.NewUnstartedServer(nil)
	asSrv := httptest.NewUnstartedServer(nil)
	base, ckURL := "http://"+asSrv.Listener.Addr().String(), "http://"+ckSrv.Listener.Addr().String()
	fake, err := mockclerk.New(mockclerk.Config{Issuer: ckURL, ClientID: asClerkID, ClientSecret: asClerkSecret,
		RedirectURIs: []string{base + "/oauth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	ckSrv.Config.Handler = fake
	ckSrv.Start()
	t.Cleanup(ckSrv.Close)

	clock := testclock.New(time.Now())
	st := &grantLog{Store: memstore.New(memstore.Options{Now: clock.Now})}
	t.Cleanup(func() { _ = st.Close() })
	keys, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	ck := clerk.New(context.Background(), clerk.Config{Issuer: ckURL, ClientID: asClerkID, ClientSecret: asClerkSecret,
		RedirectURL: base + "/oauth/callback", Scopes: []string{"openid", "profile", "email", "offline_access"}})
	cfg := Config{Issuer: base, Resource: base + "/mcp", Scopes: []string{"openid", "profile", "email"},
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, RefreshGrace: time.Minute, ClientIdleTTL: time.Hour}
	deps := Deps{Store: st, Clerk: ck, Keys: keys, Secret: []byte(asSecret), Now: clock.Now}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	s.Mount(r)
	asSrv.Config.Handler = r
	asSrv.Start()
	t.Cleanup(asSrv.Close)
	return &asEnv{s: s, st: st, clerk: fake, clock: clock, url: base, clerkAuthorize: ck.Endpoints().Authorize}
}

// grantLog is the in-memory store, remembering which grants were created
// so that tests can find them (the store has no listing).
type grantLog struct {
	*memstore.Store
	mu  sync.Mutex
	ids []string
}

func (l *grantLog) CreateGrant(ctx context.Context, g store.Grant, ttl time.Duration) error {
	err := l.Store.CreateGrant(ctx, g, ttl)
	if err == nil {
		l.mu.Lock()
		l.ids = append(l.ids, g.ID)
		l.mu.Unlock()
	}
	return err
}

// grants are the stored grants of clientID.
func (l *grantLog) grants(t *testing.T, clientID string) []store.Grant {
	t.Helper()
	l.mu.Lock()
	ids := slices.Clone(l.ids)
	l.mu.Unlock()
	var out []store.Grant
	for _, id := range ids {
		g, err := l.GetGrant(context.Background(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err == nil && g.ClientID == clientID {
			out = append(out, g)
		}
	}
	return out
}

// asClient is a registered client as the client itself knows it.
type asClient struct {
	ID, Secret, Method, RedirectURI, RegistrationToken string
}

// register runs RFC 7591 registration with meta (redirect_uris defaults to
// asRedirect, token_endpoint_auth_method to none).
func (e *asEnv) register(t *testing.T, meta map[string]any) asClient {
	t.Helper()
	if meta == nil {
		meta = map[string]any{}
	}
	if _, ok := meta["redirect_uris"]; !ok {
		meta["redirect_uris"] = []string{asRedirect}
	}
	if _, ok := meta["token_endpoint_auth_method"]; !ok {
		meta["token_endpoint_auth_method"] = authNone
	}
	status, out := e.registerRaw(t, meta)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, out)
	}
	c := asClient{Method: out["token_endpoint_auth_method"].(string), RedirectURI: out["redirect_uris"].([]any)[0].(string)}
	c.ID, _ = out["client_id"].(string)
	c.Secret, _ = out["client_secret"].(string)
	c.RegistrationToken, _ = out["registration_access_token"].(string)
	return c
}

// registerRaw posts a registration body and decodes the answer.
func (e *asEnv) registerRaw(t *testing.T, meta any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(meta)
	resp := e.do(t, http.MethodPost, "/register", http.Header{"Content-Type": {"application/json"}}, body)
	return resp.StatusCode, decode(t, resp)
}

// do sends one request and never follows redirects; the body is read and
// kept for decode.
func (e *asEnv) do(t *testing.T, method, path string, h http.Header, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

// inBrowser sends, from browser b with its cookies, a GET of path (form
// nil) or a POST of form to it; redirects are not followed.
func (e *asEnv) inBrowser(t *testing.T, b *testflow.Browser, path string, form url.Values) *http.Response {
	t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = b.HTTP.Get(e.url + path)
	} else {
		resp, err = b.HTTP.PostForm(e.url+path, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	bodyOf(resp)
	return resp
}

// decode reads a JSON object answer (empty for any other body).
func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	out := map[string]any{}
	_ = json.Unmarshal([]byte(bodyOf(resp)), &out)
	return out
}

// bodyOf is the body of an answer from do, which may be read again.
func bodyOf(resp *http.Response) string {
	raw, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return string(raw)
}

// post sends form to path authenticated as c by its registered method (a
// public client names itself with client_id).
func (e *asEnv) post(t *testing.T, path string, c asClient, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	form = cloneValues(form)
	switch c.Method {
	case authBasic:
		h.Set("Authorization", basicAuth(c.ID, c.Secret))
	case authPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	default:
		form.Set("client_id", c.ID)
	}
	resp := e.do(t, http.MethodPost, path, h, []byte(form.Encode()))
	return resp, decode(t, resp)
}

// basicAuth is an HTTP Basic header as RFC 6749 §2.3.1 builds it: id and
// secret form-urlencoded first.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// pkce is a code verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := oauth2.GenerateVerifier()
	return pkce{verifier: v, challenge: oauth2.S256ChallengeFromVerifier(v)}
}

// authorizeQuery is a valid authorization request for c; extra overrides
// (a nil value removes the parameter).
func (e *asEnv) authorizeQuery(c asClient, p pkce, extra url.Values) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURI},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "state": {asState}, "resource": {e.url + "/mcp"}}
	for k, v := range extra {
		if v == nil {
			q.Del(k)
			continue
		}
		q[k] = v
	}
	return q
}

// browse walks a fresh browser from an authorization request for c until
// it is sent to a URL starting with stopAt, and returns that URL.
func (e *asEnv) browse(t *testing.T, b *testflow.Browser, c asClient, p pkce, stopAt string, choices testflow.Choices) *url.URL {
	t.Helper()
	u, err := b.Authorize(context.Background(), e.url+"/authorize?"+e.authorizeQuery(c, p, nil).Encode(), stopAt, choices)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return u
}

// code runs authorization, consent and Clerk sign-in for c and returns the
// authorization code the client receives.
func (e *asEnv) code(t *testing.T, c asClient, p pkce) string {
	t.Helper()
	u := e.browse(t, testflow.NewBrowser(), c, p, c.RedirectURI, testflow.Choices{})
	q := u.Query()
	if q.Get("code") == "" || q.Get("state") != asState || q.Get("iss") != e.url {
		t.Fatalf("authorization response %s", u)
	}
	return q.Get("code")
}

// exchange redeems code for c with p's verifier.
func (e *asEnv) exchange(t *testing.T, c asClient, code string, p pkce) (*http.Response, map[string]any) {
	t.Helper()
	return e.post(t, "/token", c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {p.verifier}, "redirect_uri": {c.RedirectURI}, "resource": {e.url + "/mcp"}})
}

// login signs c in and returns its access and refresh tokens.
func (e *asEnv) login(t *testing.T, c asClient) (access, refresh string) {
	t.Helper()
	p := newPKCE()
	resp, out := e.exchange(t, c, e.code(t, c, p), p)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange: %d %v", resp.StatusCode, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

// refresh runs the refresh grant for c with extra parameters.
func (e *asEnv) refresh(t *testing.T, c asClient, token string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := cloneValues(extra)
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", token)
	resp, out := e.post(t, "/token", c, form)
	return resp.StatusCode, out
}

// introspector registers a confidential client for /introspect.
func (e *asEnv) introspector(t *testing.T) asClient {
	t.Helper()
	return e.register(t, map[string]any{"token_endpoint_auth_method": authBasic, "redirect_uris": []string{"https://rs.example/cb"}})
}

// active introspects token as by and returns the answer's "active".
func (e *asEnv) active(t *testing.T, by asClient, token string) bool {
	t.Helper()
	resp, out := e.post(t, "/introspect", by, url.Values{"token": {token}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %v", resp.StatusCode, out)
	}
	return out["active"] == true
}

// wantOAuthError checks an RFC 6749 JSON error answer.
func wantOAuthError(t *testing.T, resp *http.Response, out map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || out["error"] != code {
		t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, status, code)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("error answer with Cache-Control %q", cc)
	}
}

// wantRedirectError checks an error sent back to the client's redirect URI
// with its state and our issuer (RFC 9207).
func (e *asEnv) wantRedirectError(t *testing.T, loc, redirectURI, code string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, redirectURI+"?") {
		t.Fatalf("Location %q, want an error at %s", loc, redirectURI)
	}
	q := u.Query()
	if q.Get("error") != code || q.Get("state") != asState || q.Get("iss") != e.url {
		t.Fatalf("Location %q, want error=%s with state and iss", loc, code)
	}
}
