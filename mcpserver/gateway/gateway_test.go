package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/syncbuf"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// users is a verifier with fixed tokens: what the bearer middleware in front
// of the gateway needs, without Clerk (the full flow with the fake Clerk is
// in internal/app).
type users map[string]*verifier.Identity

func (u users) Verify(_ context.Context, token string) (*verifier.Identity, error) {
	if id, ok := u[token]; ok {
		cp := *id
		return &cp, nil
	}
	return nil, fmt.Errorf("unknown token")
}

var testUsers = users{
	"token-alice": {UserID: "user_alice", ClientID: "client_a", GrantID: "g1", Email: "alice@example.com", Name: "Alice", Scopes: []string{"openid", "email"}, ClerkToken: "clerk-secret-alice"},
	"token-bob": {UserID: "user_bob", ClientID: "client_b", GrantID: "g2", Email: "bob@example.com", Scopes: []string{"openid", "email", "mcp:write"},
		OrgID: "org_1", OrgRole: "org:admin", OrgPermissions: []string{"org:mcp:admin"}},
}

// testPolicy: admin-only needs the org:admin role, write needs a scope.
func testPolicy() *toolpolicy.Policy {
	return toolpolicy.New(map[string]toolpolicy.Rule{
		"admin-only": {OrgRoles: []string{"org:admin"}},
		"write":      {Scopes: []string{"mcp:write"}},
	})
}

// countingSigner counts signatures, to see assertions reused.
type countingSigner struct {
	ks *tokens.KeySet
	n  atomic.Int64
}

func (c *countingSigner) SignJWT(typ string, claims any) (string, error) {
	c.n.Add(1)
	return c.ks.SignJWT(typ, claims)
}

// front is the proxy side: mcpserver's guard and bearer middleware with the
// gateway behind /mcp, and the proxy's JWKS.
type front struct {
	URL    string
	signer *countingSigner
	logs   *syncbuf.Buffer
}

func (f *front) Logs() string { return f.logs.String() }

func startFront(t *testing.T, upstream string, mod func(*gateway.Config)) *front {
	t.Helper()
	ks, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	f := &front{URL: base, signer: &countingSigner{ks: ks}, logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rs := mcpserver.New(mcpserver.Config{Issuer: base, Resource: base + "/mcp", Scopes: []string{"openid", "email"}},
		mcpserver.Deps{Verifier: testUsers, Secret: []byte("gateway-test-secret-0123456789abcdef"), Logger: log})
	cfg := gateway.Config{Upstream: upstream, Issuer: base, HeaderTimeout: 5 * time.Second, Policy: testPolicy()}
	if mod != nil {
		mod(&cfg)
	}
	gw, err := gateway.New(cfg, gateway.Deps{Resource: rs, Signer: f.signer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rs.SetHandler(gw)
	r := chi.NewRouter()
	rs.Mount(r)
	r.Get("/.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(ks.JWKS())
	})
	srv.Config.Handler = r
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// seen records what reached the upstream.
type seen struct {
	mu      sync.Mutex
	headers []http.Header
}

func (s *seen) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (s *seen) all() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.headers...)
}

type assertionKey struct{}

// goUpstream is an mcp-go streamable HTTP server whose whoami tool verifies
// the gateway's assertion with upstreamauth, as an upstream author would.
func goUpstream(t *testing.T, frontURL *string) (string, *seen, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String() + "/mcp"
	var v *upstreamauth.Verifier
	var once sync.Once
	m := server.NewMCPServer("go-upstream", "1")
	m.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		once.Do(func() { v = upstreamauth.New(upstreamauth.Config{Issuer: *frontURL, Audience: url}) })
		tok, _ := ctx.Value(assertionKey{}).(string)
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return mcp.NewToolResultError("assertion refused: " + err.Error()), nil
		}
		return mcp.NewToolResultText(c.Subject + " " + c.Email + " " + c.ClientID + " " + c.Scope), nil
	})
	for _, name := range []string{"admin-only", "write", "echo"} {
		m.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			calls.Add(1)
			return mcp.NewToolResultText(name + " ran"), nil
		})
	}
	rec := &seen{}
	h := server.NewStreamableHTTPServer(m, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return context.WithValue(ctx, assertionKey{}, r.Header.Get(gateway.AssertionHeader))
	}))
	mux := http.NewServeMux()
	mux.Handle("/mcp", rec.record(h))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return url, rec, &calls
}

func mcpClient(t *testing.T, url, token string, extra map[string]string) *client.Client {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token, "Cookie": "session=browser-cookie"}
	for k, v := range extra {
		h[k] = v
	}
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-11-25"
	init.Params.ClientInfo = mcp.Implementation{Name: "gateway-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

func callText(t *testing.T, c *client.Client, tool string) (string, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		return "", err
	}
	if len(res.Content) == 0 {
		return "", fmt.Errorf("no content")
	}
	tc, _ := res.Content[0].(mcp.TextContent)
	return tc.Text, nil
}

// TestGatewayGoUpstream drives a real mcp-go client through the gateway to a
// real mcp-go upstream: the upstream sees the right user in a verified
// assertion and never the client's token or cookie; tools/list is filtered
// per user; a forbidden call never reaches the upstream; sessions stay bound
// to their user; assertions are reused, not signed per request.
func TestGatewayGoUpstream(t *testing.T) {
	var frontURL string
	upURL, rec, calls := goUpstream(t, &frontURL)
	f := startFront(t, upURL, nil)
	frontURL = f.URL

	alice := mcpClient(t, f.URL+"/mcp", "token-alice", nil)
	bob := mcpClient(t, f.URL+"/mcp", "token-bob", nil)

	for _, tc := range []struct {
		c    *client.Client
		want string
	}{
		{alice, "user_alice alice@example.com client_a openid email"},
		{bob, "user_bob bob@example.com client_b openid email mcp:write"},
	} {
		for range 3 {
			got, err := callText(t, tc.c, "whoami")
			if err != nil || got != tc.want {
				t.Fatalf("whoami = %q, %v; want %q", got, err, tc.want)
			}
		}
	}
	// Six calls and two initializations by two users: one signature each.
	if n := f.signer.n.Load(); n != 2 {
		t.Errorf("signed %d assertions for two users, want 2 (reuse)", n)
	}

	for _, h := range rec.all() {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
			t.Fatalf("client credentials reached the upstream: %v", h)
		}
		if h.Get(gateway.AssertionHeader) == "" {
			t.Fatal("a request reached the upstream without an assertion")
		}
		if h.Get(gateway.UserHeader) != "" || h.Get(gateway.ClerkTokenHeader) != "" {
			t.Fatal("optional identity headers sent while off")
		}
	}

	names := func(c *client.Client) []string {
		res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tool := range res.Tools {
			out = append(out, tool.Name)
		}
		return out
	}
	if got := strings.Join(names(alice), ","); strings.Contains(got, "admin-only") || !strings.Contains(got, "whoami") || !strings.Contains(got, "write") {
		t.Errorf("alice (no organisation) lists %s; want admin-only hidden, write (step-up) listed", got)
	}
	if got := strings.Join(names(bob), ","); !strings.Contains(got, "admin-only") {
		t.Errorf("bob (org:admin) lists %s; want admin-only", got)
	}

	before := calls.Load()
	_, err := callText(t, alice, "admin-only")
	if err == nil || !strings.Contains(err.Error(), "admin-only") {
		t.Errorf("alice calling admin-only: %v, want a JSON-RPC refusal", err)
	}
	if got, err := callText(t, bob, "admin-only"); err != nil || got != "admin-only ran" {
		t.Errorf("bob calling admin-only: %q %v", got, err)
	}
	if calls.Load() != before+1 {
		t.Errorf("upstream ran %d tool calls, want 1 (alice's refused call must not reach it)", calls.Load()-before)
	}
	logs := f.Logs()
	for _, want := range []string{`"tool":"admin-only","decision":"forbidden_org"`, `"user":"user_bob","client":"client_b","tool":"admin-only","decision":"allowed","upstream_status":200`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(logs, "clerk-secret-alice") || strings.Contains(logs, "token-alice") || strings.Contains(logs, "eyJ") {
		t.Error("a token or assertion reached the logs")
	}
}

// rpc posts one JSON-RPC body to the gateway.
func rpc(t *testing.T, url, token, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestGatewaySessionsBoundToUser: the upstream's session id reaches the
// client wrapped; the wrapped id works for its user only, and the upstream
// sees its own id back.
func TestGatewaySessionsBoundToUser(t *testing.T) {
	var frontURL string
	upURL, rec, _ := goUpstream(t, &frontURL)
	f := startFront(t, upURL, nil)
	frontURL = f.URL
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	resp, _ := rpc(t, f.URL+"/mcp", "token-alice", init, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	for _, tc := range []struct {
		token, sid string
		want       int
	}{
		{"token-alice", sid, http.StatusOK},
		{"token-bob", sid, http.StatusNotFound},                   // another user's session
		{"token-alice", "forged." + sid, http.StatusNotFound},     // not one the gateway bound
		{"token-alice", rawUpstreamSID(rec), http.StatusNotFound}, // the upstream's own id is not accepted
	} {
		resp, body := rpc(t, f.URL+"/mcp", tc.token, ping, map[string]string{"Mcp-Session-Id": tc.sid})
		if resp.StatusCode != tc.want {
			t.Errorf("%s with session %.20q: %d %s, want %d", tc.token, tc.sid, resp.StatusCode, body, tc.want)
		}
	}
	last := rec.all()[len(rec.all())-1]
	if got := last.Get("Mcp-Session-Id"); got == "" || got == sid {
		t.Errorf("upstream got session %q; want its own id, not the wrapped %q", got, sid)
	}
}

// rawUpstreamSID is the session id the upstream minted, as it saw it on the
// latest request that carried one.
func rawUpstreamSID(s *seen) string {
	for _, h := range s.all() {
		if v := h.Get("Mcp-Session-Id"); v != "" {
			return v
		}
	}
	return "mcp-session-unknown"
}

type rpcErrBody struct {
	ID    json.RawMessage `json:"id"`
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestGatewayUpstreamFaults: whatever goes wrong upstream, the client gets a
// JSON-RPC error with 502 or 504, never a hang and never a 500.
func TestGatewayUpstreamFaults(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/mcp"
	down.Close()
	// Reads the body first: only then does the server notice the gateway
	// hanging up (and cancel r's context).
	block := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}
	for _, tc := range []struct {
		name     string
		url      string
		handler  http.HandlerFunc
		status   int
		contains string
	}{
		{"down", downURL, nil, http.StatusBadGateway, "cannot be reached"},
		{"slow", "", block, http.StatusGatewayTimeout, "did not answer in time"},
		{"garbage content type", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>login</html>")
		}, http.StatusBadGateway, "not MCP"},
		{"garbage json", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":`)
		}, http.StatusBadGateway, "not JSON-RPC"},
		{"401", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://upstream/prm"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, http.StatusBadGateway, "refused the gateway (HTTP 401)"},
		{"403", "", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, http.StatusBadGateway, "HTTP 403"},
		{"500", "", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, http.StatusBadGateway, "HTTP 500"},
		// A status the client acts on (404: start a new session) is kept,
		// its plain-text body made JSON-RPC.
		{"404 plain text", "", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "Invalid session ID", http.StatusNotFound) },
			http.StatusNotFound, "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.handler != nil {
				up := httptest.NewServer(tc.handler)
				t.Cleanup(up.Close)
				url = up.URL + "/mcp"
			}
			f := startFront(t, url, func(c *gateway.Config) { c.HeaderTimeout = 300 * time.Millisecond })
			resp, body := rpc(t, f.URL+"/mcp", "token-alice", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`, nil)
			var e rpcErrBody
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != tc.status || e.Error.Code != -32010 || string(e.ID) != "7" || !strings.Contains(e.Error.Message, tc.contains) {
				t.Errorf("%d %s; want %d, code -32010, id 7, message with %q", resp.StatusCode, body, tc.status, tc.contains)
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Error("an upstream challenge reached the client")
			}
			if !strings.Contains(f.Logs(), `"tool":"echo","decision":"allowed"`) {
				t.Error("no audit line for the failed call")
			}
		})
	}
}

// TestGatewayRefusesBeforeUpstream: what the gateway refuses itself never
// reaches the upstream.
func TestGatewayRefusesBeforeUpstream(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	t.Cleanup(up.Close)
	f := startFront(t, up.URL+"/mcp", nil)
	for _, tc := range []struct {
		name, token, body string
		hdr               map[string]string
		status, code      int
		challenge         string
	}{
		{"step-up", "token-alice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write"}}`, nil,
			http.StatusForbidden, 0, `error="insufficient_scope"`},
		{"org role", "token-alice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin-only"}}`, nil,
			http.StatusOK, -32003, ""},
		{"org role in a batch", "token-alice", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin-only"}}]`, nil,
			http.StatusOK, 0, ""},
		{"header mismatch", "token-alice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "whoami"},
			http.StatusBadRequest, -32020, ""},
		{"missing Mcp-Method", "token-alice", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			map[string]string{"MCP-Protocol-Version": "2026-07-28"}, http.StatusBadRequest, -32020, ""},
		{"not JSON", "token-alice", `hello`, nil, http.StatusBadRequest, -32700, ""},
		{"no token", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, http.StatusUnauthorized, 0, `resource_metadata=`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			resp, body := rpc(t, f.URL+"/mcp", tc.token, tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.code != 0 {
				var e rpcErrBody
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tc.code {
					t.Errorf("body %s, want JSON-RPC code %d", body, tc.code)
				}
			}
			if tc.challenge != "" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want %s", resp.Header.Get("WWW-Authenticate"), tc.challenge)
			}
			if hits.Load() != before {
				t.Error("the upstream was reached")
			}
		})
	}
}

// sseUpstream answers every POST with an event stream whose events the test
// releases one at a time, and reports when the upstream request is cancelled.
type sseUpstream struct {
	release   chan string // each value is one event's data
	cancelled chan struct{}
}

func (s *sseUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case data, ok := <-s.release:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: message\nid: e1\ndata: %s\n\n", data)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			close(s.cancelled)
			return
		}
	}
}

func openStream(t *testing.T, ctx context.Context, url, body string, hdr map[string]string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer token-alice")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

// readEvent reads one SSE event (up to its blank line) and returns its data.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return data
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
	}
}

// TestGatewayStreamsEventByEvent: each upstream event reaches the client
// before the next exists (nothing buffered whole), tools/list answers inside
// the stream are filtered and marked private under 2026-07-28, and a client
// that goes away cancels the upstream request.
func TestGatewayStreamsEventByEvent(t *testing.T) {
	up := &sseUpstream{release: make(chan string), cancelled: make(chan struct{})}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	f := startFront(t, srv.URL+"/mcp", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, br := openStream(t, ctx, f.URL+"/mcp", `{"jsonrpc":"2.0","id":"L","method":"tools/list"}`,
		map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	progress := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`
	up.release <- progress
	if got := readEvent(t, br); got != progress {
		t.Fatalf("first event %s, want the progress notification untouched", got)
	}
	up.release <- `{"jsonrpc":"2.0","id":"L","result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"admin-only","inputSchema":{"type":"object"}}]}}`
	var list struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			CacheScope string `json:"cacheScope"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(readEvent(t, br)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Result.Tools) != 1 || list.Result.Tools[0].Name != "echo" || list.Result.CacheScope != "private" {
		t.Errorf("filtered list %+v; want only echo, cacheScope private", list.Result)
	}
	cancel()
	select {
	case <-up.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request outlived the client")
	}
}

// TestGatewayJSONListFiltered: the same filtering on a JSON answer; an older
// protocol gets no cacheScope.
func TestGatewayJSONListFiltered(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "upstream=1")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"admin-only"},{"name":"echo"},{"name":"write"}],"nextCursor":"c2"}}`)
	}))
	t.Cleanup(up.Close)
	f := startFront(t, up.URL+"/mcp", nil)
	resp, body := rpc(t, f.URL+"/mcp", "token-alice", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, map[string]string{"MCP-Protocol-Version": "2025-11-25"})
	want := `{"id":3,"jsonrpc":"2.0","result":{"nextCursor":"c2","tools":[{"name":"echo"},{"name":"write"}]}}`
	if resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("%d %s\nwant %s", resp.StatusCode, body, want)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("an upstream cookie reached the client")
	}
}

// TestGatewayOptionalHeaders: the plain identity headers and the Clerk token
// are sent only when configured, and a client cannot set them itself.
func TestGatewayOptionalHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(up.Close)
	notif := `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	spoof := map[string]string{gateway.UserHeader: "user_admin", gateway.ClerkTokenHeader: "spoofed", gateway.AssertionHeader: "spoofed"}
	for _, on := range []bool{false, true} {
		f := startFront(t, up.URL+"/mcp", func(c *gateway.Config) { c.ForwardUserHeaders, c.ForwardClerkToken = on, on })
		resp, _ := rpc(t, f.URL+"/mcp", "token-alice", notif, spoof)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
		h := <-got
		wantUser, wantToken := "", ""
		if on {
			wantUser, wantToken = "user_alice", "clerk-secret-alice"
		}
		if h.Get(gateway.UserHeader) != wantUser || h.Get(gateway.ClerkTokenHeader) != wantToken || h.Get(gateway.AssertionHeader) == "spoofed" {
			t.Errorf("on=%t: user %q token %q assertion spoofed=%t", on, h.Get(gateway.UserHeader), h.Get(gateway.ClerkTokenHeader), h.Get(gateway.AssertionHeader) == "spoofed")
		}
	}
}

// TestGatewayGetAndDelete: a GET event stream and a DELETE (answered 200
// with no body and no content type, as server-everything does) pass through.
func TestGatewayGetAndDelete(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n")
		case http.MethodDelete:
			w.(http.Flusher).Flush() // chunked, no length, no type
		}
	}))
	t.Cleanup(up.Close)
	f := startFront(t, up.URL+"/mcp", nil)
	for _, tc := range []struct {
		method string
		status int
		body   string
	}{
		{http.MethodGet, http.StatusOK, "notifications/tools/list_changed"},
		{http.MethodDelete, http.StatusOK, ""},
		{http.MethodPut, http.StatusMethodNotAllowed, "method not allowed"},
	} {
		req, _ := http.NewRequest(tc.method, f.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer token-alice")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.method, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

// TestGateway2026 speaks protocol 2026-07-28 (no initialize, no session;
// Mcp-Method / Mcp-Name headers) through the gateway to an mcp-go upstream:
// the call reaches the right user, and the filtered tools/list is marked
// cacheScope "private".
func TestGateway2026(t *testing.T) {
	var frontURL string
	upURL, _, _ := goUpstream(t, &frontURL)
	f := startFront(t, upURL, nil)
	frontURL = f.URL
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`
	h := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "whoami"}
	resp, body := rpc(t, f.URL+"/mcp", "token-alice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},`+meta+`}}`, h)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "user_alice alice@example.com") || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("tools/call: %d %s (session %q)", resp.StatusCode, body, resp.Header.Get("Mcp-Session-Id"))
	}
	h = map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
	resp, body = rpc(t, f.URL+"/mcp", "token-alice", `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{`+meta+`}}`, h)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"cacheScope":"private"`) || strings.Contains(body, "admin-only") || !strings.Contains(body, `"name":"whoami"`) {
		t.Errorf("tools/list: %d %s", resp.StatusCode, body)
	}
}
