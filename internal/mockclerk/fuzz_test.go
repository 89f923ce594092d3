package mockclerk_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

// FuzzTokenEndpoint feeds arbitrary form bodies and Authorization headers to
// /oauth/token: never a 5xx, and every error is Clerk's OAuth JSON body.
func FuzzTokenEndpoint(f *testing.F) {
	s, err := mockclerk.New(mockclerk.Config{Issuer: "http://clerk.test", ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb", "Basic bW9ja1Rlc3RDbGllbnQwMTp4")
	f.Add("grant_type=refresh_token&refresh_token=zzz&client_id=mockTestClient01&client_secret=x", "")
	f.Add("grant_type=authorization_code&grant_type=x", "Bearer y")
	f.Add("%zz=%", "Basic %%%")
	f.Fuzz(func(t *testing.T, body, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if w.Code >= 400 {
			var e struct{ Error, ErrorDescription string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("error body is not OAuth JSON: %s", w.Body.String())
			}
		}
	})
}
