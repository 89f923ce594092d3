package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
)

const fzUpstream = "http://upstream.internal/mcp"

// fzClerkTokens is the grant side of token exchange: one live grant.
type fzClerkTokens struct{}

func (fzClerkTokens) ClerkToken(_ context.Context, gid, user, client string) (string, time.Time, error) {
	if gid == "grant-live" && user == "user_1" && client == "mcp-client" {
		return "clerk-access-token", time.Now().Add(time.Hour), nil
	}
	return "", time.Time{}, errors.New("no such live grant")
}

func withExchange(c *Config, d *Deps) {
	c.Exchange = ExchangeConfig{Clients: []string{fzBasicID}, Audiences: []string{fzUpstream}, Targets: []string{"https://clerk.example"}}
	d.Exchange = fzClerkTokens{}
}

// TestExchangeSubject: which identity assertions token exchange accepts
// (the end-to-end test, TestGatewayTokenExchange, runs the whole flow).
func TestExchangeSubject(t *testing.T) {
	e := newFzEnv(t, withExchange)
	now := time.Now()
	good := upstreamauth.Claims{Issuer: fzIssuer, Subject: "user_1", Audience: fzUpstream, ClientID: "mcp-client",
		SessionID: "grant-live", ID: "jti-1", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(time.Minute).Unix()}
	for _, tc := range []struct {
		name   string
		typ    string
		edit   func(*upstreamauth.Claims)
		status int
	}{
		{"valid", upstreamauth.Type, func(*upstreamauth.Claims) {}, 200},
		{"expired", upstreamauth.Type, func(c *upstreamauth.Claims) { c.Expiry = now.Add(-time.Minute).Unix() }, 400},
		{"not yet valid", upstreamauth.Type, func(c *upstreamauth.Claims) { c.NotBefore = now.Add(time.Minute).Unix() }, 400},
		{"another issuer", upstreamauth.Type, func(c *upstreamauth.Claims) { c.Issuer = "https://other.example" }, 400},
		{"not for an upstream", upstreamauth.Type, func(c *upstreamauth.Claims) { c.Audience = fzIssuer + "/mcp" }, 400},
		{"no sid", upstreamauth.Type, func(c *upstreamauth.Claims) { c.SessionID = "" }, 400},
		{"a grant not alive", upstreamauth.Type, func(c *upstreamauth.Claims) { c.SessionID = "grant-ended"; c.ID = "jti-2" }, 400},
		{"an access token's typ", tokens.AccessTokenType, func(*upstreamauth.Claims) {}, 400},
	} {
		c := good
		tc.edit(&c)
		tok, err := e.s.keys.SignJWT(tc.typ, c)
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {grantTypeTokenExchange}, "subject_token": {tok}, "subject_token_type": {tokenTypeJWT}}
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(fzBasicID, fzBasicSec)
		rec := e.serve(http.MethodPost, "/token", "", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {r.Header.Get("Authorization")}}, []byte(form.Encode()))
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
		if tc.status == 200 && (!strings.Contains(rec.Body.String(), `"access_token":"clerk-access-token"`) || strings.Contains(rec.Body.String(), "refresh_token")) {
			t.Errorf("%s: %s", tc.name, rec.Body)
		}
		if tc.status != 200 && (strings.Contains(rec.Body.String(), "clerk-access-token") || !strings.Contains(rec.Body.String(), `"error":"invalid_request"`)) {
			t.Errorf("%s: %s", tc.name, rec.Body)
		}
	}
}
