package verifier_test

// Clerk mode's hot path against the real fake Clerk (DCR on, both token
// formats, both ways of asking Clerk): what it accepts, what it refuses and
// without how many calls, and what happens when Clerk cannot answer.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

const (
	cmAppID     = "clerkModeApp0001" // this server's own confidential app at Clerk
	cmAppSecret = "clerk-mode-app-secret-0123456789"
	cmResource  = "http://mcp.test/mcp"
	cmScope     = "email profile"
)

// clerkModeEnv is one fake Clerk instance and a clerk-mode verifier over it.
type clerkModeEnv struct {
	ck    *mockclerk.Running
	cl    *clerk.Client
	m     *verifier.ClerkMode
	clock *testclock.Clock
}

type cmOptions struct {
	format  string // opaque | jwt
	bapi    bool   // introspect through the Backend API verify call
	allowed []string
	scopes  []string // required scopes; default profile email
}

func newClerkModeEnv(t *testing.T, o cmOptions) *clerkModeEnv {
	t.Helper()
	clock := testclock.New(time.Now())
	ck, err := mockclerk.Listen("127.0.0.1:0", mockclerk.Config{ClientID: cmAppID, ClientSecret: cmAppSecret,
		DCR: true, TokenFormat: o.format, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	cl := clerk.New(context.Background(), clerk.Config{Issuer: ck.URL, ClientID: cmAppID, ClientSecret: cmAppSecret,
		SecretKey: ck.Config().SecretKey, APIURL: ck.URL})
	var intro verifier.Clerk = cl
	if o.bapi {
		intro = clerk.BackendIntrospector{Client: cl}
	}
	st := memstore.New(memstore.Options{Now: clock.Now})
	t.Cleanup(func() { st.Close() })
	v, err := verifier.New(verifier.Config{IntrospectionTTL: time.Minute, UserinfoTTL: time.Minute},
		verifier.Deps{Store: st, Clerk: intro, Secret: []byte(cacheSecret), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if o.scopes == nil {
		o.scopes = []string{"profile", "email"}
	}
	m := verifier.NewClerkMode(v, verifier.ClerkModeConfig{Resource: cmResource, AllowedClients: o.allowed, RequiredScopes: o.scopes}, cl)
	return &clerkModeEnv{ck: ck, cl: cl, m: m, clock: clock}
}

// token registers a client at the fake Clerk and signs the first user in.
func (e *clerkModeEnv) token(t *testing.T, scope, resource string) (string, testflow.ClerkClient) {
	t.Helper()
	ctx := context.Background()
	c, err := testflow.RegisterAtClerk(ctx, e.ck.URL, "email offline_access profile public_metadata")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := testflow.ClerkToken(ctx, e.ck.URL, c, scope, resource)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// verifyCalls is how many times Clerk was asked about a token.
func (e *clerkModeEnv) verifyCalls() int {
	s := e.ck.Stats()
	return s["/oauth/token_info"] + s["/oauth_applications/access_tokens/verify"]
}

var cmVariants = []struct {
	name string
	o    cmOptions
}{
	{"opaque/token_info", cmOptions{format: "opaque"}},
	{"opaque/bapi", cmOptions{format: "opaque", bapi: true}},
	{"jwt/token_info", cmOptions{format: "jwt"}},
	{"jwt/bapi", cmOptions{format: "jwt", bapi: true}},
}

func TestClerkModeAcceptsClerkTokens(t *testing.T) {
	for _, vt := range cmVariants {
		t.Run(vt.name, func(t *testing.T) {
			t.Parallel()
			e := newClerkModeEnv(t, vt.o)
			tok, c := e.token(t, cmScope, cmResource)
			if vt.o.format == "jwt" {
				if !clerk.LooksLikeJWT(tok) || !strings.Contains(jwtHeaderOf(t, tok), `"cat"`) {
					t.Fatalf("the fake's JWT access token should carry Clerk's cat header: %s", jwtHeaderOf(t, tok))
				}
			} else if !strings.HasPrefix(tok, "oat_") {
				t.Fatalf("opaque token %q", tok)
			}
			id, err := e.m.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			alice := mockclerk.DefaultUsers()[0]
			if id.UserID != alice.ID || id.ClientID != c.ID || id.Email != alice.Email || !id.Enriched || id.ClerkToken != tok {
				t.Fatalf("identity %+v", id)
			}
			if got := strings.Join(id.Scopes, " "); got != cmScope {
				t.Fatalf("scopes %q, want Clerk's %q", got, cmScope)
			}
			if sub := id.Subject(); !sub.Authenticated || len(sub.Scopes) != 2 {
				t.Fatalf("policy subject %+v", sub)
			}
			// Cached: the second request asks Clerk nothing more.
			before := e.verifyCalls()
			if _, err := e.m.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if after := e.verifyCalls(); after != before || before != 1 {
				t.Fatalf("Clerk verification calls: %d then %d, want 1 then 1", before, after)
			}
		})
	}
}

func TestClerkModeRefusesBadTokens(t *testing.T) {
	for _, vt := range cmVariants {
		t.Run(vt.name, func(t *testing.T) {
			t.Parallel()
			other := newClerkModeEnv(t, vt.o) // another Clerk instance
			otherTok, _ := other.token(t, cmScope, cmResource)
			cases := []struct {
				name string
				o    func(*cmOptions)
				tok  func(t *testing.T, e *clerkModeEnv) string
				// clerkCalls is how many verification calls the refusal may
				// cost; -1: not checked.
				clerkCalls int
			}{
				{"junk", nil, func(*testing.T, *clerkModeEnv) string { return "not-a-clerk-token" }, 0},
				{"other instance", nil, func(*testing.T, *clerkModeEnv) string { return otherTok }, map[bool]int{true: 0, false: 1}[vt.o.format == "jwt"]},
				{"client not allowed", func(o *cmOptions) { o.allowed = []string{"someOtherClient1"} }, func(t *testing.T, e *clerkModeEnv) string {
					tok, _ := e.token(t, cmScope, cmResource)
					return tok
				}, map[bool]int{true: 0, false: 1}[vt.o.format == "jwt"]},
				{"missing required scope", func(o *cmOptions) { o.scopes = []string{"profile", "public_metadata"} }, func(t *testing.T, e *clerkModeEnv) string {
					tok, _ := e.token(t, cmScope, cmResource)
					return tok
				}, -1},
				// Clerk's /oauth/token_info answer has no aud (FAPI schema):
				// an opaque token's audience is only seen through the
				// Backend API (SECURITY.md).
				{"audience of another resource", nil, func(t *testing.T, e *clerkModeEnv) string {
					if vt.o.format == "opaque" && !vt.o.bapi {
						t.Skip("token_info does not tell an opaque token's audience")
					}
					tok, _ := e.token(t, cmScope, "https://elsewhere.example/mcp")
					return tok
				}, -1},
				{"revoked at Clerk", nil, func(t *testing.T, e *clerkModeEnv) string {
					tok, _ := e.token(t, cmScope, cmResource)
					e.ck.RevokeUser(mockclerk.DefaultUsers()[0].ID)
					return tok
				}, 1},
				{"expired", nil, func(t *testing.T, e *clerkModeEnv) string {
					tok, _ := e.token(t, cmScope, cmResource)
					e.clock.Advance(25 * time.Hour) // Clerk's tokens live 24 h
					return tok
				}, map[bool]int{true: 0, false: 1}[vt.o.format == "jwt"]},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					o := vt.o
					if tc.o != nil {
						tc.o(&o)
					}
					e := newClerkModeEnv(t, o)
					tok := tc.tok(t, e)
					e.ck.Reset()
					_, err := e.m.Verify(context.Background(), tok)
					if !errors.Is(err, verifier.ErrInvalidToken) {
						t.Fatalf("got %v, want ErrInvalidToken", err)
					}
					if n := e.verifyCalls(); tc.clerkCalls >= 0 && n != tc.clerkCalls {
						t.Fatalf("%d verification calls to Clerk, want %d", n, tc.clerkCalls)
					}
				})
			}
		})
	}
}

// jwtHeaderOf decodes a JWT's protected header.
func jwtHeaderOf(t *testing.T, tok string) string {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jws.Signatures[0].Protected)
	raw, _ := json.Marshal(jws.Signatures[0].Header.ExtraHeaders)
	return string(b) + string(raw)
}

// TestClerkModeRefusesForgedJWTs: JWTs Clerk did not sign as access tokens
// are refused locally, without asking Clerk: a key that is not the
// instance's (same kid), Clerk's own ID token (typ JWT), alg none.
func TestClerkModeRefusesForgedJWTs(t *testing.T) {
	e := newClerkModeEnv(t, cmOptions{format: "jwt"})
	good, c := e.token(t, cmScope, cmResource)
	var hdr struct {
		Kid string `json:"kid"`
	}
	jws, _ := jose.ParseSigned(good, []jose.SignatureAlgorithm{jose.RS256})
	hdr.Kid = jws.Signatures[0].Header.KeyID
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	claims := map[string]any{"iss": e.ck.URL, "sub": mockclerk.DefaultUsers()[0].ID, "client_id": c.ID, "scope": cmScope,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix() - 10, "jti": "oat_FORGED"}
	sign := func(typ string, k *rsa.PrivateKey) string {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", hdr.Kid)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims)
		out, err := s.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := out.CompactSerialize()
		return tok
	}
	parts := strings.Split(good, ".")
	for _, tc := range []struct{ name, tok string }{
		{"other key, Clerk's kid", sign("at+jwt", key)},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + "."},
		{"payload swapped under Clerk's signature", parts[0] + "." + strings.Split(sign("at+jwt", key), ".")[1] + "." + parts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.ck.Reset()
			if _, err := e.m.Verify(context.Background(), tc.tok); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Fatalf("got %v, want ErrInvalidToken", err)
			}
			if n := e.verifyCalls(); n != 0 {
				t.Fatalf("a forged JWT cost %d calls to Clerk", n)
			}
		})
	}
}

// TestClerkModeIDTokenIsNoAccessToken: an ID token from the same instance
// (same key, same issuer) is refused: its typ is not at+jwt.
func TestClerkModeIDTokenIsNoAccessToken(t *testing.T) {
	if _, err := clerk.ParseAccessJWT("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzEiLCJjbGllbnRfaWQiOiJjIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2ln"); !errors.Is(err, clerk.ErrNotAccessToken) {
		t.Fatalf("typ JWT: %v", err)
	}
}

// TestClerkModeRevocationReachesJWTs: a JWT access token stays
// cryptographically valid after its grant is revoked at Clerk; the cached
// introspection notices within INTROSPECTION_CACHE_TTL.
func TestClerkModeRevocationReachesJWTs(t *testing.T) {
	eachVariant(t, func(t *testing.T, e *clerkModeEnv, tok string) {
		if _, err := e.m.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		e.ck.RevokeUser(mockclerk.DefaultUsers()[0].ID)
		e.clock.Advance(61 * time.Second)
		if _, err := e.m.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrInvalidToken) {
			t.Fatalf("after revocation and the cache TTL: %v, want ErrInvalidToken", err)
		}
	})
}

// eachVariant runs f in parallel for every token format and way of asking
// Clerk, each with its own fake Clerk and a fresh token of the first user.
func eachVariant(t *testing.T, f func(t *testing.T, e *clerkModeEnv, tok string)) {
	for _, vt := range cmVariants {
		t.Run(vt.name, func(t *testing.T) {
			t.Parallel()
			e := newClerkModeEnv(t, vt.o)
			tok, _ := e.token(t, cmScope, cmResource)
			f(t, e, tok)
		})
	}
}

// TestClerkModeClerkDown: Clerk failing to answer is 503 (ErrUnavailable),
// never a 401 that would make clients drop good tokens; userinfo failing is
// not fatal.
func TestClerkModeClerkDown(t *testing.T) {
	eachVariant(t, func(t *testing.T, e *clerkModeEnv, tok string) {
		for _, ep := range []string{"/oauth/token_info", "/oauth_applications/access_tokens/verify", "/oauth/userinfo", "/.well-known/jwks.json"} {
			e.ck.SetFault(mockclerk.Fault{Endpoint: ep, Status: 503})
		}
		if _, err := e.m.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrUnavailable) {
			t.Fatalf("Clerk down, nothing cached: %v, want ErrUnavailable", err)
		}
		e.ck.ClearFaults()
		e.ck.SetFault(mockclerk.Fault{Endpoint: "/oauth/userinfo", Status: 500})
		id, err := e.m.Verify(context.Background(), tok)
		if err != nil || id.Enriched {
			t.Fatalf("userinfo down: %v, enriched %v; want the request to go on unenriched", err, id != nil && id.Enriched)
		}
	})
}

// TestClerkModeVerificationCallsBounded: 1,000 concurrent first uses of one
// token make at most one verification call to Clerk (singleflight + cache).
// Not parallel: it counts goroutines' effect on one fake.
func TestClerkModeVerificationCallsBounded(t *testing.T) {
	for _, vt := range cmVariants {
		t.Run(vt.name, func(t *testing.T) {
			e := newClerkModeEnv(t, vt.o)
			tok, _ := e.token(t, cmScope, cmResource)
			e.ck.Reset()
			concurrently(t, 1000, func() error {
				_, err := e.m.Verify(context.Background(), tok)
				return err
			})
			stats := e.ck.Stats()
			t.Logf("calls to the fake Clerk for 1000 concurrent first uses: %v", stats)
			if n := e.verifyCalls(); n != 1 {
				t.Fatalf("%d verification calls, want exactly 1", n)
			}
			if n := stats["/oauth/userinfo"]; n > 1 {
				t.Fatalf("%d userinfo calls, want at most 1", n)
			}
			if n := stats["/.well-known/jwks.json"]; n > 1 {
				t.Fatalf("%d key set fetches, want at most 1", n)
			}
		})
	}
}

// concurrently runs f n times at once (released together) and fails the
// test with the first error.
func concurrently(t *testing.T, n int, f func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
