package clerk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fzClerkTransport answers every call with one canned response (discovery
// excepted: 404, so the client falls back to Clerk's documented paths).
type fzClerkTransport struct {
	status int
	ctype  string
	body   []byte
}

func (t *fzClerkTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	status, body := t.status, t.body
	if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
		status, body = http.StatusNotFound, nil
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {t.ctype}}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
}

const (
	fzClerkSecret = "fuzz-clerk-client-secret-0123456789"
	fzClerkToken  = "oat_fuzzAccessToken0123456789abcdef"
)

// FuzzClerkResponses: whatever Clerk (or something impersonating it on the
// network path) answers — any status, any body — the client never panics,
// a non-2xx is an *APIError carrying that status and classified transient
// exactly for 5xx/429, a 2xx body that does not decode is a transient
// "malformed_response", an introspection is active only when the body says
// "active": true (a JSON boolean), a token exchange succeeds only with an
// access token, and no error text carries the client secret or the token.
//
//	go test -run='^$' -fuzz='^FuzzClerkResponses$' -fuzztime=20s ./internal/clerk
func FuzzClerkResponses(f *testing.F) {
	for _, s := range []struct {
		ep     uint8
		status uint16
		body   string
	}{
		{0, 200, `{"active":true,"client_id":"c","sub":"user_1","scope":"openid profile","iat":1,"aud":["c"]}`},
		{0, 200, `{"active":"true","client_id":"c"}`},
		{0, 200, `{"active":false}`},
		{0, 200, `{"active":true,"aud":"c","exp":99999999999}`},
		{0, 200, `{"active":true,"aud":{"x":1}}`},
		{0, 200, `{"ACTIVE":true}`},
		{0, 401, `{"error":"invalid_client"}`},
		{0, 503, `<html>down</html>`},
		{0, 429, `{"errors":[{"code":"rate_limited"}]}`},
		{1, 200, `{"sub":"user_1","email":"a@b.c","email_verified":true,"public_metadata":{"k":[1,2]}}`},
		{1, 200, `{"sub":1}`},
		{1, 500, ``},
		{2, 200, `{"access_token":"oat_x","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"openid"}`},
		{2, 200, `{"token_type":"Bearer"}`},
		{2, 200, `{"access_token":"oat_x","id_token":"eyJhbGciOiJub25lIn0.e30."}`},
		{2, 400, `{"error":"invalid_grant","error_description":"code expired"}`},
		{3, 200, `{"access_token":"oat_y","expires_in":"soon"}`},
		{3, 400, `{"error":"invalid_grant"}`},
		{4, 400, `{"error":"unsupported_token_type"}`},
		{4, 200, ``},
		{5, 200, `{"data":[{"role":"org:admin","permissions":["a"],"organization":{"id":"org_1","name":"N","slug":"n"}}]}`},
		{5, 200, `{"data":{}}`},
		{0, 200, `not json`},
		{0, 204, ``},
	} {
		f.Add(s.ep, s.status, []byte(s.body))
	}
	tr := &fzClerkTransport{ctype: "application/json"}
	c := New(context.Background(), Config{
		Issuer: "https://clerk.example", ClientID: "fuzz-client", ClientSecret: fzClerkSecret, SecretKey: "sk_test_fuzz0123456789",
		APIURL: "https://api.clerk.example", RedirectURL: "https://proxy.example/oauth/callback", Scopes: []string{"openid"},
		HTTPClient: &http.Client{Transport: tr},
	})
	f.Fuzz(func(t *testing.T, ep uint8, status uint16, body []byte) {
		tr.status, tr.body = int(status)%600, body
		if tr.status < 200 {
			tr.status = 200 + tr.status%100 // 1xx responses are not final answers
		}
		ctx := context.Background()
		var err error
		var out any // what a successful call decoded into
		switch ep % 6 {
		case 0:
			var in Introspection
			in, err = c.Introspect(ctx, fzClerkToken)
			if err == nil && in.Active && !fzSaysActive(body) {
				t.Fatalf("introspection active without \"active\": true in %q", body)
			}
			out = &Introspection{}
		case 1:
			_, err = c.UserInfo(ctx, fzClerkToken)
			out = &UserInfo{}
		case 2:
			ts, claims, xerr := c.Exchange(ctx, "code", "verifier-0123456789012345678901234567890123", "nonce")
			err = xerr
			if err == nil && ts.AccessToken == "" {
				t.Fatal("exchange succeeded without an access token")
			}
			if claims != nil && ts.IDToken == "" {
				t.Fatal("ID claims without an ID token")
			}
		case 3:
			ts, xerr := c.Refresh(ctx, "rt_fuzz0123456789")
			err = xerr
			if err == nil && ts.AccessToken == "" {
				t.Fatal("refresh succeeded without an access token")
			}
		case 4:
			err = c.Revoke(ctx, fzClerkToken, "access_token")
		case 5:
			_, err = c.OrgMemberships(ctx, "user_1")
			out = &struct {
				Data []OrgMembership `json:"data"`
			}{}
		}
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, fzClerkSecret) || strings.Contains(msg, fzClerkToken) && !bytes.Contains(body, []byte(fzClerkToken)) {
				t.Fatalf("error carries a secret: %q", msg)
			}
			// Every failure of a call is either "try again" or "Clerk said no"
			// (an ID token that fails verification is neither: it is ours to refuse).
			if ep%6 != 2 && IsTransient(err) == IsRejected(err) {
				t.Fatalf("error %q is both or neither transient and rejected", err)
			}
		}
		var ae *APIError
		ok2xx := tr.status >= 200 && tr.status <= 299
		switch {
		case !ok2xx && ep%6 == 4 && err == nil:
			// Revoke: Clerk's unsupported_token_type for a JWT is not an error.
			if errorCode(body) != "unsupported_token_type" {
				t.Fatalf("revoke answered %d without error", tr.status)
			}
		case !ok2xx:
			if !errors.As(err, &ae) || ae.Status != tr.status {
				t.Fatalf("status %d gave %v", tr.status, err)
			}
			if want := tr.status >= 500 || tr.status == http.StatusTooManyRequests; IsTransient(err) != want {
				t.Fatalf("status %d: transient=%v", tr.status, IsTransient(err))
			}
		case out != nil:
			// Our own decoder decides: the body decodes or the call failed.
			decodes := json.Unmarshal(body, out) == nil
			if decodes != (err == nil) {
				t.Fatalf("2xx body %q: decodes=%v err=%v", body, decodes, err)
			}
			if err != nil && (!errors.As(err, &ae) || ae.Code != "malformed_response" || !IsTransient(err)) {
				t.Fatalf("undecodable 2xx body: %v", err)
			}
		}
	})
}

// fzSaysActive reports whether a top-level member named "active" (in any
// letter case, as encoding/json matches field names) holds the JSON boolean
// true.
func fzSaysActive(body []byte) bool {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	for k, v := range m {
		if strings.EqualFold(k, "active") && v == true {
			return true
		}
	}
	return false
}
