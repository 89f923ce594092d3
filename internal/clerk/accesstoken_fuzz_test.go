package clerk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseAccessJWT: any bearer token a client sends in clerk mode is read
// without a panic, and a token is taken as a Clerk OAuth access token only
// when its header says typ at+jwt and alg RS256 without crit, and its claims
// name a user, a client and an expiry.
//
//	go test -run='^$' -fuzz='^FuzzParseAccessJWT$' -fuzztime=20s ./internal/clerk
func FuzzParseAccessJWT(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []struct{ header, claims string }{
		{`{"alg":"RS256","kid":"ins_1","typ":"at+jwt","cat":"cl_B7d4PD111AAA"}`, `{"sub":"user_1","client_id":"c","exp":99999999999,"scope":"email profile","iss":"https://clerk.example","jti":"oat_X","nbf":1,"iat":1}`},
		{`{"alg":"RS256","typ":"application/at+jwt"}`, `{"sub":"user_1","client_id":"c","exp":1,"scp":["a","b"],"aud":["x","y"]}`},
		{`{"alg":"RS256","typ":"JWT"}`, `{"sub":"user_1","client_id":"c","exp":1}`},
		{`{"alg":"none","typ":"at+jwt"}`, `{"sub":"user_1","client_id":"c","exp":1}`},
		{`{"alg":"RS256","typ":"at+jwt","crit":["cat"]}`, `{"sub":"user_1","client_id":"c","exp":1}`},
		{`{"alg":"RS256","typ":"at+jwt"}`, `{"sub":1}`},
		{`{"alg":"RS256","typ":"at+jwt"}`, `{"sub":"u","client_id":"c","exp":1,"aud":{"a":1}}`},
	} {
		f.Add(enc([]byte(s.header)) + "." + enc([]byte(s.claims)) + ".c2ln")
	}
	f.Add("oat_opaque")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ParseAccessJWT(token)
		if err != nil {
			if !errors.Is(err, ErrNotAccessToken) && !errors.Is(err, ErrBadAccessToken) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if c.Subject == "" || c.ClientID == "" || c.Expiry == 0 {
			t.Fatalf("accepted claims without sub, client_id or exp: %+v", c)
		}
		h, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
		if !strings.Contains(strings.ToLower(string(h)), "at+jwt") {
			t.Fatalf("accepted a header without at+jwt: %s", h)
		}
	})
}

// FuzzBackendVerify: whatever the Backend API's verify call answers, the
// answer is active only for a 200 naming a client, not revoked, not expired
// and not "active": false; a 404 is an inactive token, not an error; any
// other failure is transient or rejected, never both; no error carries the
// token.
//
//	go test -run='^$' -fuzz='^FuzzBackendVerify$' -fuzztime=20s ./internal/clerk
func FuzzBackendVerify(f *testing.F) {
	for _, s := range []struct {
		status uint16
		body   string
	}{
		{200, `{"object":"clerk_idp_oauth_access_token","id":"oat_0123","client_id":"c","subject":"user_1","scopes":["email"],"revoked":false,"expired":false,"expiration":1716883200000,"created_at":1716883200}`},
		{200, `{"active":false}`},
		{200, `{"client_id":"c","subject":"user_1","revoked":true}`},
		{200, `{"client_id":"c","subject":"user_1","expiration":"soon"}`},
		{200, `{"client_id":"c","aud":["https://mcp.example/mcp"]}`},
		{404, `{"errors":[{"code":"resource_not_found"}]}`},
		{401, `{"errors":[{"code":"authentication_invalid"}]}`},
		{429, ``},
		{200, `[]`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	tr := &fzClerkTransport{ctype: "application/json"}
	c := New(context.Background(), Config{Issuer: "https://clerk.example", SecretKey: "sk_test_fuzz0123456789",
		APIURL: "https://api.clerk.example", HTTPClient: &http.Client{Transport: tr}})
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		tr.status, tr.body = int(status)%600, body
		if tr.status < 200 {
			tr.status = 200 + tr.status%100
		}
		in, err := c.VerifyAccessTokenBAPI(context.Background(), fzClerkToken)
		if tr.status == http.StatusNotFound && (err != nil || in.Active) {
			t.Fatalf("404: %+v %v, want inactive without error", in, err)
		}
		if err != nil {
			if strings.Contains(err.Error(), fzClerkToken) {
				t.Fatalf("error carries the token: %v", err)
			}
			if IsTransient(err) == IsRejected(err) {
				t.Fatalf("error %q is both or neither transient and rejected", err)
			}
			return
		}
		if in.Active && (tr.status < 200 || tr.status > 299 || in.ClientID == "" || strings.Contains(string(body), `"revoked":true`)) {
			t.Fatalf("active from status %d body %q", tr.status, body)
		}
	})
}

// FuzzParseSessionToken: the clerk_token an app hands the proxy in app mode
// is read without a panic, and taken as a session token only with RS256, no
// crit, a typ other than an access token's, and a user_ subject, a sess_
// session and an expiry.
//
//	go test -run='^$' -fuzz='^FuzzParseSessionToken$' -fuzztime=20s ./internal/clerk
func FuzzParseSessionToken(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []struct{ header, claims string }{
		{`{"alg":"RS256","kid":"ins_1","typ":"JWT","cat":"cl_B7d4PD111AAA"}`, `{"sub":"user_1","sid":"sess_1","azp":"https://app.example","exp":99999999999,"iss":"https://clerk.example","nbf":1,"iat":1}`},
		{`{"alg":"RS256"}`, `{"sub":"user_1","sid":"sess_1","exp":1}`},
		{`{"alg":"RS256","typ":"at+jwt"}`, `{"sub":"user_1","sid":"sess_1","exp":1}`},
		{`{"alg":"HS256","typ":"JWT"}`, `{"sub":"user_1","sid":"sess_1","exp":1}`},
		{`{"alg":"RS256","typ":"JWT"}`, `{"sub":"org_1","sid":"sess_1","exp":1}`},
	} {
		f.Add(enc([]byte(s.header)) + "." + enc([]byte(s.claims)) + ".c2ln")
	}
	f.Add("sess_opaque")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ParseSessionToken(token)
		if err != nil {
			if !errors.Is(err, ErrBadSessionToken) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !strings.HasPrefix(c.Subject, "user_") || !strings.HasPrefix(c.SessionID, "sess_") || c.Expiry == 0 {
			t.Fatalf("accepted claims %+v", c)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
		var h jwtHeader
		_ = json.Unmarshal(raw, &h)
		if h.Alg != "RS256" || h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
			t.Fatalf("accepted header %s", raw)
		}
	})
}
