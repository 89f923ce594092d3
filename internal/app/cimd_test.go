package app_test

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// MCP 2025-11-25): a client_id that is an https URL is fetched, validated,
// cached in Redis and shown as verified on the consent page; the fetch is
// SSRF-guarded. Documents are served by an httptest TLS server on loopback,
// so these tests run with CIMD_ALLOW_LOOPBACK_FOR_TESTS=true and a client
// that trusts the test certificate (built by the product's own
// proxy.NewCIMDHTTPClient, so redirects, size and timeouts are the product's).

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/proxy"
)

// docServer serves client metadata documents over TLS and counts fetches.
type docServer struct {
	*httptest.Server
	mu   sync.Mutex
	docs map[string]docReply
	hits map[string]int
}

type docReply struct {
	status   int
	body     string
	cc       string // Cache-Control
	location string // for redirects
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{docs: map[string]docReply{}, hits: map[string]int{}}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.hits[r.URL.Path]++
		rep, ok := d.docs[r.URL.Path]
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rep.location != "" {
			w.Header().Set("Location", rep.location)
		}
		if rep.cc != "" {
			w.Header().Set("Cache-Control", rep.cc)
		}
		w.Header().Set("Content-Type", "application/json")
		if rep.status == 0 {
			rep.status = http.StatusOK
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write([]byte(rep.body))
	}))
	t.Cleanup(d.Close)
	return d
}

// serve publishes a reply at path and returns the document's URL.
func (d *docServer) serve(path string, rep docReply) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path] = rep
	return d.URL + path
}

func (d *docServer) hitsFor(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[path]
}

// client trusts the server's certificate through the product's guarded
// client (guard off: the server is on loopback).
func (d *docServer) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(d.Certificate())
	return proxy.NewCIMDHTTPClient(true, pool)
}

const cimdRedirect = "http://127.0.0.1:7777/callback"

// cimdDoc is a valid document for id, with overrides.
func cimdDoc(id string, override map[string]any) string {
	doc := map[string]any{
		"client_id": id, "client_name": "Metadata Test App", "redirect_uris": []string{cimdRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	for k, v := range override {
		if v == nil {
			delete(doc, k)
			continue
		}
		doc[k] = v
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

func startCIMDEnv(t *testing.T, d *docServer) *e2etest.Env {
	return e2etest.Start(t, e2etest.Options{
		Env:        map[string]string{"CIMD_ALLOW_LOOPBACK_FOR_TESTS": "true"},
		CIMDClient: d.client(),
	})
}

// TestCIMDFullFlow: a client that never registered, identified by the URL
// of its metadata document, runs the whole flow: the AS metadata advertises
// CIMD, the consent page names the app and its verified host, the code
// exchange and refresh work with the URL as client_id, and /mcp sees that
// client_id. The document is fetched once and cached in Redis for the
// max-age it was served with.
func TestCIMDFullFlow(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	id := d.URL + "/oauth/client.json"
	d.serve("/oauth/client.json", docReply{body: cimdDoc(id, nil), cc: "public, max-age=300"})
	e := startCIMDEnv(t, d)

	meta := get(t, e.BaseURL+"/.well-known/oauth-authorization-server", nil).JSON()
	if meta["client_id_metadata_document_supported"] != true {
		t.Fatalf("AS metadata does not advertise CIMD: %v", meta)
	}

	c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
	p := e2etest.NewPKCE()
	b := testflow.NewBrowser()
	final, err := b.Authorize(context.Background(), e.AuthorizeURL(c, p, "state-cimd-1234", nil), cimdRedirect, testflow.Choices{})
	if err != nil {
		t.Fatalf("sign-in with a CIMD client: %v", err)
	}
	consent := ""
	for u, page := range b.Pages {
		if strings.Contains(u, "/consent") {
			consent = page
		}
	}
	host := strings.TrimPrefix(d.URL, "https://")
	if !strings.Contains(consent, "Metadata Test App") || !strings.Contains(consent, "verified "+host) {
		t.Fatalf("the consent page must name the app and its verified host %q:\n%s", host, consent)
	}
	code := final.Query().Get("code")
	status, out := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cimdRedirect},
		"code_verifier": {p.Verifier}, "client_id": {id}})
	if status != http.StatusOK {
		t.Fatalf("code exchange: %d %v", status, out)
	}
	c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
	session := e.Initialize(c.AccessToken)
	if r, info := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["client_id"] != id {
		t.Fatalf("get-user-info as the CIMD client: %d %s", r.Status, r.Body)
	}
	next := refreshOK(t, e, c, c.RefreshToken)
	if s := mcpInit(e, next.access); s != http.StatusOK {
		t.Fatalf("refreshed access token: %d", s)
	}

	// One fetch served authorize, consent, token and refresh: the rest came
	// from the Redis cache, whose entry lives as long as max-age said.
	if n := d.hitsFor("/oauth/client.json"); n != 1 {
		t.Errorf("the document was fetched %d times, want 1 (cached)", n)
	}
	ttl, err := redisFor(t, e).PTTL(context.Background(), e.Prefix+"cache:{cimd:"+seal.HashHex(id)+"}").Result()
	if err != nil || ttl <= time.Minute || ttl > 300*time.Second {
		t.Errorf("Redis cache entry TTL = %v (%v), want max-age=300s (not the 1h default)", ttl, err)
	}
}

// TestCIMDNoStoreIsNotCached: Cache-Control: no-store means every use
// fetches the document again and nothing is kept in Redis.
func TestCIMDNoStoreIsNotCached(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	id := d.URL + "/nostore.json"
	d.serve("/nostore.json", docReply{body: cimdDoc(id, nil), cc: "no-store"})
	e := startCIMDEnv(t, d)
	c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
	for i := 1; i <= 2; i++ {
		r := get(t, e.AuthorizeURL(c, e2etest.NewPKCE(), "state-cimd-1234", nil), nil)
		if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/consent") {
			t.Fatalf("authorize %d: %d %s", i, r.Status, r.Header.Get("Location"))
		}
		if n := d.hitsFor("/nostore.json"); n != i {
			t.Fatalf("after %d authorizations the document was fetched %d times", i, n)
		}
	}
	if n, err := redisFor(t, e).Exists(context.Background(), e.Prefix+"cache:{cimd:"+seal.HashHex(id)+"}").Result(); err != nil || n != 0 {
		t.Fatalf("a no-store document was cached in Redis (%d, %v)", n, err)
	}
}

// TestCIMDDocumentValidation: documents that break the rules are refused
// with a local page at /authorize (no redirect anywhere) and 401
// invalid_client at /token.
func TestCIMDDocumentValidation(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	e := startCIMDEnv(t, d)
	d.serve("/elsewhere.json", docReply{body: `{"client_id":"x"}`})
	for _, tc := range []struct {
		name string
		rep  func(id string) docReply
		want string // words of the refusal shown on the page
	}{
		{"client_id differs from the URL", func(id string) docReply {
			return docReply{body: cimdDoc(d.URL+"/someone-else.json", nil)}
		}, "does not equal"},
		{"no redirect_uris", func(id string) docReply {
			return docReply{body: cimdDoc(id, map[string]any{"redirect_uris": nil})}
		}, "redirect_uris"},
		{"shared-secret auth method", func(id string) docReply {
			return docReply{body: cimdDoc(id, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})}
		}, "token_endpoint_auth_method"},
		{"larger than 5 KB", func(id string) docReply {
			return docReply{body: cimdDoc(id, map[string]any{"padding": strings.Repeat("x", 5<<10)})}
		}, "5 KB"},
		{"redirect to another document", func(id string) docReply {
			return docReply{status: http.StatusFound, location: d.URL + "/elsewhere.json"}
		}, "redirects are not followed"},
		{"not JSON", func(id string) docReply { return docReply{body: "<html>hi</html>"} }, "not a JSON object"},
		{"not found", func(id string) docReply { return docReply{status: http.StatusNotFound, body: "{}"} }, "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/bad/" + strings.ReplaceAll(tc.name, " ", "-") + ".json"
			id := d.serve(path, tc.rep(d.URL+path))
			r := get(t, e.AuthorizeURL(&e2etest.Client{ID: id, RedirectURI: cimdRedirect}, e2etest.NewPKCE(), "state-cimd-1234", nil), nil)
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(r.Body, tc.want) {
				t.Fatalf("authorize: %d location=%q, want a local 400 page saying %q:\n%s", r.Status, r.Header.Get("Location"), tc.want, r.Body)
			}
			tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
				"code_verifier": {e2etest.NewPKCE().Verifier}, "client_id": {id}}, nil)
			wantOAuthError(t, "token", tok, http.StatusUnauthorized, "invalid_client")
		})
	}
	if n := d.hitsFor("/elsewhere.json"); n != 0 {
		t.Errorf("the fetcher followed a redirect (%d hits on its target)", n)
	}

	// A redirect URI the document does not list is refused locally too.
	id := d.serve("/good.json", docReply{body: cimdDoc(d.URL+"/good.json", nil)})
	r := get(t, e.AuthorizeURL(&e2etest.Client{ID: id, RedirectURI: "http://127.0.0.1:7777/other"}, e2etest.NewPKCE(), "state-cimd-1234", nil), nil)
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("unlisted redirect: %d %q", r.Status, r.Header.Get("Location"))
	}
}

// TestCIMDSSRFGuardOnByDefault: with the default configuration (no test
// setting, the product's own HTTP client) a metadata document on a loopback
// address is never fetched: /authorize answers a local page naming the
// reason, /token answers invalid_client, and the server saw no request.
func TestCIMDSSRFGuardOnByDefault(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	id := d.serve("/client.json", docReply{body: cimdDoc(d.URL+"/client.json", nil)})
	e := e2etest.Start(t, e2etest.Options{})
	r := get(t, e.AuthorizeURL(&e2etest.Client{ID: id, RedirectURI: cimdRedirect}, e2etest.NewPKCE(), "state-cimd-1234", nil), nil)
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(r.Body, "private or reserved address") {
		t.Fatalf("loopback document: %d %q\n%s", r.Status, r.Header.Get("Location"), r.Body)
	}
	tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {id}}, nil)
	wantOAuthError(t, "token", tok, http.StatusUnauthorized, "invalid_client")
	if n := d.hitsFor("/client.json"); n != 0 {
		t.Fatalf("the guarded fetcher reached a loopback server (%d requests)", n)
	}
	if strings.Contains(e.Logs.String(), "CIMD_ALLOW_LOOPBACK_FOR_TESTS") {
		t.Error("the SSRF warning is logged although the test setting is off")
	}
}

// TestCIMDTestSettingWarnsLoudly: turning the guard off for tests is
// announced at start-up with a WARN line that says never to use it in
// production.
func TestCIMDTestSettingWarnsLoudly(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"CIMD_ALLOW_LOOPBACK_FOR_TESTS": "true"}})
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		msg, _ := m["msg"].(string)
		if m["level"] == "WARN" && strings.Contains(msg, "CIMD_ALLOW_LOOPBACK_FOR_TESTS") && strings.Contains(msg, "SSRF") &&
			strings.Contains(msg, "production") {
			return
		}
	}
	t.Fatalf("no start-up warning for CIMD_ALLOW_LOOPBACK_FOR_TESTS in the log:\n%s", e.Logs.String())
}

// TestCIMDAdmissionPolicy: the operator decides which metadata-document
// clients may connect. A denied or unlisted client_id is refused at
// /authorize with a page that says so, and its document is never fetched; an
// admitted one signs in, and because every one of its redirect URIs is
// loopback the consent page warns that its verified host vouches for
// nothing on this computer. With DCR_ENABLED=false ("pre-registered only"),
// /register answers 403 and the metadata stops advertising it, while the
// admitted document client still connects.
func TestCIMDAdmissionPolicy(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	allowed := d.serve("/apps/notes.json", docReply{})
	d.serve("/apps/notes.json", docReply{body: cimdDoc(allowed, nil)})
	denied := d.serve("/apps/evil.json", docReply{})
	d.serve("/apps/evil.json", docReply{body: cimdDoc(denied, nil)})
	unlisted := d.serve("/other/app.json", docReply{})
	d.serve("/other/app.json", docReply{body: cimdDoc(unlisted, nil)})
	e := e2etest.Start(t, e2etest.Options{
		Env: map[string]string{"CIMD_ALLOW_LOOPBACK_FOR_TESTS": "true", "DCR_ENABLED": "false",
			"CIMD_ALLOWED_CLIENTS": "https://127.0.0.1:*/apps/*", "CIMD_DENIED_CLIENTS": "https://127.0.0.1:*/apps/evil*"},
		CIMDClient: d.client(),
	})

	for _, id := range []string{denied, unlisted} {
		c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
		r := get(t, e.AuthorizeURL(c, e2etest.NewPKCE(), "state-admit-1234", nil), nil)
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "does not accept apps") {
			t.Errorf("authorize as %s: %d %q %s, want a local 400 page saying the app is not accepted", id, r.Status, r.Header.Get("Location"), r.Body)
		}
	}
	if n := d.hitsFor("/apps/evil.json") + d.hitsFor("/other/app.json"); n != 0 {
		t.Errorf("refused documents were fetched %d times, want never", n)
	}

	c := &e2etest.Client{ID: allowed, RedirectURI: cimdRedirect}
	p := e2etest.NewPKCE()
	b := testflow.NewBrowser()
	final, err := b.Authorize(context.Background(), e.AuthorizeURL(c, p, "state-admit-5678", nil), cimdRedirect, testflow.Choices{})
	if err != nil {
		t.Fatalf("sign-in with the admitted client: %v", err)
	}
	warned := false
	for u, page := range b.Pages {
		warned = warned || strings.Contains(u, "/consent") && strings.Contains(page, "cannot vouch for which program gets it")
	}
	if !warned {
		t.Errorf("no consent page warned about a loopback-only metadata client: %v", b.Pages)
	}
	if status, out := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {final.Query().Get("code")},
		"redirect_uri": {cimdRedirect}, "code_verifier": {p.Verifier}, "client_id": {allowed}}); status != http.StatusOK {
		t.Fatalf("code exchange for the admitted client: %d %v", status, out)
	}

	reg := registerRaw(t, e.BaseURL, []string{cimdRedirect}, nil)
	wantOAuthError(t, "register with DCR closed", reg, http.StatusForbidden, "access_denied")
	if meta := get(t, e.BaseURL+"/.well-known/oauth-authorization-server", nil).JSON(); meta["registration_endpoint"] != nil {
		t.Errorf("metadata advertises registration_endpoint with DCR closed: %v", meta["registration_endpoint"])
	}
}
