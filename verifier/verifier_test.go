package verifier_test

// The hot path branch by branch, through fakes of the verifier's own Store
// and Clerk interfaces: each test sets up the one condition it is about and
// checks the outcome (identity, 401 or 503) and what was asked of Clerk and
// the store.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/vault"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

const (
	hotSecret   = "hot-path-test-proxy-secret-0123456789abcdef"
	hotGrant    = "grantHotPath0123456789"
	hotUser     = "user_hot"
	hotClient   = "mcp_hot"
	hotClerkApp = "clerk_app"
	hotToken    = "oat_hot_first"
	hotRefresh  = "rt_hot_first"
)

// fakeStore is verifier.Store over maps, with failures to order.
type fakeStore struct {
	mu      sync.Mutex
	grants  map[string]store.Grant
	clients map[string]bool
	cache   map[string][]byte
	locks   map[string]bool
	calls   map[string]int

	grantErr error // GetGrant fails with it
	lockErr  error // TryLock fails with it
	// onWait runs when TryLock finds the lock taken: another replica's
	// refresh, finishing (or not) while this one waits.
	onWait func(*fakeStore)
}

func newFakeStore() *fakeStore {
	return &fakeStore{grants: map[string]store.Grant{}, clients: map[string]bool{}, cache: map[string][]byte{},
		locks: map[string]bool{}, calls: map[string]int{}}
}

func (s *fakeStore) count(op string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[op] }

func (s *fakeStore) GetGrant(_ context.Context, id string) (store.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["GetGrant"]++
	if s.grantErr != nil {
		return store.Grant{}, s.grantErr
	}
	g, ok := s.grants[id]
	if !ok {
		return g, store.ErrNotFound
	}
	return g, nil
}

func (s *fakeStore) GetClient(_ context.Context, id string) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.clients[id] {
		return store.Client{}, store.ErrNotFound
	}
	return store.Client{ID: id}, nil
}

func (s *fakeStore) UpdateGrant(_ context.Context, id string, _ time.Duration, fn func(*store.Grant) error) (store.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return g, store.ErrNotFound
	}
	if err := fn(&g); err != nil {
		return g, err
	}
	s.grants[id] = g
	return g, nil
}

func (s *fakeStore) DeleteGrant(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, id)
	return nil
}

func (s *fakeStore) GetCache(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cache[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (s *fakeStore) SetCache(_ context.Context, key string, value []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache[key] = value
	return nil
}

func (s *fakeStore) DeleteCache(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, key)
	return nil
}

func (s *fakeStore) TryLock(_ context.Context, name string, _ time.Duration) (func(context.Context) error, bool, error) {
	s.mu.Lock()
	if s.lockErr != nil {
		defer s.mu.Unlock()
		return nil, false, s.lockErr
	}
	if s.locks[name] {
		wait := s.onWait
		s.mu.Unlock()
		if wait != nil {
			wait(s)
		}
		return nil, false, nil
	}
	defer s.mu.Unlock()
	s.locks[name] = true
	return func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.locks, name)
		return nil
	}, true, nil
}

// fakeClerk is verifier.Clerk answering per token, with failures to order.
type fakeClerk struct {
	mu         sync.Mutex
	intro      map[string]clerk.Introspection // by access token; absent: inactive
	introErr   error
	info       clerk.UserInfo
	infoErr    error
	refreshed  clerk.TokenSet // what a refresh returns
	refreshErr error
	calls      map[string]int
}

func (c *fakeClerk) count(op string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls[op] }

func (c *fakeClerk) Introspect(_ context.Context, token string) (clerk.Introspection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["Introspect"]++
	if c.introErr != nil {
		return clerk.Introspection{}, c.introErr
	}
	return c.intro[token], nil
}

func (c *fakeClerk) UserInfo(context.Context, string) (clerk.UserInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["UserInfo"]++
	return c.info, c.infoErr
}

func (c *fakeClerk) Refresh(_ context.Context, rt string) (clerk.TokenSet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["Refresh"]++
	if c.refreshErr != nil {
		return clerk.TokenSet{}, c.refreshErr
	}
	return c.refreshed, nil
}

// hotEnv is a verifier over the fakes with one live grant (hotGrant, its
// Clerk token hotToken good for an hour) and a proxy access token for it.
type hotEnv struct {
	st    *fakeStore
	ck    *fakeClerk
	clock *testclock.Clock
	vault *vault.Vault
	keys  *tokens.KeySet
	cfg   verifier.Config
	token string
}

func newHotEnv(t *testing.T) *hotEnv {
	t.Helper()
	clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	keys, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	vlt, err := vault.New([]byte(hotSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &hotEnv{st: newFakeStore(), clock: clock, vault: vlt, keys: keys,
		ck: &fakeClerk{calls: map[string]int{}, intro: map[string]clerk.Introspection{},
			info: clerk.UserInfo{Subject: hotUser, Email: "ada@example.com", GivenName: "Ada", FamilyName: "Lovelace", OrgID: "org_1", OrgSlug: "acme"}},
		cfg: verifier.Config{Issuer: "https://as.example", Resource: "https://as.example/mcp", ClerkClientID: hotClerkApp,
			RequiredScopes: []string{"profile"}, IntrospectionTTL: time.Minute, UserinfoTTL: time.Minute, RefreshWait: time.Second}}
	e.ck.intro[hotToken] = e.active()
	e.st.clients[hotClient] = true
	e.putGrant(t, func(*store.Grant) {})
	now := clock.Now()
	e.token, err = keys.Sign(tokens.AccessClaims{Issuer: e.cfg.Issuer, Audience: e.cfg.Resource, Subject: hotUser, ClientID: hotClient,
		GrantID: hotGrant, Scope: "openid profile", ID: "jti1", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// active is Clerk's answer for a good token of ours.
func (e *hotEnv) active() clerk.Introspection {
	return clerk.Introspection{Active: true, ClientID: hotClerkApp, Subject: hotUser, Scope: "openid profile email", OrgID: "org_1",
		Expiry: e.clock.Now().Add(time.Hour).Unix()}
}

// putGrant stores the live grant as change leaves it.
func (e *hotEnv) putGrant(t *testing.T, change func(*store.Grant)) {
	t.Helper()
	e.putGrantTokens(t, clerk.TokenSet{AccessToken: hotToken, RefreshToken: hotRefresh}, e.clock.Now().Add(time.Hour), change)
}

// putGrantTokens stores the grant holding ts, expiring upstream at exp.
func (e *hotEnv) putGrantTokens(t *testing.T, ts clerk.TokenSet, exp time.Time, change func(*store.Grant)) {
	t.Helper()
	sealed, err := e.vault.Seal(hotGrant, ts)
	if err != nil {
		t.Fatal(err)
	}
	g := store.Grant{ID: hotGrant, UserID: hotUser, ClientID: hotClient, Active: true, Upstream: sealed, UpstreamExpiresAt: exp}
	change(&g)
	e.st.mu.Lock()
	e.st.grants[hotGrant] = g
	e.st.mu.Unlock()
}

func (e *hotEnv) verifier(t *testing.T) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(e.cfg, verifier.Deps{Keys: e.keys, Store: e.st, Clerk: e.ck, Secret: []byte(hotSecret), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// outcome names Verify's result as the bearer middleware maps it.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, verifier.ErrUnavailable):
		return "503"
	case errors.Is(err, verifier.ErrInvalidToken):
		return "401"
	default:
		return "other: " + err.Error()
	}
}

// TestVerifyBranches: one condition each, the outcome the bearer middleware
// turns into 200, 401 or 503.
func TestVerifyBranches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *hotEnv)
		token func(e *hotEnv) string // default: the good token
		want  string
	}{
		{name: "all good", want: "ok"},
		{name: "not a JWT", token: func(*hotEnv) string { return "garbage" }, want: "401"},
		{name: "JWT of another issuer", token: func(e *hotEnv) string {
			tok, _ := e.keys.Sign(tokens.AccessClaims{Issuer: "https://evil.example", Audience: e.cfg.Resource, Subject: hotUser,
				ClientID: hotClient, GrantID: hotGrant, Expiry: e.clock.Now().Add(time.Hour).Unix()})
			return tok
		}, want: "401"},
		{name: "JWT expired", setup: func(_ *testing.T, e *hotEnv) { e.clock.Advance(2 * time.Hour) }, want: "401"},
		{name: "grant gone", setup: func(_ *testing.T, e *hotEnv) { delete(e.st.grants, hotGrant) }, want: "401"},
		{name: "grant not yet active", setup: func(t *testing.T, e *hotEnv) { e.putGrant(t, func(g *store.Grant) { g.Active = false }) }, want: "401"},
		{name: "grant of another client", setup: func(t *testing.T, e *hotEnv) {
			e.putGrant(t, func(g *store.Grant) { g.ClientID = "mcp_other"; e.st.clients["mcp_other"] = true })
		}, want: "401"},
		{name: "grant of another user", setup: func(t *testing.T, e *hotEnv) { e.putGrant(t, func(g *store.Grant) { g.UserID = "user_other" }) }, want: "401"},
		{name: "client registration gone", setup: func(_ *testing.T, e *hotEnv) { delete(e.st.clients, hotClient) }, want: "401"},
		{name: "Clerk tokens unreadable", setup: func(t *testing.T, e *hotEnv) { e.putGrant(t, func(g *store.Grant) { g.Upstream = []byte("junk") }) }, want: "401"},
		{name: "store unavailable", setup: func(_ *testing.T, e *hotEnv) { e.st.grantErr = errors.New("connection refused") }, want: "503"},
		{name: "Clerk inactive, refresh refused", setup: func(_ *testing.T, e *hotEnv) {
			delete(e.ck.intro, hotToken)
			e.ck.refreshErr = &clerk.APIError{Endpoint: "token", Status: http.StatusBadRequest, Code: "invalid_grant"}
		}, want: "401"},
		{name: "Clerk inactive, no refresh token", setup: func(t *testing.T, e *hotEnv) {
			delete(e.ck.intro, hotToken)
			e.putGrantTokens(t, clerk.TokenSet{AccessToken: hotToken}, e.clock.Now().Add(time.Hour), func(*store.Grant) {})
		}, want: "401"},
		{name: "Clerk token of another application", setup: func(_ *testing.T, e *hotEnv) {
			in := e.active()
			in.ClientID = "other_app"
			e.ck.intro[hotToken] = in
		}, want: "401"},
		{name: "Clerk token for our application by audience", setup: func(_ *testing.T, e *hotEnv) {
			in := e.active()
			in.ClientID, in.Audience = "", []string{"api", hotClerkApp}
			e.ck.intro[hotToken] = in
		}, want: "ok"},
		{name: "Clerk token missing a required scope", setup: func(_ *testing.T, e *hotEnv) {
			in := e.active()
			in.Scope = "openid email"
			e.ck.intro[hotToken] = in
		}, want: "401"},
		{name: "Clerk token of another user", setup: func(_ *testing.T, e *hotEnv) {
			in := e.active()
			in.Subject = "user_other"
			e.ck.intro[hotToken] = in
		}, want: "401"},
		{name: "Clerk unavailable", setup: func(_ *testing.T, e *hotEnv) {
			e.ck.introErr = &clerk.APIError{Endpoint: "token_info", Status: http.StatusBadGateway}
		}, want: "503"},
		{name: "Clerk unreachable", setup: func(_ *testing.T, e *hotEnv) { e.ck.introErr = clerk.ErrUnavailable }, want: "503"},
		{name: "Clerk refuses the proxy's credentials", setup: func(_ *testing.T, e *hotEnv) {
			e.ck.introErr = &clerk.APIError{Endpoint: "token_info", Status: http.StatusUnauthorized, Code: "invalid_client"}
		}, want: "503"},
		{name: "userinfo failing", setup: func(_ *testing.T, e *hotEnv) { e.ck.infoErr = clerk.ErrUnavailable }, want: "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHotEnv(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			token := e.token
			if tc.token != nil {
				token = tc.token(e)
			}
			id, err := e.verifier(t).Verify(context.Background(), token)
			if got := outcome(err); got != tc.want {
				t.Fatalf("Verify: %s (%v), want %s", got, err, tc.want)
			}
			if err == nil && (id.UserID != hotUser || id.ClientID != hotClient || id.GrantID != hotGrant || id.ClerkToken != hotToken ||
				!slices.Equal(id.Scopes, []string{"openid", "profile"})) {
				t.Fatalf("identity %+v", id)
			}
			if err != nil && id != nil {
				t.Fatalf("an identity with an error: %+v", id)
			}
		})
	}
}

// TestUserinfoEnrichesOrIsSkipped: userinfo fills in the profile; when it
// fails the request goes on without it.
func TestUserinfoEnrichesOrIsSkipped(t *testing.T) {
	t.Parallel()
	e := newHotEnv(t)
	id, err := e.verifier(t).Verify(context.Background(), e.token)
	if err != nil || !id.Enriched || id.Email != "ada@example.com" || id.Name != "Ada Lovelace" || id.OrgID != "org_1" || id.OrgSlug != "acme" {
		t.Fatalf("%+v %v", id, err)
	}
	e = newHotEnv(t)
	e.ck.infoErr = errors.New("userinfo down")
	id, err = e.verifier(t).Verify(context.Background(), e.token)
	if err != nil || id.Enriched || id.Email != "" || id.OrgID != "org_1" {
		t.Fatalf("without userinfo: %+v %v (the org comes from introspection)", id, err)
	}
}

// TestVerifyCaches: a second request is answered from this replica's
// caches (no store read of the grant, no Clerk call); another replica finds
// Clerk's answers in the shared store; a revoked grant is dropped at once.
func TestVerifyCaches(t *testing.T) {
	t.Parallel()
	e := newHotEnv(t)
	v := e.verifier(t)
	ctx := context.Background()
	for range 3 {
		if _, err := v.Verify(ctx, e.token); err != nil {
			t.Fatal(err)
		}
	}
	if e.st.count("GetGrant") != 1 || e.ck.count("Introspect") != 1 || e.ck.count("UserInfo") != 1 {
		t.Fatalf("store reads %d, introspections %d, userinfo %d: want one each", e.st.count("GetGrant"), e.ck.count("Introspect"), e.ck.count("UserInfo"))
	}
	if _, err := e.verifier(t).Verify(ctx, e.token); err != nil {
		t.Fatal(err)
	}
	if e.ck.count("Introspect") != 1 || e.ck.count("UserInfo") != 1 {
		t.Fatal("another replica asked Clerk again instead of using the shared cache")
	}
	delete(e.st.grants, hotGrant)
	if _, err := v.Verify(ctx, e.token); err != nil {
		t.Fatal("the grant cache was not used within its TTL")
	}
	v.GrantRevoked(hotGrant)
	if _, err := v.Verify(ctx, e.token); outcome(err) != "401" {
		t.Fatalf("after GrantRevoked: %v, want 401", err)
	}
}

// TestUpstreamRefresh: Clerk's token has expired. One replica refreshes
// (won the lock); one that lost the lock uses the winner's result from the
// store, or gives up with 503 if it never comes; Clerk refusing the session
// ends the grant, Clerk refusing the proxy or being down does not.
func TestUpstreamRefresh(t *testing.T) {
	t.Parallel()
	const fresh = "oat_hot_refreshed"
	for _, tc := range []struct {
		name         string
		setup        func(t *testing.T, e *hotEnv)
		want         string
		refreshes    int  // calls to Clerk's refresh
		grantRemains bool // the grant is still stored
	}{
		{name: "won the lock", want: "ok", refreshes: 1, grantRemains: true},
		{name: "lost the lock, the winner finishes", setup: func(t *testing.T, e *hotEnv) {
			e.st.locks["clerk-refresh:"+hotGrant] = true
			e.st.onWait = func(*fakeStore) {
				e.putGrantTokens(t, clerk.TokenSet{AccessToken: fresh, RefreshToken: "rt_2"}, e.clock.Now().Add(time.Hour), func(*store.Grant) {})
			}
		}, want: "ok", refreshes: 0, grantRemains: true},
		{name: "lost the lock, the winner never finishes", setup: func(_ *testing.T, e *hotEnv) {
			e.st.locks["clerk-refresh:"+hotGrant] = true
			e.cfg.RefreshWait = 300 * time.Millisecond
		}, want: "503", refreshes: 0, grantRemains: true},
		{name: "lock unavailable", setup: func(_ *testing.T, e *hotEnv) { e.st.lockErr = errors.New("connection refused") },
			want: "503", refreshes: 0, grantRemains: true},
		{name: "Clerk ended the session", setup: func(_ *testing.T, e *hotEnv) {
			e.ck.refreshErr = &clerk.APIError{Endpoint: "token", Status: http.StatusBadRequest, Code: "invalid_grant"}
		}, want: "401", refreshes: 1, grantRemains: false},
		{name: "Clerk refuses the proxy", setup: func(_ *testing.T, e *hotEnv) {
			e.ck.refreshErr = &clerk.APIError{Endpoint: "token", Status: http.StatusUnauthorized, Code: "invalid_client"}
		}, want: "503", refreshes: 1, grantRemains: true},
		{name: "Clerk unavailable", setup: func(_ *testing.T, e *hotEnv) { e.ck.refreshErr = clerk.ErrUnavailable },
			want: "503", refreshes: 1, grantRemains: true},
		{name: "no refresh token", setup: func(t *testing.T, e *hotEnv) {
			e.putGrantTokens(t, clerk.TokenSet{AccessToken: hotToken}, e.clock.Now().Add(time.Second), func(*store.Grant) {})
		}, want: "401", refreshes: 0, grantRemains: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHotEnv(t)
			// Clerk's token is about to expire (inside RefreshSkew).
			e.putGrantTokens(t, clerk.TokenSet{AccessToken: hotToken, RefreshToken: hotRefresh}, e.clock.Now().Add(time.Second), func(*store.Grant) {})
			e.ck.intro[fresh] = e.active()
			e.ck.refreshed = clerk.TokenSet{AccessToken: fresh, RefreshToken: "rt_2", Expiry: e.clock.Now().Add(time.Hour)}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			id, err := e.verifier(t).Verify(context.Background(), e.token)
			if got := outcome(err); got != tc.want {
				t.Fatalf("Verify: %s (%v), want %s", got, err, tc.want)
			}
			if err == nil && id.ClerkToken != fresh {
				t.Fatalf("Clerk token %q, want the refreshed one", id.ClerkToken)
			}
			if n := e.ck.count("Refresh"); n != tc.refreshes {
				t.Fatalf("%d refreshes at Clerk, want %d", n, tc.refreshes)
			}
			e.st.mu.Lock()
			g, ok := e.st.grants[hotGrant]
			e.st.mu.Unlock()
			if ok != tc.grantRemains {
				t.Fatalf("grant stored: %v, want %v", ok, tc.grantRemains)
			}
			if tc.name == "won the lock" {
				ts, err := e.vault.Open(hotGrant, g.Upstream)
				if err != nil || ts.AccessToken != fresh || !g.UpstreamExpiresAt.After(e.clock.Now().Add(time.Minute)) {
					t.Fatalf("the refreshed tokens were not saved: %+v %v", ts, err)
				}
			}
		})
	}
}

// TestInactiveTokenRefreshedOnce: Clerk calling a token inactive before its
// time leads to one refresh, then the fresh token is introspected.
func TestInactiveTokenRefreshedOnce(t *testing.T) {
	t.Parallel()
	e := newHotEnv(t)
	delete(e.ck.intro, hotToken)
	e.ck.intro["oat_hot_new"] = e.active()
	e.ck.refreshed = clerk.TokenSet{AccessToken: "oat_hot_new", Expiry: e.clock.Now().Add(time.Hour)}
	id, err := e.verifier(t).Verify(context.Background(), e.token)
	if err != nil || id.ClerkToken != "oat_hot_new" || e.ck.count("Refresh") != 1 || e.ck.count("Introspect") != 2 {
		t.Fatalf("%+v %v; %d refreshes, %d introspections", id, err, e.ck.count("Refresh"), e.ck.count("Introspect"))
	}
}

// fakeOrgs answers the Backend API's organisation memberships and counts calls.
type fakeOrgs struct {
	mu    sync.Mutex
	ms    []clerk.OrgMembership
	err   error
	calls int
}

func (o *fakeOrgs) OrgMemberships(context.Context, string) ([]clerk.OrgMembership, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	return o.ms, o.err
}

func membership(orgID, role string, perms ...string) clerk.OrgMembership {
	m := clerk.OrgMembership{Role: role, Permissions: perms}
	m.Organization.ID, m.Organization.Name = orgID, "Org "+orgID
	return m
}

// TestOrgRoleFromBackendAPI: the token names org_1; the Backend API says
// which role and permissions the user has there. Its failure is not the
// request's (only org-gated tools then refuse, which the Subject shows); no
// lookup when no rule needs it; the answer is cached like userinfo.
func TestOrgRoleFromBackendAPI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		orgs      *fakeOrgs
		needed    bool
		wantRole  string
		wantPerms []string
		wantCalls int
	}{
		{"admin of the token's org", &fakeOrgs{ms: []clerk.OrgMembership{membership("org_other", "org:member"), membership("org_1", "org:admin", "org:mcp:use")}},
			true, "org:admin", []string{"org:mcp:use"}, 1},
		{"no membership in the token's org", &fakeOrgs{ms: []clerk.OrgMembership{membership("org_other", "org:admin")}}, true, "", nil, 1},
		{"Backend API down", &fakeOrgs{err: errors.New("503")}, true, "", nil, 2},
		{"no rule needs it", &fakeOrgs{ms: []clerk.OrgMembership{membership("org_1", "org:admin")}}, false, "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newHotEnv(t)
			e.cfg.OrgsNeeded = func() bool { return tc.needed }
			v, err := verifier.New(e.cfg, verifier.Deps{Keys: e.keys, Store: e.st, Clerk: e.ck, Orgs: tc.orgs, Secret: []byte(hotSecret), Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				id, err := v.Verify(context.Background(), e.token)
				if err != nil {
					t.Fatalf("the request failed with the org lookup: %v", err)
				}
				sub := id.Subject()
				if id.OrgRole != tc.wantRole || !slices.Equal(id.OrgPermissions, tc.wantPerms) || sub.OrgRole != tc.wantRole || sub.OrgID != "org_1" ||
					id.OrgRoleUnknown != (tc.orgs.err != nil) {
					t.Fatalf("role %q perms %v subject %+v, want %q %v", id.OrgRole, id.OrgPermissions, sub, tc.wantRole, tc.wantPerms)
				}
			}
			if tc.orgs.calls != tc.wantCalls {
				t.Fatalf("Backend API called %d times, want %d (cached when it answered, never when not needed)", tc.orgs.calls, tc.wantCalls)
			}
		})
	}
}

// uses records the grants the verifier reports used.
type uses struct {
	mu  sync.Mutex
	ids []string
}

func (u *uses) Used(id string) { u.mu.Lock(); defer u.mu.Unlock(); u.ids = append(u.ids, id) }

// TestUsesToldOfLiveGrants: Deps.Uses hears of each request whose token
// matches a live grant (every request: the recorder decides what to write),
// and of none whose token or grant is refused.
func TestUsesToldOfLiveGrants(t *testing.T) {
	t.Parallel()
	e := newHotEnv(t)
	u := &uses{}
	v, err := verifier.New(e.cfg, verifier.Deps{Keys: e.keys, Store: e.st, Clerk: e.ck, Secret: []byte(hotSecret), Now: e.clock.Now, Uses: u})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(t.Context(), e.token); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(t.Context(), "garbage"); err == nil {
		t.Fatal("a garbage token verified")
	}
	e.putGrant(t, func(g *store.Grant) { g.Active = false })
	v.GrantRevoked(hotGrant)
	if _, err := v.Verify(t.Context(), e.token); err == nil {
		t.Fatal("an inactive grant's token verified")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.ids) != 3 || u.ids[0] != hotGrant {
		t.Errorf("uses reported: %v, want the grant 3 times", u.ids)
	}
}

// TestOpenedTokensFollowTheGrant: the opened Clerk token set is reused only
// while the grant holds the bytes it was opened from. When another replica
// refreshes Clerk's token (new sealed bytes in the store), this replica
// uses the new token as soon as its grant copy expires; a grant whose
// tokens cannot be opened is refused even after a good one was cached.
func TestOpenedTokensFollowTheGrant(t *testing.T) {
	t.Parallel()
	e := newHotEnv(t)
	v := e.verifier(t)
	for range 3 {
		if id, err := v.Verify(context.Background(), e.token); err != nil || id.ClerkToken != hotToken {
			t.Fatalf("before the refresh: %+v %v", id, err)
		}
	}
	e.ck.intro["oat_hot_refreshed"] = e.active()
	e.putGrantTokens(t, clerk.TokenSet{AccessToken: "oat_hot_refreshed", RefreshToken: hotRefresh}, e.clock.Now().Add(time.Hour), func(*store.Grant) {})
	e.clock.Advance(2 * time.Second) // past the grant cache's second
	if id, err := v.Verify(context.Background(), e.token); err != nil || id.ClerkToken != "oat_hot_refreshed" {
		t.Fatalf("after another replica's refresh: %+v %v, want the new Clerk token", id, err)
	}
	e.putGrant(t, func(g *store.Grant) { g.Upstream = append([]byte(nil), g.Upstream[:len(g.Upstream)-1]...) })
	e.clock.Advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), e.token); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Fatalf("tampered sealed tokens: %v, want ErrInvalidToken", err)
	}
}
