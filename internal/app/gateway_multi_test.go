package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
)

// goSDKUpstream is a server written with the official go-sdk (the second
// kind of Go upstream): its whoami tool verifies the gateway's assertion
// with upstreamauth against the proxy's JWKS, for this upstream's own URL
// as the audience, and answers the user it names.
func goSDKUpstream(t *testing.T, issuer func() string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	u := "http://" + srv.Listener.Addr().String() + "/sdk"
	var once sync.Once
	var v *upstreamauth.Verifier
	s := mcp.NewServer(&mcp.Implementation{Name: "go-sdk-upstream", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "whoami-sdk", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		once.Do(func() { v = upstreamauth.New(upstreamauth.Config{Issuer: issuer(), Audience: u}) })
		var tok string
		if req.Extra != nil {
			tok = req.Extra.Header.Get(gateway.AssertionHeader)
		}
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}, nil
		}
		return &mcp.CallToolResult{StructuredContent: map[string]any{"sub": c.Subject, "client_id": c.ClientID}}, nil
	})
	srv.Config.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv.Start()
	t.Cleanup(srv.Close)
	return u
}

// sdkClient connects the official go-sdk client, with its OAuth
// authorization-code handler (RFC 9728 discovery from the 401, RFC 8707
// resource, DCR, PKCE), to endpoint, signing in as userID in the fake
// Clerk. It returns the session and the handler (for its token).
func sdkClient(t *testing.T, endpoint, redirect, userID string, signIns *int) (*mcp.ClientSession, *auth.AuthorizationCodeHandler) {
	t.Helper()
	ctx := context.Background()
	h, err := testflow.GoSDKHandler("go-sdk multi", redirect, testflow.Choices{UserID: userID}, func(string) { *signIns++ })
	if err != nil {
		t.Fatal(err)
	}
	cl := mcp.NewClient(&mcp.Implementation{Name: "go-sdk multi", Version: "1"}, nil)
	s, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect to %s (discovery, DCR, PKCE, token): %v", endpoint, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, h
}

func handlerToken(t *testing.T, h *auth.AuthorizationCodeHandler) string {
	t.Helper()
	ts, err := h.TokenSource(context.Background())
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// postMCP sends an initialize with token to endpoint.
func postMCP(t *testing.T, endpoint, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return doJSON(t, req)
}

// doJSON sends req and decodes its JSON answer.
func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestGatewaySeveralUpstreams: one proxy (real Redis, the fake Clerk)
// fronts two real upstreams at their own paths besides the built-in /mcp,
// from UPSTREAMS: a go-sdk server at /alpha/mcp and an mcp-go server at
// /beta, each its own protected resource. The official go-sdk client signs
// in for alpha (discovering alpha's metadata from the 401) and calls its
// tool, which sees the user in an assertion for alpha's URL; alpha's token
// is refused at /beta and /mcp with a challenge naming their own metadata;
// the client signs in for beta, whose tokens alpha refuses in turn, and
// beta's own tool policy applies.
func TestGatewaySeveralUpstreams(t *testing.T) {
	var base string
	issuer := func() string { return base }
	alphaUp, betaUp := goSDKUpstream(t, issuer), assertingUpstream(t, issuer)
	ups, _ := json.Marshal([]map[string]any{
		{"path": "/alpha/mcp", "url": alphaUp, "name": "Alpha tools", "scopes": []string{"openid", "email"}},
		{"path": "/beta", "url": betaUp, "tool_roles": map[string][]string{"org-report": {"org:admin"}}, "timeout": "5s"},
	})
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"UPSTREAMS": string(ups)}})
	base = e.BaseURL
	alpha, beta, builtin := base+"/alpha/mcp", base+"/beta", base+"/mcp"

	// Each resource has its own metadata at the RFC 9728 §3.1 path-inserted
	// URL; the root one stays /mcp's.
	for _, tc := range []struct {
		prm, resource, name, scopes string
	}{
		{"/.well-known/oauth-protected-resource/alpha/mcp", alpha, "Alpha tools", "[openid email]"},
		{"/.well-known/oauth-protected-resource/beta", beta, "/beta", "[openid profile email]"},
		{"/.well-known/oauth-protected-resource/mcp", builtin, "clerk-mcp-proxy", "[openid profile email]"},
		{"/.well-known/oauth-protected-resource", builtin, "clerk-mcp-proxy", "[openid profile email]"},
	} {
		st, prm := getJSON(t, base+tc.prm)
		if st != http.StatusOK || prm["resource"] != tc.resource || prm["resource_name"] != tc.name ||
			fmt.Sprint(prm["authorization_servers"]) != "["+base+"]" || fmt.Sprint(prm["scopes_supported"]) != tc.scopes {
			t.Errorf("%s: %d %v", tc.prm, st, prm)
		}
	}

	signIns := 0
	const carol = "user_2carolExampleSeededUser003" // an Acme member, not an admin
	sa, ha := sdkClient(t, alpha, "http://127.0.0.1:43221/callback", carol, &signIns)
	res, err := sa.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami-sdk"})
	if err != nil || res.IsError {
		t.Fatalf("whoami-sdk at alpha: %v %+v", err, res)
	}
	tokA := handlerToken(t, ha)
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, jwtSubject(t, tokA)) {
		t.Errorf("alpha's upstream saw %s, want %s", got, jwtSubject(t, tokA))
	}
	if aud := jwtClaim(t, tokA, "aud"); aud != alpha {
		t.Errorf("alpha's token aud = %v, want %s", aud, alpha)
	}

	// Alpha's token opens nothing else: 401 invalid_token, the challenge
	// naming the metadata of the resource asked, so the client signs in there.
	for _, ep := range []string{beta, builtin} {
		resp := postMCP(t, ep, tokA)
		prm := base + "/.well-known/oauth-protected-resource" + strings.TrimPrefix(ep, base)
		if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
			!strings.Contains(ch, `resource_metadata="`+prm+`"`) || !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("alpha's token at %s: %d %q", ep, resp.StatusCode, ch)
		}
	}
	if !strings.Contains(e.Logs.String(), "issued for another resource") {
		t.Error("the refusal is not logged with its reason")
	}

	// Carol signs in for beta too; beta's own tool policy hides org-report
	// from her.
	sb, hb := sdkClient(t, beta, "http://127.0.0.1:43222/callback", carol, &signIns)
	res, err = sb.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami at beta: %v %+v", err, res)
	}
	tokB := handlerToken(t, hb)
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, jwtSubject(t, tokB)) {
		t.Errorf("beta's upstream saw %s", got)
	}
	tools, err := sb.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools.Tools {
		if tl.Name == "org-report" {
			t.Error("beta listed org-report to an org member (its tool_roles)")
		}
	}
	if resp := postMCP(t, alpha, tokB); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("beta's token at alpha: %d", resp.StatusCode)
	}
	if resp := postMCP(t, beta, tokB); resp.StatusCode != http.StatusOK {
		t.Errorf("beta's token at beta (raw): %d", resp.StatusCode)
	}
	if signIns != 2 {
		t.Errorf("%d sign-ins, want 2 (one per resource)", signIns)
	}
	// A session belongs to its resource: alpha's session id, presented at
	// beta by the same user (Carol) with beta's token, is unknown there (it is not
	// unwrapped and sent to beta's upstream: the 404 is the proxy's own).
	req, _ := http.NewRequest(http.MethodPost, beta, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+tokB)
	req.Header.Set("Mcp-Session-Id", sa.ID())
	if st, out := doJSON(t, req); st != http.StatusNotFound || out["error"] != "invalid_request" {
		t.Errorf("alpha's session id at beta: %d %v, want 404", st, out)
	}
	if _, err := sa.ListTools(context.Background(), nil); err != nil {
		t.Errorf("alpha's session at alpha after the attempt: %v", err)
	}
}

// TestGatewayResourceParameter: RFC 8707 at the authorization server with
// several resources: /authorize takes any of them (the grant and its tokens
// are for that one) and refuses others with invalid_target; a refresh may
// name its grant's resource again but not another one.
func TestGatewayResourceParameter(t *testing.T) {
	up := assertingUpstream(t, func() string { return "" })
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"UPSTREAMS": `[{"path":"/beta","url":"` + up + `"}]`}})
	// A confidential client, so it may also introspect.
	c := e.RegisterClient(e2etest.ClientOptions{AuthMethod: "client_secret_basic"})
	for _, tc := range []struct {
		resource string
		ok       bool
	}{
		{e.BaseURL + "/beta", true},
		{e.BaseURL + "/beta/", true},
		{e.BaseURL + "/gamma", false},
		{e.BaseURL + "/beta#x", false},
	} {
		p := e2etest.NewPKCE()
		u := e.AuthorizeURL(c, p, "st", url.Values{"resource": {tc.resource}})
		final, err := testflow.NewBrowser().Authorize(context.Background(), u, c.RedirectURI, testflow.Choices{})
		if !tc.ok {
			if err == nil && final.Query().Get("error") == "invalid_target" {
				continue
			}
			if err != nil && strings.Contains(err.Error(), "invalid_target") {
				continue
			}
			t.Errorf("resource %q: want invalid_target, got %v %v", tc.resource, final, err)
			continue
		}
		at, rt := redeem(t, e, c, p, final, err, e.BaseURL+"/beta")
		if aud := jwtClaim(t, at, "aud"); aud != e.BaseURL+"/beta" {
			t.Errorf("aud %v", aud)
		}
		if resp := postMCP(t, e.BaseURL+"/beta", at); resp.StatusCode != http.StatusOK {
			t.Errorf("beta with its token: %d", resp.StatusCode)
		}
		st, body := e.TokenAs(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {e.BaseURL + "/mcp"}})
		if st != http.StatusBadRequest || body["error"] != "invalid_target" {
			t.Errorf("refresh for another resource: %d %v", st, body)
		}
		st, body = e.TokenAs(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {e.BaseURL + "/beta"}})
		if st != http.StatusOK || jwtClaim(t, body["access_token"].(string), "aud") != e.BaseURL+"/beta" {
			t.Errorf("refresh for beta: %d %v", st, body)
		}
		st, in := e.PostForm("/introspect", url.Values{"token": {body["access_token"].(string)}}, c)
		if st != http.StatusOK || in["active"] != true || in["aud"] != e.BaseURL+"/beta" {
			t.Errorf("introspect: %d %v", st, in)
		}
	}
}

// jwtClaim is one claim of a JWT's payload (unverified: the test reads
// what the proxy issued).
func jwtClaim(t *testing.T, tok, name string) any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	return c[name]
}

// redeem takes the end of a sign-in (the browser's final redirect) to tokens
// at /token, naming resource.
func redeem(t *testing.T, e *e2etest.Env, c *e2etest.Client, p e2etest.PKCE, final *url.URL, err error, resource string) (access, refresh string) {
	t.Helper()
	if err != nil || final.Query().Get("code") == "" {
		t.Fatalf("sign-in for %s: %v %v", resource, err, final)
	}
	st, tok := e.TokenAs(c, url.Values{"grant_type": {"authorization_code"}, "code": {final.Query().Get("code")},
		"code_verifier": {p.Verifier}, "redirect_uri": {c.RedirectURI}, "resource": {resource}})
	if st != http.StatusOK {
		t.Fatalf("token for %s: %d %v", resource, st, tok)
	}
	return tok["access_token"].(string), tok["refresh_token"].(string)
}

// signInFor runs the whole sign-in of c for resource and returns its tokens.
func signInFor(t *testing.T, e *e2etest.Env, c *e2etest.Client, resource string) (access, refresh string) {
	t.Helper()
	p := e2etest.NewPKCE()
	final, err := testflow.NewBrowser().Authorize(context.Background(), e.AuthorizeURL(c, p, "st", url.Values{"resource": {resource}}), c.RedirectURI, testflow.Choices{})
	return redeem(t, e, c, p, final, err, resource)
}
