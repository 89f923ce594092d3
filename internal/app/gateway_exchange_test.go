package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

const (
	exchangerID     = "upstream-docs-exchanger"
	exchangerSecret = "upstream-docs-exchanger-secret-0123456789"
)

// exchangeForm is an RFC 8693 request for the assertion's Clerk token.
func exchangeForm(assertion string) url.Values {
	return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {assertion}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}
}

// exchangingUpstream is an mcp-go upstream whose clerk-me tool does what an
// upstream needing the user's own Clerk token does: it presents the
// assertion it received at the proxy's /token (RFC 8693, as the confidential
// client the operator allowed), then calls Clerk's userinfo as the user with
// the token it got back. It keeps the last assertion for the test.
func exchangingUpstream(t *testing.T, env func() *e2etest.Env, last *string, mu *sync.Mutex) string {
	t.Helper()
	m := server.NewMCPServer("exchanging-upstream", "1")
	m.AddTool(mcp.NewTool("clerk-me"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		e := env()
		assertion, _ := ctx.Value(gwAssertionKey{}).(string)
		mu.Lock()
		*last = assertion
		mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.BaseURL+"/token", strings.NewReader(exchangeForm(assertion).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(exchangerID, exchangerSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var ex map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ex)
		if resp.StatusCode != http.StatusOK {
			return mcp.NewToolResultStructuredOnly(map[string]any{"exchange_status": resp.StatusCode, "error": ex["error"]}), nil
		}
		ui, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Clerk.URL+"/oauth/userinfo", nil)
		ui.Header.Set("Authorization", "Bearer "+ex["access_token"].(string))
		uresp, err := http.DefaultClient.Do(ui)
		if err != nil {
			return nil, err
		}
		defer uresp.Body.Close()
		var info map[string]any
		_ = json.NewDecoder(uresp.Body).Decode(&info)
		return mcp.NewToolResultStructuredOnly(map[string]any{"exchange_status": resp.StatusCode, "issued_token_type": ex["issued_token_type"],
			"token_type": ex["token_type"], "expires_in": ex["expires_in"], "has_refresh": ex["refresh_token"] != nil,
			"userinfo_status": uresp.StatusCode, "email": info["email"], "sub": info["sub"]}), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(m, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return context.WithValue(ctx, gwAssertionKey{}, r.Header.Get(gateway.AssertionHeader))
	})))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// TestGatewayTokenExchange: RFC 8693 at /token with real Redis, the fake
// Clerk and a real upstream: the upstream exchanges the identity assertion
// it received for the user's live Clerk access token and calls Clerk as the
// user; clients not allowed, public clients, other token types, forged and
// expired assertions are refused; an assertion is exchanged a bounded number
// of times; once the grant is revoked its assertions get nothing; each
// exchange is audited.
func TestGatewayTokenExchange(t *testing.T) {
	var e *e2etest.Env
	var last string
	var mu sync.Mutex
	up := exchangingUpstream(t, func() *e2etest.Env { return e }, &last, &mu)
	e = e2etest.Start(t, e2etest.Options{Env: map[string]string{
		"UPSTREAMS": `[{"path":"/docs","url":"` + up + `"}]`, "TOKEN_EXCHANGE_CLIENTS": exchangerID,
	}})
	// The operator registers the upstream as a confidential client (here
	// straight in the store, as an operator's tooling would).
	if err := e.App.Store.CreateClient(context.Background(), store.Client{ID: exchangerID, SecretHash: seal.Hash(exchangerSecret),
		TokenEndpointAuthMethod: "client_secret_basic"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, meta := getJSON(t, e.BaseURL+"/.well-known/oauth-authorization-server")
	if !strings.Contains(toJSON(meta["grant_types_supported"]), "token-exchange") {
		t.Errorf("AS metadata grant types %v", meta["grant_types_supported"])
	}

	c := e.Register()
	at, _ := signInFor(t, e, c, e.BaseURL+"/docs")
	mc := e.MCPClientAt("/docs", at)
	out, err := e2etest.CallTool(mc, "clerk-me", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out["exchange_status"] != float64(200) || out["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" ||
		out["token_type"] != "Bearer" || out["has_refresh"] != false || out["userinfo_status"] != float64(200) ||
		out["sub"] != jwtSubject(t, at) || out["email"] == nil {
		t.Fatalf("the upstream's exchange and Clerk call: %v", out)
	}
	if exp, _ := out["expires_in"].(float64); exp <= 0 {
		t.Errorf("expires_in %v", out["expires_in"])
	}
	if !strings.Contains(e.Logs.String(), `"event":"token_exchanged"`) {
		t.Error("no audit line for the exchange")
	}
	mu.Lock()
	assertion := last
	mu.Unlock()

	other := e.RegisterClient(e2etest.ClientOptions{AuthMethod: "client_secret_basic"})
	for _, tc := range []struct {
		name   string
		client *e2etest.Client
		form   url.Values
		status int
		code   string
	}{
		{"a client not allowed", other, exchangeForm(assertion), 400, "unauthorized_client"},
		{"a public client", c, exchangeForm(assertion), 400, "unauthorized_client"},
		{"an access token as subject", nil, exchangeForm(at), 400, "invalid_request"},
		{"a forged assertion", nil, exchangeForm(assertion[:len(assertion)-4] + "AAAA"), 400, "invalid_request"},
		{"no subject", nil, exchangeForm(""), 400, "invalid_request"},
		{"another subject type", nil, withForm(exchangeForm(assertion), "subject_token_type", "urn:ietf:params:oauth:token-type:access_token"), 400, "invalid_request"},
		{"another target", nil, withForm(exchangeForm(assertion), "audience", "https://api.github.com"), 400, "invalid_target"},
		{"delegation", nil, withForm(exchangeForm(assertion), "actor_token", assertion), 400, "invalid_request"},
		{"Clerk as the target", nil, withForm(exchangeForm(assertion), "resource", e.Clerk.URL), 200, ""},
	} {
		var st int
		var body map[string]any
		if tc.client == nil {
			st, body = exchangeAs(t, e, exchangerID, exchangerSecret, tc.form)
		} else {
			st, body = e.TokenAs(tc.client, tc.form)
		}
		if st != tc.status || tc.code != "" && body["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
		if tc.code != "" && body["access_token"] != nil {
			t.Errorf("%s: a token was handed out", tc.name)
		}
	}

	// One assertion is exchanged a bounded number of times (it lives 60 s
	// and the gateway reuses it for 30 s, so it cannot be single-use). Two
	// exchanges so far (the tool's and the Clerk-target case).
	var st int
	for i := 0; i < 30 && st != http.StatusBadRequest; i++ {
		st, _ = exchangeAs(t, e, exchangerID, exchangerSecret, exchangeForm(assertion))
		if st == http.StatusBadRequest && i+3 != 21 {
			t.Errorf("refused at exchange %d, want the 21st", i+3)
		}
	}
	if st != http.StatusBadRequest {
		t.Error("an assertion is exchanged without bound")
	}

	// Revoking the grant ends what its assertions can get (a new sign-in,
	// so a new grant and a new assertion, exchanged once before).
	c2 := e.Register()
	at2, rt2 := signInFor(t, e, c2, e.BaseURL+"/docs")
	if out, err := e2etest.CallTool(e.MCPClientAt("/docs", at2), "clerk-me", nil); err != nil || out["exchange_status"] != float64(200) {
		t.Fatalf("second grant: %v %v", err, out)
	}
	mu.Lock()
	fresh := last
	mu.Unlock()
	if fresh == assertion {
		t.Fatal("the second grant got the first one's assertion")
	}
	if st, body := e.PostForm("/revoke", url.Values{"token": {rt2}, "client_id": {c2.ID}}, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d %v", st, body)
	}
	if st, body := exchangeAs(t, e, exchangerID, exchangerSecret, exchangeForm(fresh)); st != http.StatusBadRequest || body["access_token"] != nil {
		t.Errorf("exchange after the grant was revoked: %d %v", st, body)
	}
	if !strings.Contains(e.Logs.String(), `"reason":"grant_not_alive"`) {
		t.Error("the refusal after revocation is not audited")
	}
}

func exchangeAs(t *testing.T, e *e2etest.Env, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return doJSON(t, req)
}

func withForm(f url.Values, k, v string) url.Values {
	f.Set(k, v)
	return f
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
