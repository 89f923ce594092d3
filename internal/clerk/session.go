package clerk

// Clerk session tokens and sessions, for sign-in through the team's own app
// (AUTH_MODE=app): the app hands the proxy the short-lived session token of
// a user signed in there; the proxy verifies it without a network call
// (the instance JWKS, cached) and then asks the Backend API whether the
// session is really active, which stays the source of truth afterwards.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EPSessions is the Backend API sessions endpoint (metrics name).
const EPSessions = "bapi_sessions"

// SessionClaims are the claims of a Clerk session token that matter here.
type SessionClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"` // user_…
	SessionID string `json:"sid"` // sess_…
	// AuthorizedParty is the origin of the page the token was minted for.
	AuthorizedParty string `json:"azp"`
	Expiry          int64  `json:"exp"`
	NotBefore       int64  `json:"nbf"`
	IssuedAt        int64  `json:"iat"`
}

// ErrBadSessionToken is any reason to refuse a session token.
var ErrBadSessionToken = errors.New("clerk: invalid session token")

// ParseSessionToken reads a Clerk session token WITHOUT verifying its
// signature: RS256, no crit, a typ that is not an OAuth access token's (the
// same key signs both; the cat header Clerk adds is accepted), and claims
// with a user, a session and an expiry. VerifySessionToken adds the rest.
func ParseSessionToken(token string) (SessionClaims, error) {
	var c SessionClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("%w: not a JWT", ErrBadSessionToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	var h jwtHeader
	if err != nil || json.Unmarshal(raw, &h) != nil {
		return c, fmt.Errorf("%w: header", ErrBadSessionToken)
	}
	switch {
	case h.Alg != "RS256":
		return c, fmt.Errorf("%w: alg must be RS256", ErrBadSessionToken)
	case len(h.Crit) > 0:
		return c, fmt.Errorf("%w: critical header extensions are not understood", ErrBadSessionToken)
	case h.Typ != "" && !strings.EqualFold(h.Typ, "JWT"):
		return c, fmt.Errorf("%w: typ %q is not a session token's", ErrBadSessionToken, h.Typ)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, fmt.Errorf("%w: claims", ErrBadSessionToken)
	}
	if !strings.HasPrefix(c.Subject, "user_") || !strings.HasPrefix(c.SessionID, "sess_") || c.Expiry == 0 {
		return c, fmt.Errorf("%w: sub, sid and exp are required", ErrBadSessionToken)
	}
	return c, nil
}

// VerifySessionToken verifies a session token: ParseSessionToken's rules,
// the signature against the instance JWKS, iss equal to the Frontend API
// origin, exp and nbf with leeway, and azp one of allowedParties (required).
// A key set that cannot be fetched is ErrUnavailable.
func (c *Client) VerifySessionToken(ctx context.Context, token string, allowedParties []string, now time.Time, leeway time.Duration) (SessionClaims, error) {
	if _, err := ParseSessionToken(token); err != nil {
		return SessionClaims{}, err
	}
	payload, err := c.verifySigned(ctx, token, now, leeway, ErrBadSessionToken)
	if err != nil {
		return SessionClaims{}, err
	}
	var v SessionClaims
	if err := json.Unmarshal(payload, &v); err != nil {
		return v, fmt.Errorf("%w: claims", ErrBadSessionToken)
	}
	if !slices.Contains(allowedParties, v.AuthorizedParty) {
		return v, fmt.Errorf("%w: minted for another origin (azp)", ErrBadSessionToken)
	}
	return v, nil
}

// Session is the Backend API's session object (GET /v1/sessions/{id}).
type Session struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// Status is active, revoked, ended, expired, removed, replaced,
	// abandoned or pending; only active signs anyone in.
	Status string `json:"status"`
}

// Active reports whether the session still signs its user in.
func (s Session) Active() bool { return s.Status == "active" }

// Session fetches a session from the Backend API. A session Clerk does not
// know (404) comes back with status "removed", not as an error: it is over.
func (c *Client) Session(ctx context.Context, sessionID string) (Session, error) {
	var out Session
	err := c.call(ctx, EPSessions, http.MethodGet, c.cfg.APIURL+"/v1/sessions/"+url.PathEscape(sessionID), c.bearerSecret, nil, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return Session{ID: sessionID, Status: "removed"}, nil
	}
	return out, err
}

// ProfileFromUser reads a Backend API user record (GET /v1/users/{id}) as
// the userinfo fields the identity carries: the primary email and whether it
// is verified, the name, the picture and the username. Fields of the wrong
// type are left empty.
func ProfileFromUser(u map[string]any) UserInfo {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	ui := UserInfo{Subject: str(u, "id"), UserID: str(u, "id"), GivenName: str(u, "first_name"), FamilyName: str(u, "last_name"),
		Picture: str(u, "image_url"), PreferredUsername: str(u, "username")}
	ui.Name = strings.TrimSpace(ui.GivenName + " " + ui.FamilyName)
	emails, _ := u["email_addresses"].([]any)
	for _, e := range emails {
		m, _ := e.(map[string]any)
		if m == nil || str(m, "id") == "" || str(m, "id") != str(u, "primary_email_address_id") {
			continue
		}
		ui.Email = str(m, "email_address")
		v, _ := m["verification"].(map[string]any)
		ui.EmailVerified = v != nil && str(v, "status") == "verified"
	}
	return ui
}
