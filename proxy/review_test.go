package proxy

// Regression tests for defects found by a security review of the
// authorization server. Each fails on the code before its fix.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// TestRedirectKeepsRegisteredQuery: the query of a registered redirect URI
// is retained as registered (RFC 6749 §3.1.2) and code, state and iss appear
// exactly once, correctly encoded.
func TestRedirectKeepsRegisteredQuery(t *testing.T) {
	e := newFzEnv(t)
	const state = "st ate&x=1"
	tail := "code=C&iss=" + url.QueryEscape(fzIssuer) + "&state=" + url.QueryEscape(state)
	for _, tc := range []struct{ registered, want string }{
		{"https://app.example/cb", "https://app.example/cb?" + tail},
		{"https://app.example/cb?b=2&a=1", "https://app.example/cb?b=2&a=1&" + tail},
		{"https://app.example/cb?flag", "https://app.example/cb?flag&" + tail},
		{"https://app.example/cb?a=1;b=2", "https://app.example/cb?a=1;b=2&" + tail},
		{"https://app.example/cb?x=%41&y=a+b", "https://app.example/cb?x=%41&y=a+b&" + tail},
		{"https://app.example/cb?state=fixed&code=zz&keep=1&iss=me&st%61te=2", "https://app.example/cb?keep=1&" + tail},
		{"http://127.0.0.1:7777/callback?", "http://127.0.0.1:7777/callback?" + tail},
		{"cursor://oauth/callback?tenant=a", "cursor://oauth/callback?tenant=a&" + tail},
	} {
		t.Run(tc.registered, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.s.redirectToClient(rec, httptest.NewRequest(http.MethodGet, "/", nil), tc.registered, state, url.Values{"code": {"C"}})
			loc := rec.Header().Get("Location")
			if rec.Code != http.StatusFound || loc != tc.want {
				t.Fatalf("Location %q\n            want %q", loc, tc.want)
			}
			u, _ := url.Parse(loc)
			q := u.Query()
			if len(q["code"]) != 1 || len(q["state"]) != 1 || q.Get("state") != state || len(q["iss"]) != 1 || q.Get("iss") != fzIssuer {
				t.Fatalf("code, state and iss must appear once each: %q", loc)
			}
		})
	}
}

// rvGrant stores an active grant for clientID and returns its current
// refresh token and an access token for it.
func (e *fzEnv) rvGrant(t *testing.T, clientID string) (refresh, access string) {
	t.Helper()
	gid, _ := seal.Token(nil, 16)
	refresh, err := tokens.NewRefreshToken(gid, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	g := store.Grant{ID: gid, UserID: "user_rv", ClientID: clientID, Scopes: []string{"openid", "profile"}, Resource: fzIssuer + "/mcp",
		CreatedAt: now, Active: true, ExpiresAt: now.Add(time.Hour),
		Refresh: store.RefreshChain{Current: seal.Hash(refresh), RotatedAt: now, Generation: 1}}
	if err := e.st.CreateGrant(context.Background(), g, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, oe := e.s.tokenPair(g, g.Scopes, refresh)
	if oe != nil {
		t.Fatal(oe)
	}
	return refresh, resp.AccessToken
}

func (e *fzEnv) rvPost(path string, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if basicID != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))))
	}
	rec := e.serve(http.MethodPost, path, "", h, []byte(form.Encode()))
	out := map[string]any{}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// TestRefreshResource: RFC 8707 at the refresh grant. A resource other than
// the grant's is invalid_target (not a token for this server handed to a
// client that asked for another), and the refusal rotates nothing; the
// grant's own resource works.
func TestRefreshResource(t *testing.T) {
	e := newFzEnv(t)
	refresh, _ := e.rvGrant(t, fzPublicID)
	form := func(resource string) url.Values {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {fzPublicID}}
		if resource != "" {
			v.Set("resource", resource)
		}
		return v
	}
	for _, res := range []string{"https://other.example/mcp", fzIssuer + "/other", fzIssuer + "/mcp#frag"} {
		if st, out := e.rvPost("/token", form(res), "", ""); st != http.StatusBadRequest || out["error"] != "invalid_target" {
			t.Fatalf("refresh for resource %q: %d %v, want 400 invalid_target", res, st, out)
		}
	}
	// Nothing rotated: the same token still refreshes, naming our resource.
	if st, out := e.rvPost("/token", form(fzIssuer+"/mcp"), "", ""); st != http.StatusOK || out["refresh_token"] == refresh {
		t.Fatalf("refresh for our resource after the refusals: %d %v", st, out)
	}
}

// TestIntrospectRefreshTokenOnlyByItsClient: another client (any
// self-registered confidential client) learns nothing about a refresh token
// that is not its own; its owner does, and access tokens stay introspectable
// by any authenticated resource server.
func TestIntrospectRefreshTokenOnlyByItsClient(t *testing.T) {
	e := newFzEnv(t)
	refresh, access := e.rvGrant(t, fzBasicID)
	for _, tc := range []struct {
		name, token, id, secret string
		basic, active           bool
	}{
		{"refresh token, another client", refresh, fzPostID, fzPostSec, false, false},
		{"refresh token, its own client", refresh, fzBasicID, fzBasicSec, true, true},
		{"access token, another client", access, fzPostID, fzPostSec, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"token": {tc.token}}
			var st int
			var out map[string]any
			if tc.basic {
				st, out = e.rvPost("/introspect", form, tc.id, tc.secret)
			} else {
				form.Set("client_id", tc.id)
				form.Set("client_secret", tc.secret)
				st, out = e.rvPost("/introspect", form, "", "")
			}
			if st != http.StatusOK || out["active"] != tc.active {
				t.Fatalf("%d %v, want active=%v", st, out, tc.active)
			}
			if !tc.active && len(out) != 1 {
				t.Fatalf("an inactive answer says more than active: %v", out)
			}
		})
	}
}

// rvCountingTransport answers 404 to every document request and counts them.
type rvCountingTransport struct{ n atomic.Int64 }

func (c *rvCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// TestRevokeIntrospectRateLimited: /revoke and /introspect authenticate the
// client, which for an https client_id means fetching its metadata document
// (failures are not cached). They are rate-limited per IP like /token, so no
// one can make the server fetch arbitrary URLs without bound.
func TestRevokeIntrospectRateLimited(t *testing.T) {
	const limit, tries = 3, 10
	for _, path := range []string{"/revoke", "/introspect"} {
		t.Run(path, func(t *testing.T) {
			e := newFzEnv(t)
			tr := &rvCountingTransport{}
			e.s.cfg.CIMD.Enabled = true
			e.s.cimd = newCIMDFetcher(e.s.cfg.CIMD, e.st, &http.Client{Transport: tr}, time.Now, e.s.log)
			e.s.cfg.RateLimits.Token = limit
			r := chi.NewRouter()
			e.s.Mount(r)
			e.h = r
			limited := 0
			for range tries {
				st, out := e.rvPost(path, url.Values{"token": {"x"}, "client_id": {"https://victim.example/doc.json"}}, "", "")
				switch {
				case st == http.StatusTooManyRequests && out["error"] == "temporarily_unavailable":
					limited++
				case st != http.StatusUnauthorized:
					t.Fatalf("status %d %v", st, out)
				}
			}
			if limited != tries-limit || tr.n.Load() != limit {
				t.Fatalf("%d of %d requests limited, %d documents fetched; want %d and %d", limited, tries, tr.n.Load(), tries-limit, limit)
			}
		})
	}
}

// TestTokensDieWithTheirClient: once a client's registration is gone (RFC
// 7592 delete, idle expiry, a lost store), its tokens introspect as inactive,
// though the grant record still sits in the store.
func TestTokensDieWithTheirClient(t *testing.T) {
	e := newFzEnv(t)
	refresh, access := e.rvGrant(t, fzPublicID)
	introspect := func(tok string) any {
		t.Helper()
		st, out := e.rvPost("/introspect", url.Values{"token": {tok}}, fzBasicID, fzBasicSec)
		if st != http.StatusOK {
			t.Fatalf("introspect: %d %v", st, out)
		}
		return out["active"]
	}
	if introspect(access) != true {
		t.Fatal("a live client's access token must introspect as active (else this test proves nothing)")
	}
	if err := e.st.DeleteClient(context.Background(), fzPublicID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"access": access, "refresh": refresh} {
		if got := introspect(tok); got != false {
			t.Errorf("%s token of a deleted client: active=%v", name, got)
		}
	}
}
