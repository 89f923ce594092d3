package verifier_test

// Session-bound grants (AUTH_MODE=app) against the real fake Clerk's
// Backend API sessions: the hot path asks Clerk about the session, once per
// cache TTL however many requests arrive, and ends the grant with it.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

type sessionEnv struct {
	v     *verifier.Verifier
	ck    *mockclerk.Running
	st    *memstore.Store
	clock *testclock.Clock
	sid   string
	token string // the proxy's access token for the session-bound grant
}

func newSessionEnv(t *testing.T) *sessionEnv {
	t.Helper()
	clock := testclock.New(time.Now())
	ck, err := mockclerk.Listen("127.0.0.1:0", mockclerk.Config{ClientID: cmAppID, ClientSecret: cmAppSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	user := mockclerk.DefaultUsers()[0].ID
	stok, err := ck.NewSession(user)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := clerk.ParseSessionToken(stok)
	if err != nil {
		t.Fatal(err)
	}
	cl := clerk.New(context.Background(), clerk.Config{Issuer: ck.URL, SecretKey: ck.Config().SecretKey, APIURL: ck.URL})
	st := memstore.New(memstore.Options{Now: clock.Now})
	t.Cleanup(func() { st.Close() })
	keys, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateClient(ctx, store.Client{ID: "mcp_c", RedirectURIs: []string{"http://127.0.0.1/cb"}}, 0); err != nil {
		t.Fatal(err)
	}
	const gid = "grantSession0123456789"
	if err := st.CreateGrant(ctx, store.Grant{ID: gid, UserID: user, ClientID: "mcp_c", Active: true, ClerkSession: sc.SessionID}, 0); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	at, err := keys.Sign(tokens.AccessClaims{Issuer: "https://as.example", Audience: "https://as.example/mcp", Subject: user,
		ClientID: "mcp_c", GrantID: gid, ID: "j1", Scope: "openid profile", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(verifier.Config{Issuer: "https://as.example", Resource: "https://as.example/mcp", IntrospectionTTL: time.Minute, UserinfoTTL: time.Minute},
		verifier.Deps{Keys: keys, Store: st, Clerk: cl, Secret: []byte(cacheSecret), Now: clock.Now, Sessions: cl})
	if err != nil {
		t.Fatal(err)
	}
	return &sessionEnv{v: v, ck: ck, st: st, clock: clock, sid: sc.SessionID, token: at}
}

func (e *sessionEnv) sessionCalls() int { return e.ck.Stats()["/v1/sessions/"+e.sid] }

// TestSessionGrantCallsBounded: 1,000 concurrent first uses make one
// session lookup; the answer is then trusted for the cache TTL.
// Not parallel: it counts one fake's calls.
func TestSessionGrantCallsBounded(t *testing.T) {
	e := newSessionEnv(t)
	concurrently(t, 1000, func() error {
		id, err := e.v.Verify(context.Background(), e.token)
		if err == nil && (id.UserID != mockclerk.DefaultUsers()[0].ID || id.ClientID != "mcp_c" || id.Email != mockclerk.DefaultUsers()[0].Email) {
			err = errors.New("wrong identity")
		}
		return err
	})
	t.Logf("calls to the fake Clerk for 1000 concurrent first uses: %v", e.ck.Stats())
	if n := e.sessionCalls(); n != 1 {
		t.Fatalf("%d session lookups, want 1", n)
	}
	if n := e.ck.Stats()["/v1/users/"+mockclerk.DefaultUsers()[0].ID]; n != 1 {
		t.Fatalf("%d Backend API user lookups for the profile, want 1", n)
	}
	if _, err := e.v.Verify(context.Background(), e.token); err != nil || e.sessionCalls() != 1 {
		t.Fatalf("cached: %v, %d lookups", err, e.sessionCalls())
	}
}

// TestSessionGrantEndsWithSession: once Clerk reports the session over (after
// the cache TTL), the request is refused and the grant deleted; while Clerk
// cannot answer, the answer is 503, and the grant stays.
func TestSessionGrantEndsWithSession(t *testing.T) {
	e := newSessionEnv(t)
	ctx := context.Background()
	e.ck.SetFault(mockclerk.Fault{Endpoint: "/v1/sessions/" + e.sid, Status: 503})
	if _, err := e.v.Verify(ctx, e.token); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("Clerk down: %v, want ErrUnavailable", err)
	}
	e.ck.ClearFaults()
	if _, err := e.v.Verify(ctx, e.token); err != nil {
		t.Fatal(err)
	}
	e.ck.RevokeSession(e.sid)
	e.clock.Advance(61 * time.Second)
	if _, err := e.v.Verify(ctx, e.token); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Fatalf("after the session ended: %v, want ErrInvalidToken", err)
	}
	if _, err := e.st.GetGrant(ctx, "grantSession0123456789"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the grant outlived its session: %v", err)
	}
}
