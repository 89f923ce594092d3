package mcpserver

// Mcp-Session-Id is bound to the user who created the session (MCP security
// best practices: session ids are not credentials, and one user's id must be
// useless to another), on every method of the streamable HTTP transport.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// twoUsers accepts one token per user.
type twoUsers struct{}

func (twoUsers) Verify(_ context.Context, token string) (*verifier.Identity, error) {
	switch token {
	case "token-alice":
		return &verifier.Identity{UserID: "user_alice", ClientID: "mcp_a", Scopes: []string{"openid"}}, nil
	case "token-bob":
		return &verifier.Identity{UserID: "user_bob", ClientID: "mcp_b", Scopes: []string{"openid"}}, nil
	}
	return nil, errors.New("invalid token")
}

func newSessionTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = st.Close() })
	return newSessionServer(t, st, nil)
}

// newSessionServer serves /mcp keeping terminated sessions in st, on the
// clock now (nil: the real one). Servers over one store are replicas.
func newSessionServer(t *testing.T, st store.Cache, now func() time.Time) *httptest.Server {
	t.Helper()
	return serveMCP(t, Config{Scopes: []string{"openid"}},
		Deps{Verifier: twoUsers{}, Sessions: st, Secret: []byte("session-test-secret-0123456789abcdef"), Now: now}, nil)
}

// serveMCP serves /mcp built from cfg (its issuer and resource set to the
// test server's) and d; setup adds tools before it starts.
func serveMCP(t *testing.T, cfg Config, d Deps, setup func(*Server)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg.Issuer, cfg.Resource = base, base+"/mcp"
	s := New(cfg, d)
	if setup != nil {
		setup(s)
	}
	r := chi.NewRouter()
	s.Mount(r)
	srv.Config.Handler = r
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// send issues one request to /mcp and returns the status and session header;
// a stream that opens is cut off after its headers.
func send(t *testing.T, base, method, token, session, body string) (int, string) {
	t.Helper()
	a := rpc(t, base, method, token, session, body)
	return a.status, a.session
}

const (
	rpcInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	rpcList = `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
)

func TestSessionBoundToUser(t *testing.T) {
	srv := newSessionTestServer(t)
	status, session := send(t, srv.URL, http.MethodPost, "token-alice", "", rpcInit)
	if status != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d session=%q", status, session)
	}
	if status, _ := send(t, srv.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusOK {
		t.Fatalf("alice in her own session: %d", status)
	}
	for _, tc := range []struct{ method, body string }{
		{http.MethodPost, rpcList},
		{http.MethodGet, ""}, // the server-to-client stream: mcp-go itself does not check the id here
		{http.MethodDelete, ""},
	} {
		if status, _ := send(t, srv.URL, tc.method, "token-bob", session, tc.body); status != http.StatusNotFound {
			t.Errorf("%s with bob's token and alice's session: %d, want 404", tc.method, status)
		}
	}
	// Forged ids (alice's nonce with a made-up MAC, garbage) are refused too.
	for _, forged := range []string{session + "x", "nonce.bWFj", "no-dot"} {
		if status, _ := send(t, srv.URL, http.MethodGet, "token-alice", forged, ""); status != http.StatusNotFound {
			t.Errorf("GET with forged session %q: %d, want 404", forged, status)
		}
	}
	if status, _ := send(t, srv.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusOK {
		t.Fatalf("alice's session after bob's attempts: %d", status)
	}
	// Alice can end her own session; afterwards it is refused.
	if status, _ := send(t, srv.URL, http.MethodDelete, "token-alice", session, ""); status >= 300 {
		t.Fatalf("alice deleting her session: %d", status)
	}
	if status, _ := send(t, srv.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusNotFound {
		t.Fatalf("a terminated session: %d, want 404", status)
	}
}
