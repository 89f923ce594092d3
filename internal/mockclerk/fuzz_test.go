package mockclerk_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

// FuzzTokenEndpoint feeds arbitrary form bodies and Authorization headers to
// /oauth/token: never a 5xx, always JSON, and every error is the RFC 6749
// body {"error","error_description"} (wire facts §5).
func FuzzTokenEndpoint(f *testing.F) {
	s, err := mockclerk.New(mockclerk.Config{Issuer: "http://clerk.test", ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{redirectURI}})
	if err != nil {
		f.Fatal(err)
	}
	b64 := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	good := "Basic " + b64(url.QueryEscape(clientID)+":"+url.QueryEscape(clientSecret))
	ru := url.QueryEscape(redirectURI)
	f.Add("grant_type=authorization_code&code=abc&redirect_uri="+ru, good)
	f.Add("grant_type=authorization_code&code=abc&redirect_uri="+ru+"&code_verifier="+strings.Repeat("v", 43), good)
	f.Add("grant_type=refresh_token&refresh_token=zzz&scope=email+admin", good)
	f.Add("grant_type=refresh_token&refresh_token=zzz&client_id="+clientID+"&client_secret="+url.QueryEscape(clientSecret), "")
	f.Add("grant_type=authorization_code&client_id="+clientID+"&client_secret=x", good)
	f.Add("grant_type=authorization_code&grant_type=x", "Bearer y")
	f.Add("grant_type=password&username=a&password=b", "Basic "+b64(clientID+":"))
	f.Add("%zz=%", "Basic %%%")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, body, authz string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q, Authorization %q", w.Code, body, authz)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("status %d with Content-Type %q", w.Code, ct)
		}
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("status %d, body is not JSON: %q", w.Code, w.Body.String())
		}
		if w.Code >= 400 && (e.Error == "" || e.ErrorDescription == "") {
			t.Fatalf("status %d, not an RFC 6749 error body: %s", w.Code, w.Body.String())
		}
		if w.Code < 400 && w.Code != http.StatusOK {
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzAuthorize feeds arbitrary query strings to /oauth/authorize: never a
// 5xx; a redirect or a form_post page only ever targets the registered
// redirect URI; everything else is the sign-in page or a local error page
// (wire facts §4).
func FuzzAuthorize(f *testing.F) {
	s, err := mockclerk.New(mockclerk.Config{Issuer: "http://clerk.test", ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{redirectURI}})
	if err != nil {
		f.Fatal(err)
	}
	base := "response_type=code&client_id=" + clientID + "&redirect_uri=" + url.QueryEscape(redirectURI)
	f.Add(base + "&state=" + goodState)
	f.Add(base + "&state=short&response_mode=form_post")
	f.Add(base + "&prompt=none&response_mode=fragment")
	f.Add(base + "&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=S256&scope=openid+admin")
	f.Add("client_id=" + clientID + "&redirect_uri=http://evil.test/cb&response_mode=form_post")
	f.Add("client_id=%zz&state=%")
	f.Add("")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		body := w.Body.String()
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d for %q", w.Code, query)
		case w.Code == http.StatusFound:
			if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, redirectURI+"?") {
				t.Fatalf("redirect to %q for %q", loc, query)
			}
		case !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html"):
			t.Fatalf("status %d with Content-Type %q for %q", w.Code, w.Header().Get("Content-Type"), query)
		case strings.Contains(body, "<form") && !strings.Contains(body, `action="/sign-in"`) &&
			!strings.Contains(body, `action="`+redirectURI+`"`):
			t.Fatalf("a form posting elsewhere for %q: %s", query, body)
		}
	})
}
