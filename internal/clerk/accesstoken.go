package clerk

// Clerk-issued access tokens as a resource server sees them (AUTH_MODE=clerk):
// JWT access tokens verified locally with the instance's JWKS, and the
// Backend API's verify call as an alternative to /oauth/token_info for
// opaque ones. Wire facts §6 and §11.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EPVerify is the Backend API's OAuth access-token verify call (metrics name).
const EPVerify = "bapi_verify"

// AccessClaims are the claims of a Clerk JWT access token: client_id, exp,
// iat, iss, jti ("oat_…"), nbf, scope (a space-delimited string; the SDK
// also reads scp, an array), sub, and aud or org_id when granted.
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	Scp       []string `json:"scp"`
	JTI       string   `json:"jti"`
	Expiry    int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	OrgID     string   `json:"org_id"`
	Audience  audience `json:"aud"`
}

// Scopes are the granted scopes, from scope or else scp.
func (c AccessClaims) Scopes() []string {
	if c.Scope != "" {
		return strings.Fields(c.Scope)
	}
	return c.Scp
}

// Errors of access-token verification. ErrNotAccessToken and
// ErrBadAccessToken mean "refuse the token"; ErrUnavailable (from fetching
// the key set) means "try again".
var (
	ErrNotAccessToken = errors.New("clerk: not a Clerk OAuth JWT access token")
	ErrBadAccessToken = errors.New("clerk: invalid access token")
)

// LooksLikeJWT reports whether a bearer token has the three segments of a
// compact JWS (anything else is treated as opaque).
func LooksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// jwtHeader is the protected header. Clerk's JWTs also carry "cat" (since
// 2026-05): it is neither critical nor needed here, and must not make the
// token fail (strict libraries refused it).
type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// ParseAccessJWT reads a Clerk JWT access token WITHOUT verifying its
// signature: the header must say RS256 and typ at+jwt (RFC 9068, the rule
// Clerk's SDK uses to tell OAuth JWTs from session and ID tokens, which the
// same key signs), with no critical extensions, and the claims must decode.
// It is the parser of outside input; VerifyAccessJWT adds the signature and
// the time and issuer checks.
func ParseAccessJWT(token string) (AccessClaims, error) {
	var c AccessClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, ErrNotAccessToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return c, ErrNotAccessToken
	}
	var h jwtHeader
	if json.Unmarshal(raw, &h) != nil {
		return c, ErrNotAccessToken
	}
	switch strings.ToLower(h.Typ) {
	case "at+jwt", "application/at+jwt":
	default:
		return c, fmt.Errorf("%w: typ %q is not at+jwt", ErrNotAccessToken, h.Typ)
	}
	if h.Alg != "RS256" {
		return c, fmt.Errorf("%w: alg must be RS256", ErrBadAccessToken)
	}
	if len(h.Crit) > 0 {
		return c, fmt.Errorf("%w: critical header extensions are not understood", ErrBadAccessToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, fmt.Errorf("%w: payload encoding", ErrBadAccessToken)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%w: claims do not decode", ErrBadAccessToken)
	}
	if c.Subject == "" || c.ClientID == "" || c.Expiry == 0 {
		return c, fmt.Errorf("%w: sub, client_id and exp are required", ErrBadAccessToken)
	}
	return c, nil
}

// VerifyAccessJWT verifies a Clerk JWT access token: the header rules of
// ParseAccessJWT, the RS256 signature against the instance's JWKS (cached by
// kid; an unknown kid refetches once), iss equal to the Frontend API origin,
// exp and nbf with leeway. Audience, client and scopes are the caller's
// policy. A key set that cannot be fetched is ErrUnavailable.
func (c *Client) VerifyAccessJWT(ctx context.Context, token string, now time.Time, leeway time.Duration) (AccessClaims, error) {
	claims, err := ParseAccessJWT(token)
	if err != nil {
		return claims, err
	}
	payload, err := c.verifySigned(ctx, token, now, leeway, ErrBadAccessToken)
	if err != nil {
		return claims, err
	}
	// The verified payload is what counts, not the one parsed unverified.
	var verified AccessClaims
	if err := json.Unmarshal(payload, &verified); err != nil {
		return claims, fmt.Errorf("%w: claims do not decode", ErrBadAccessToken)
	}
	return verified, nil
}

// verifySigned checks what every Clerk JWT shares: the signature against
// the instance key set (cached by kid), iss equal to the Frontend API
// origin, exp and nbf with leeway. It returns the verified payload; bad is
// the kind of a refusal, and a key set that cannot be fetched is
// ErrUnavailable.
func (c *Client) verifySigned(ctx context.Context, token string, now time.Time, leeway time.Duration, bad error) ([]byte, error) {
	payload, err := c.keys.VerifySignature(ctx, token)
	if err != nil {
		// go-oidc reports a failed key-set fetch as "fetching keys …";
		// anything else is a signature that does not verify.
		if strings.HasPrefix(err.Error(), "fetching keys") {
			return nil, fmt.Errorf("clerk jwks: %w", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: signature", bad)
	}
	var std struct {
		Issuer    string `json:"iss"`
		Expiry    int64  `json:"exp"`
		NotBefore int64  `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, fmt.Errorf("%w: claims do not decode", bad)
	}
	switch {
	case std.Issuer != c.cfg.Issuer:
		return nil, fmt.Errorf("%w: issued by another Clerk instance", bad)
	case now.After(time.Unix(std.Expiry, 0).Add(leeway)):
		return nil, fmt.Errorf("%w: expired", bad)
	case std.NotBefore != 0 && now.Add(leeway).Before(time.Unix(std.NotBefore, 0)):
		return nil, fmt.Errorf("%w: not valid yet", bad)
	}
	return payload, nil
}

// verifyAnswer is the Backend API's answer about an OAuth access token
// (opaque: the clerk_idp_oauth_access_token object; an expired JWT:
// {"active": false}).
type verifyAnswer struct {
	Active    *bool    `json:"active"`
	ClientID  string   `json:"client_id"`
	Subject   string   `json:"subject"`
	Scopes    []string `json:"scopes"`
	Revoked   bool     `json:"revoked"`
	Expired   bool     `json:"expired"`
	Expiry    *number  `json:"expiration"`
	CreatedAt *number  `json:"created_at"`
	Audience  audience `json:"aud"`
}

// number is a JSON number that Clerk documents in milliseconds while its
// OpenAPI example shows seconds: a value above 1e12 is read as ms.
type number float64

func (n number) unixSeconds() int64 {
	if n > 1e12 {
		return int64(n / 1000)
	}
	return int64(n)
}

func (n *number) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*n = number(f)
	return nil
}

// VerifyAccessTokenBAPI asks the Backend API about an OAuth access token
// (POST /oauth_applications/access_tokens/verify, no /v1 as Clerk's own SDK
// calls it, Bearer CLERK_SECRET_KEY) and answers in introspection terms:
// active unless revoked, expired or unknown (404).
func (c *Client) VerifyAccessTokenBAPI(ctx context.Context, token string) (Introspection, error) {
	body, _ := json.Marshal(map[string]string{"access_token": token})
	var out verifyAnswer
	auth := func(r *http.Request) {
		c.bearerSecret(r)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Clerk-API-Version", "2026-05-12")
	}
	err := c.callBody(ctx, EPVerify, c.cfg.APIURL+"/oauth_applications/access_tokens/verify", auth, body, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return Introspection{Active: false}, nil // "OAuth token not found"
	}
	if err != nil {
		return Introspection{}, err
	}
	in := Introspection{ClientID: out.ClientID, Subject: out.Subject, Scope: strings.Join(out.Scopes, " "), Audience: out.Audience}
	in.Active = (out.Active == nil || *out.Active) && !out.Revoked && !out.Expired && out.ClientID != ""
	if out.Expiry != nil {
		in.Expiry = out.Expiry.unixSeconds()
	}
	if out.CreatedAt != nil {
		in.IssuedAt = out.CreatedAt.unixSeconds()
	}
	return in, nil
}

// BackendIntrospector introspects through the Backend API's verify call
// instead of /oauth/token_info: for clerk mode deployments that hold
// CLERK_SECRET_KEY but no confidential OAuth application.
type BackendIntrospector struct{ *Client }

// Introspect implements the verifier's introspection with the Backend API.
func (b BackendIntrospector) Introspect(ctx context.Context, token string) (Introspection, error) {
	return b.VerifyAccessTokenBAPI(ctx, token)
}
