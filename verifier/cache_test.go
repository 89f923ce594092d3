package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/vault"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// cacheClerk answers introspection with a settable result and counts calls.
type cacheClerk struct {
	mu         sync.Mutex
	answer     clerk.Introspection
	calls      int
	refreshErr error // what a refresh answers (default: a plain failure)
	// refreshDeadline is the deadline of the last refresh's context (zero: none).
	refreshDeadline time.Time
}

func (c *cacheClerk) set(in clerk.Introspection) { c.mu.Lock(); c.answer = in; c.mu.Unlock() }
func (c *cacheClerk) n() int                     { c.mu.Lock(); defer c.mu.Unlock(); return c.calls }

func (c *cacheClerk) Introspect(context.Context, string) (clerk.Introspection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.answer, nil
}
func (c *cacheClerk) UserInfo(context.Context, string) (clerk.UserInfo, error) {
	return clerk.UserInfo{Subject: "user_1"}, nil
}
func (c *cacheClerk) Refresh(ctx context.Context, _ string) (clerk.TokenSet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshDeadline, _ = ctx.Deadline()
	if c.refreshErr != nil {
		return clerk.TokenSet{}, c.refreshErr
	}
	return clerk.TokenSet{}, errors.New("no refresh in this test")
}

// The grant and master secret of cacheEnv.
const (
	cacheGrantID = "grant0123456789abcdef"
	cacheSecret  = "cache-test-proxy-secret-0123456789abcdef"
)

// cacheEnv is a verifier over an in-memory store on a fake clock, with one
// live grant and a proxy access token for it.
func cacheEnv(t *testing.T) (*verifier.Verifier, *cacheClerk, *testclock.Clock, *memstore.Store, string) {
	t.Helper()
	return cacheEnvWith(t, nil, verifier.Config{})
}

// cacheEnvWith is cacheEnv with the verifier's view of the store wrapped
// (nil: the store itself) and cfg's refresh settings applied.
func cacheEnvWith(t *testing.T, wrap func(verifier.Store) verifier.Store, cfg verifier.Config) (*verifier.Verifier, *cacheClerk, *testclock.Clock, *memstore.Store, string) {
	t.Helper()
	return cacheEnvMetrics(t, wrap, cfg, nil)
}

// cacheEnvMetrics is cacheEnvWith counting into m (nil: its own).
func cacheEnvMetrics(t *testing.T, wrap func(verifier.Store) verifier.Store, cfg verifier.Config, m *metrics.Metrics) (*verifier.Verifier, *cacheClerk, *testclock.Clock, *memstore.Store, string) {
	t.Helper()
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := memstore.New(memstore.Options{Now: clock.Now})
	keys, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(cacheSecret)
	vlt, err := vault.New(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	const gid = cacheGrantID
	sealed, err := vlt.Seal(gid, clerk.TokenSet{AccessToken: "oat_cache_test_token_0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(context.Background(), store.Client{ID: "mcp_c", RedirectURIs: []string{"http://127.0.0.1/cb"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(context.Background(), store.Grant{ID: gid, UserID: "user_1", ClientID: "mcp_c", Active: true, Upstream: sealed}, 0); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	at, err := keys.Sign(tokens.AccessClaims{Issuer: "https://as.example", Audience: "https://as.example/mcp", Subject: "user_1",
		ClientID: "mcp_c", GrantID: gid, ID: "j1", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(24 * time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	ck := &cacheClerk{}
	var vst verifier.Store = st
	if wrap != nil {
		vst = wrap(st)
	}
	cfg.Issuer, cfg.Resource, cfg.ClerkClientID = "https://as.example", "https://as.example/mcp", "ck"
	cfg.IntrospectionTTL, cfg.UserinfoTTL = time.Minute, time.Minute
	v, err := verifier.New(cfg, verifier.Deps{Keys: keys, Store: vst, Clerk: ck, Secret: secret, Now: clock.Now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return v, ck, clock, st, at
}

// TestIntrospectionCacheBoundedByExpiry: Clerk's "active" is trusted for
// INTROSPECTION_CACHE_TTL, but never past the token's own exp when Clerk
// states one (in-process and in the shared store alike).
func TestIntrospectionCacheBoundedByExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exp       time.Duration // from now; 0: Clerk states none
		stillHit  time.Duration // a lookup this much later is served from cache
		refetched time.Duration // a lookup this much later asks Clerk again
	}{
		{"exp before the TTL", 10 * time.Second, 5 * time.Second, 11 * time.Second},
		{"no exp: the TTL", 0, 30 * time.Second, 61 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ck, clock, _, at := cacheEnv(t)
			in := clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"}
			if tc.exp > 0 {
				in.Expiry = clock.Now().Add(tc.exp).Unix()
			}
			ck.set(in)
			start := clock.Now()
			if _, err := v.Verify(context.Background(), at); err != nil || ck.n() != 1 {
				t.Fatalf("first: %v, %d calls", err, ck.n())
			}
			clock.Advance(start.Add(tc.stillHit).Sub(clock.Now()))
			if _, err := v.Verify(context.Background(), at); err != nil || ck.n() != 1 {
				t.Fatalf("within the bound: %v, %d calls", err, ck.n())
			}
			clock.Advance(start.Add(tc.refetched).Sub(clock.Now()))
			if _, err := v.Verify(context.Background(), at); err != nil || ck.n() != 2 {
				t.Fatalf("past the bound: %v, %d calls (want Clerk asked again)", err, ck.n())
			}
		})
	}
}

// TestInactiveNotCachedAndRevocationEvicts: Clerk's "not active" is never
// cached (the next request asks again, and a token Clerk reactivates works at
// once), and a revoked grant is refused at once on this replica.
func TestInactiveNotCachedAndRevocationEvicts(t *testing.T) {
	v, ck, _, st, at := cacheEnv(t)
	ck.set(clerk.Introspection{Active: false})
	for i := 1; i <= 2; i++ {
		if _, err := v.Verify(context.Background(), at); !errors.Is(err, verifier.ErrInvalidToken) || ck.n() != i {
			t.Fatalf("inactive #%d: %v, %d calls", i, err, ck.n())
		}
	}
	ck.set(clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"})
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatalf("active again: %v", err)
	}
	id, _ := v.Verify(context.Background(), at)
	if err := st.DeleteGrant(context.Background(), id.GrantID); err != nil {
		t.Fatal(err)
	}
	v.GrantRevoked(id.GrantID)
	if _, err := v.Verify(context.Background(), at); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Fatalf("after revocation: %v", err)
	}
}

// TestRefreshRefusalEndsOnlyEndedSessions: when Clerk refuses to refresh an
// expired Clerk token, the grant ends only if Clerk says the session is over
// (invalid_grant). Clerk refusing the proxy itself (invalid_client, as after
// a botched secret rotation) answers 503 and keeps every grant, or one
// configuration slip would sign out every user.
func TestRefreshRefusalEndsOnlyEndedSessions(t *testing.T) {
	for _, tc := range []struct {
		code      string
		status    int
		want      error
		grantKept bool
	}{
		{"invalid_client", 401, verifier.ErrUnavailable, true},
		{"unauthorized_client", 400, verifier.ErrUnavailable, true},
		{"invalid_grant", 400, verifier.ErrInvalidToken, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			v, ck, clock, st, at := cacheEnv(t)
			ctx := context.Background()
			expireUpstream(t, st, clock)
			ck.mu.Lock()
			ck.refreshErr = &clerk.APIError{Endpoint: clerk.EPToken, Status: tc.status, Code: tc.code}
			ck.mu.Unlock()

			if _, err := v.Verify(ctx, at); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			_, err := st.GetGrant(ctx, cacheGrantID)
			if kept := err == nil; kept != tc.grantKept {
				t.Fatalf("grant kept = %v, want %v (%v)", kept, tc.grantKept, err)
			}
		})
	}
}

// expireUpstream makes the Clerk access token behind cacheEnv's grant expired
// (with a refresh token), so the next Verify refreshes it.
func expireUpstream(t *testing.T, st *memstore.Store, clock *testclock.Clock) {
	t.Helper()
	vlt, err := vault.New([]byte(cacheSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := vlt.Seal(cacheGrantID, clerk.TokenSet{AccessToken: "oat_cache_test_token_0123456789", RefreshToken: "rt_cache_test_0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateGrant(context.Background(), cacheGrantID, 0, func(g *store.Grant) error {
		g.Upstream, g.UpstreamExpiresAt = expired, clock.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestJWTCacheBounded: a verified proxy token is remembered for at most five
// minutes whatever its exp (so tokens abandoned at a refresh or revocation
// stop costing memory), then verified afresh, with the same answer.
func TestJWTCacheBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		advance time.Duration
		misses  float64 // JWT cache misses after the second Verify
	}{
		{"within five minutes: served from the cache", 5*time.Minute - time.Second, 1},
		{"at five minutes: verified again", 5 * time.Minute, 2},
		{"an hour later (the token lives a day): verified again", time.Hour, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			v, ck, clock, _, at := cacheEnvMetrics(t, nil, verifier.Config{}, m)
			ck.set(clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"})
			if _, err := v.Verify(context.Background(), at); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tc.advance)
			if _, err := v.Verify(context.Background(), at); err != nil {
				t.Fatalf("after %v: %v", tc.advance, err)
			}
			if got := jwtMisses(t, m); got != tc.misses {
				t.Fatalf("JWT cache misses: %v, want %v", got, tc.misses)
			}
		})
	}
}

// TestJWTCacheServesOnlyTheSameToken: the cache finds a token by its
// signature, but only the very token verified earlier is served from it. A
// cached token's signature under another header or payload (here: a longer
// life, another user) is a miss, verified afresh, and refused.
func TestJWTCacheServesOnlyTheSameToken(t *testing.T) {
	m := metrics.New()
	v, ck, _, _, at := cacheEnvMetrics(t, nil, verifier.Config{}, m)
	ck.set(clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"})
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(at, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, forged := range []string{
		parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"user_1"`), []byte(`"user_2"`), 1)) + "." + parts[2],
		parts[0] + "." + parts[1] + "x." + parts[2],
		"x." + parts[1] + "." + parts[2],
		parts[2],
	} {
		if _, err := v.Verify(context.Background(), forged); !errors.Is(err, verifier.ErrInvalidToken) {
			t.Errorf("the cached token's signature on %.40q...: %v, want ErrInvalidToken", forged, err)
		}
	}
	if got := jwtMisses(t, m); got != 5 {
		t.Errorf("JWT cache misses: %v, want 5 (the first use and each forgery)", got)
	}
	// The genuine token is still served from the cache.
	if _, err := v.Verify(context.Background(), at); err != nil || jwtMisses(t, m) != 5 {
		t.Errorf("the genuine token after the forgeries: %v, misses %v", err, jwtMisses(t, m))
	}
}

// TestGrantRevokedDropsOpenedTokens: a grant revoked on this replica is
// refused at once, and the Clerk tokens opened from it are not kept.
func TestGrantRevokedDropsOpenedTokens(t *testing.T) {
	v, ck, _, st, at := cacheEnv(t)
	ck.set(clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"})
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteGrant(context.Background(), cacheGrantID); err != nil {
		t.Fatal(err)
	}
	v.GrantRevoked(cacheGrantID)
	if _, err := v.Verify(context.Background(), at); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Fatalf("revoked grant: %v, want ErrInvalidToken", err)
	}
	if n := v.OpenedTokens(); n != 0 {
		t.Fatalf("%d opened token sets kept after the revocation", n)
	}
}

// jwtMisses reads the JWT cache's miss counter from m's registry.
func jwtMisses(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cache"] == "jwt" && labels["result"] == "miss" {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}
