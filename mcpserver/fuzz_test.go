package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

const (
	fzIssuer    = "https://mcp.example"
	fzGoodToken = "good-token-0123456789"
	fzDownToken = "down-token-0123456789"
)

// fzVerifier accepts exactly one token and reports Clerk down for another.
type fzVerifier struct{}

func (fzVerifier) Verify(_ context.Context, token string) (*verifier.Identity, error) {
	switch token {
	case fzGoodToken:
		return &verifier.Identity{UserID: "user_1", ClientID: "mcp_c", Scopes: []string{"openid"}}, nil
	case fzDownToken:
		return nil, verifier.ErrUnavailable
	}
	return nil, errors.New("invalid token")
}

// fzChallenge is the RFC 6750 §3 / RFC 7235 challenge grammar the middleware
// must emit: "Bearer" then comma-separated auth-params whose values are
// quoted strings without quotes, backslashes or control characters inside.
var fzChallenge = regexp.MustCompile(`^Bearer [a-z_]+="[^"\\\x00-\x1f\x7f]*"(, [a-z_]+="[^"\\\x00-\x1f\x7f]*")*$`)

// fzHeaderValue mirrors what net/http lets into a request header value.
func fzHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzBearerMiddleware: the Authorization, Origin and Host headers of a
// request to /mcp. The MCP handler is reached only for the right Host, an
// allowed (or absent) Origin and exactly the valid bearer token; a refusal
// is 401 with a well-formed Bearer challenge naming the protected-resource
// metadata (error="invalid_token" exactly when credentials were sent), 403
// for Host/Origin, 503 when the verifier cannot reach Clerk; the presented
// token is never reflected.
//
//	go test -run='^$' -fuzz='^FuzzBearerMiddleware$' -fuzztime=20s ./mcpserver
func FuzzBearerMiddleware(f *testing.F) {
	for _, s := range []struct{ auth, origin, host string }{
		{"Bearer " + fzGoodToken, "", "mcp.example"},
		{"bearer   " + fzGoodToken + "  ", "https://mcp.example", "mcp.example:443"},
		{"Bearer " + fzGoodToken, "https://evil.example", "mcp.example"},
		{"Bearer " + fzGoodToken, "null", "mcp.example"},
		{"Bearer " + fzGoodToken, "", "evil.example"},
		{"Bearer " + fzDownToken, "https://inspector.example", "MCP.EXAMPLE"},
		{"Bearer", "", "mcp.example"},
		{"Bearer ", "", "mcp.example"},
		{"Basic dXNlcjpwYXNz", "", "mcp.example"},
		{"Bearer a\"b, error=\"x", "", "mcp.example"},
		{"Bearer " + fzGoodToken + " extra", "", "mcp.example"},
		{"Token " + fzGoodToken, "", "mcp.example"},
		{"", "", "mcp.example"},
	} {
		f.Add(s.auth, s.origin, s.host)
	}
	s := New(Config{Issuer: fzIssuer, Resource: fzIssuer + "/mcp", Scopes: []string{"openid", "profile"},
		AllowedOrigins: []string{"https://inspector.example"}}, Deps{Verifier: fzVerifier{}, Secret: []byte("fuzz-mcp-secret-0123456789abcdef0123")})
	reached := false
	h := s.guard(s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		if id, ok := IdentityFrom(r.Context()); !ok || id.UserID != "user_1" {
			panic("handler reached without the verified identity")
		}
		w.WriteHeader(http.StatusOK)
	})))
	prm := `Bearer resource_metadata="` + fzIssuer + `/.well-known/oauth-protected-resource/mcp"`
	// Every refusal of a sent token is byte-identical to the refusal of a
	// plain bad token (nothing of the request is reflected), and every
	// request without credentials gets the same bare challenge.
	baseline := func(auth string) (string, string) {
		req := httptest.NewRequest(http.MethodPost, "http://mcp.example/mcp", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Header().Get("WWW-Authenticate"), rec.Body.String()
	}
	badChal, badBody := baseline("Bearer x")
	noChal, noBody := baseline("")
	f.Fuzz(func(t *testing.T, auth, origin, host string) {
		if !fzHeaderValue(auth) || !fzHeaderValue(origin) || !fzHeaderValue(host) {
			return // net/http refuses such requests before any handler runs
		}
		req := httptest.NewRequest(http.MethodPost, "http://mcp.example/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		reached = false
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		// Plain http here: the server's own host, with or without :80; its
		// own origin or the configured one, in any letter case.
		hostOK := fzASCIILower(host) == "mcp.example" || fzASCIILower(host) == "mcp.example:80"
		originOK := origin == "" || fzASCIILower(origin) == fzIssuer || fzASCIILower(origin) == "https://inspector.example"
		token := ""
		if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			token = strings.TrimSpace(auth[7:])
		}
		want := http.StatusUnauthorized
		switch {
		case !hostOK || !originOK:
			want = http.StatusForbidden
		case token == fzGoodToken:
			want = http.StatusOK
		case token == fzDownToken:
			want = http.StatusServiceUnavailable
		}
		if rec.Code != want || reached != (want == http.StatusOK) {
			t.Fatalf("auth %q origin %q host %q: status %d (reached %v), want %d", auth, origin, host, rec.Code, reached, want)
		}
		if want == http.StatusOK {
			return
		}
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("error body %q: %v", rec.Body.String(), err)
		}
		if !slices.Contains([]string{"invalid_request", "invalid_token", "temporarily_unavailable", "unauthorized"}, body["error"]) {
			t.Fatalf("error %q", body["error"])
		}
		if want != http.StatusUnauthorized {
			return
		}
		chal := rec.Header().Get("WWW-Authenticate")
		if !strings.HasPrefix(chal, prm) || !fzChallenge.MatchString(chal) {
			t.Fatalf("malformed challenge %q", chal)
		}
		if strings.Contains(chal, `error="invalid_token"`) != (auth != "") {
			t.Fatalf("challenge %q for Authorization %q", chal, auth)
		}
		wantChal, wantBody := badChal, badBody
		if auth == "" {
			wantChal, wantBody = noChal, noBody
		}
		if chal != wantChal || rec.Body.String() != wantBody {
			t.Fatalf("refusal of %q differs from the fixed one: %q %q", auth, chal, rec.Body.String())
		}
	})
}

// fzASCIILower folds ASCII letters only (hosts and origins are ASCII; a
// Unicode look-alike such as U+017F must not match).
func fzASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
