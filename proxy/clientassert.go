package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// RFC 7523 §2.2 client authentication (private_key_jwt), for clients that
// identify by a metadata document (ChatGPT's does) and publish their keys.

// clientAssertionType is the only client_assertion_type (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// maxAssertionBytes bounds what is parsed at all: a signed assertion with
	// an RSA-4096 signature is well under 2 KB.
	maxAssertionBytes = 8 << 10
	// maxAssertionLifetime is how far in the future exp may be. It bounds how
	// long a jti is remembered and how long a leaked assertion is worth
	// anything; clients sign one per request with a lifetime of seconds to a
	// few minutes (the TypeScript SDK: 300 s).
	maxAssertionLifetime = 10 * time.Minute
	// assertionSkew tolerates clocks that disagree a little.
	assertionSkew = 30 * time.Second
	maxJTIBytes   = 256
	// jwksMaxBytes: key sets with a few RSA keys and certificates exceed the
	// 5 KB metadata-document cap.
	jwksMaxBytes = 64 << 10
	// jwksRefetchPacing is the least time between two fetches of one jwks_uri
	// caused by an unknown kid, across all replicas: key rotation is picked up
	// at once, while a stream of made-up kids cannot turn this server into a
	// fetch amplifier against the client's host.
	jwksRefetchPacing = time.Minute
	minRSABits        = 2048
)

// assertionAlgs are the signature algorithms accepted, an explicit list:
// asymmetric only, so neither "none" nor an HMAC keyed with a public key can
// pass (go-jose refuses any other alg at parse time).
var assertionAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// assertionAlgNames is assertionAlgs for the metadata document.
func assertionAlgNames() []string {
	out := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		out[i] = string(a)
	}
	return out
}

// Reasons a client assertion is refused: the label of
// client_assertion_failures_total, one value each so operators see which
// check clients trip over.
const (
	assertMalformed   = "malformed"   // not a compact JWS with the claims RFC 7523 requires
	assertAlg         = "alg"         // alg outside assertionAlgs (none, HS256, ...)
	assertClient      = "client"      // iss/sub/client_id disagree, unknown client, or not a private_key_jwt client
	assertAudience    = "audience"    // aud is not this authorization server
	assertExpiry      = "expiry"      // expired, not yet valid, or exp too far ahead
	assertKeys        = "keys"        // the key set is unreachable, unreadable or has no usable key
	assertKeyUnknown  = "key_unknown" // no key with the assertion's kid
	assertSignature   = "signature"   // no published key verifies it
	assertReplay      = "replay"      // jti seen before
	assertUnavailable = "store_unavailable"
)

// AssertionFailureReasons lists the reason label values (metrics pre-creates
// them).
var AssertionFailureReasons = []string{assertMalformed, assertAlg, assertClient, assertAudience, assertExpiry,
	assertKeys, assertKeyUnknown, assertSignature, assertReplay, assertUnavailable}

// assertion is a parsed, not yet verified, client assertion.
type assertion struct {
	token  *jwt.JSONWebToken
	kid    string
	alg    jose.SignatureAlgorithm
	claims jwt.Claims
}

// parseAssertion reads a client assertion without trusting it: a compact JWS
// with one signature, an allowed alg, and the claims RFC 7523 §3 requires
// (iss, sub, aud, exp, jti; jti because this server enforces single use).
// Its error says which of these is wrong and is safe to show.
func parseAssertion(raw string) (assertion, string, error) {
	var a assertion
	if raw == "" || len(raw) > maxAssertionBytes {
		return a, assertMalformed, errors.New("client_assertion is empty or larger than 8 KB")
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil {
		// go-jose says "unexpected signature algorithm" for an alg outside
		// the list; tell that apart so "none" and HS256 are counted as such.
		if hdr, ok := compactHeader(raw); ok && !slices.Contains(assertionAlgs, jose.SignatureAlgorithm(hdr.Alg)) {
			return a, assertAlg, fmt.Errorf("client_assertion alg %q is not accepted; use one of %v", truncate(hdr.Alg, 20), assertionAlgNames())
		}
		return a, assertMalformed, errors.New("client_assertion is not a compact JWS")
	}
	if len(tok.Headers) != 1 {
		return a, assertMalformed, errors.New("client_assertion must carry exactly one signature")
	}
	a.token, a.kid, a.alg = tok, tok.Headers[0].KeyID, jose.SignatureAlgorithm(tok.Headers[0].Algorithm)
	if err := tok.UnsafeClaimsWithoutVerification(&a.claims); err != nil {
		return a, assertMalformed, errors.New("client_assertion claims are not a JSON object of registered claims")
	}
	c := a.claims
	switch {
	case c.Issuer == "" || c.Subject == "":
		return a, assertMalformed, errors.New("client_assertion needs iss and sub")
	case len(c.Audience) == 0:
		return a, assertMalformed, errors.New("client_assertion needs aud")
	case c.Expiry == nil:
		return a, assertMalformed, errors.New("client_assertion needs exp")
	case c.ID == "" || len(c.ID) > maxJTIBytes:
		return a, assertMalformed, errors.New("client_assertion needs a jti of at most 256 bytes")
	}
	return a, "", nil
}

// compactHeader decodes the protected header of a compact JWS, for the error
// message only.
func compactHeader(raw string) (struct{ Alg string }, bool) {
	var h struct{ Alg string }
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || json.Unmarshal(b, &h) != nil {
		return h, false
	}
	return h, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// authenticateAssertion authenticates a client by its RFC 7523 assertion.
// endpoint is the path called, whose URL is an acceptable audience too.
func (s *Server) authenticateAssertion(r *http.Request, p params) (store.Client, *oauthError) {
	fail := func(reason, desc string, cause error) (store.Client, *oauthError) {
		s.metrics.ClientAssertionFailures.WithLabelValues(reason).Inc()
		if reason != assertReplay && reason != assertUnavailable { // a replay has its own audit line
			s.audit(r, "client_assertion_refused", "reason", reason, "client_id", truncate(p.get("client_id"), 200))
		}
		if reason == assertUnavailable {
			return store.Client{}, errUnavailable("the authorization server is temporarily unavailable").WithCause(cause)
		}
		return store.Client{}, errInvalidClient(desc, false).WithCause(cause)
	}
	if t := p.get("client_assertion_type"); t != clientAssertionType {
		return fail(assertMalformed, "client_assertion_type must be "+clientAssertionType, nil)
	}
	a, reason, err := parseAssertion(p.get("client_assertion"))
	if err != nil {
		return fail(reason, err.Error(), nil)
	}
	c := a.claims
	id := p.get("client_id")
	if id == "" {
		id = c.Subject
	}
	// RFC 7523 §3: iss and sub are the client_id (and so is the form's
	// client_id when sent, RFC 7521 §4.2).
	if c.Issuer != id || c.Subject != id {
		return fail(assertClient, "client_assertion iss and sub must both equal the client_id", nil)
	}
	if !s.assertionAudience(c.Audience, r.URL.Path) {
		return fail(assertAudience, "client_assertion aud must be this authorization server's issuer ("+s.cfg.Issuer+") or its token endpoint URL", nil)
	}
	now := s.now()
	exp := c.Expiry.Time()
	switch {
	case !now.Before(exp.Add(assertionSkew)):
		return fail(assertExpiry, "client_assertion has expired", nil)
	case exp.Sub(now) > maxAssertionLifetime:
		return fail(assertExpiry, "client_assertion exp is more than 10 minutes ahead; sign a short-lived assertion per request", nil)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionSkew)),
		c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionSkew)):
		return fail(assertExpiry, "client_assertion is not valid yet (nbf or iat in the future)", nil)
	}
	client, oerr := s.findClient(r, id, false)
	if oerr != nil {
		reason := assertClient
		if oerr.Status != http.StatusUnauthorized {
			reason = assertUnavailable
		}
		s.metrics.ClientAssertionFailures.WithLabelValues(reason).Inc()
		return client, oerr
	}
	if client.TokenEndpointAuthMethod != authJWTKey {
		return fail(assertClient, "this client does not authenticate with private_key_jwt", nil)
	}
	keys, reason, err := s.cimd.verificationKeys(r.Context(), client, a.kid, a.alg)
	if err != nil {
		// The cause names the kid at most: nothing else of the keys is logged.
		return fail(reason, err.Error(), nil)
	}
	verified := false
	for _, k := range keys {
		if a.token.Claims(k.Key, &jwt.Claims{}) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail(assertSignature, "client_assertion signature does not verify with the client's published keys", fmt.Errorf("kid %q", truncate(a.kid, 64)))
	}
	// Single use across replicas: the first put of (client, jti) wins, and
	// the record outlives the assertion, so a replay finds it.
	ttl := exp.Sub(now) + assertionSkew
	err = s.store.PutTicket(r.Context(), store.KindAssertion, seal.HashHex(id+"\x00"+c.ID), []byte{1}, ttl)
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		s.audit(r, "client_assertion_replayed", "client_id", id)
		return fail(assertReplay, "client_assertion was already used (jti); sign a new one per request", nil)
	case err != nil:
		s.storeError(r, "put_assertion_jti", err)
		return fail(assertUnavailable, "", err)
	}
	return client, nil
}

// assertionAudience applies RFC 7523 §3 as updated by draft-ietf-oauth-
// rfc7523bis: the audience is one value (a string or a one-element array,
// -03), and it is this server's issuer identifier (what rfc7523bis says
// clients SHOULD send) or, for the clients written to RFC 7523 and OIDC Core
// §9, the token endpoint URL or the URL of the endpoint being called. Several
// values are refused: an assertion meant for many audiences is the shape of
// the audience-injection attack rfc7523bis closes.
func (s *Server) assertionAudience(aud jwt.Audience, path string) bool {
	if len(aud) != 1 {
		return false
	}
	switch aud[0] {
	case s.cfg.Issuer, s.cfg.Issuer + "/token", s.cfg.Issuer + path:
		return true
	}
	return false
}

// verificationKeys returns the client's published keys that may verify an
// assertion with kid and alg. A kid the cached key set lacks makes one fresh
// fetch, paced across replicas (key rotation); the reason label and a
// showable error come back on failure.
func (f *cimdFetcher) verificationKeys(ctx context.Context, c store.Client, kid string, alg jose.SignatureAlgorithm) ([]jose.JSONWebKey, string, error) {
	var set []jose.JSONWebKey
	var err error
	fresh := true
	if c.JWKSURI == "" {
		set, err = parseJWKS([]byte(c.JWKS))
	} else {
		set, fresh, err = f.jwks(ctx, c.JWKSURI, false)
	}
	if err != nil {
		return nil, assertKeys, err
	}
	match := usableKeys(set, kid, alg)
	if len(match) == 0 && kid != "" && !fresh {
		if set, _, err = f.jwks(ctx, c.JWKSURI, true); err != nil {
			return nil, assertKeys, err
		}
		match = usableKeys(set, kid, alg)
	}
	if len(match) == 0 {
		if kid != "" {
			return nil, assertKeyUnknown, fmt.Errorf("the client's key set has no usable %s key with kid %q", alg, truncate(kid, 64))
		}
		return nil, assertKeyUnknown, fmt.Errorf("the client's key set has no usable %s key", alg)
	}
	return match, "", nil
}

// usableKeys keeps the keys of set that could verify an alg signature under
// kid (any key when kid is empty).
func usableKeys(set []jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == string(alg)) && keyFitsAlg(k.Key, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keyFitsAlg reports whether key is the kind of public key alg uses.
func keyFitsAlg(key any, alg jose.SignatureAlgorithm) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' || alg[0] == 'P'
	case *ecdsa.PublicKey:
		return alg[0] == 'E' && alg != jose.EdDSA
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// jwks returns the key set published at uri, from the shared cache unless
// refetch, and whether it was fetched just now. A refetch happens at most
// once per jwksRefetchPacing per uri across replicas; otherwise the cached
// set is returned.
func (f *cimdFetcher) jwks(ctx context.Context, uri string, refetch bool) ([]jose.JSONWebKey, bool, error) {
	key := "jwks:" + seal.HashHex(uri)
	raw, err := f.store.GetCache(ctx, key)
	if err == nil && refetch {
		// The lease is never released: its expiry is the pacing.
		_, ok, lerr := f.store.TryLock(ctx, "jwks-refetch:"+seal.HashHex(uri), jwksRefetchPacing)
		if lerr != nil || !ok {
			set, perr := parseJWKS(raw)
			return set, false, perr
		}
	} else if err == nil {
		set, perr := parseJWKS(raw)
		return set, false, perr
	}
	raw, ttl, err := f.fetchJWKS(ctx, uri)
	if err != nil {
		f.log.WarnContext(ctx, "client key set refused", "jwks_uri", uri, "err", err)
		return nil, true, err
	}
	set, err := parseJWKS(raw)
	if err != nil {
		f.log.WarnContext(ctx, "client key set refused", "jwks_uri", uri, "err", err)
		return nil, true, err
	}
	if err := f.store.SetCache(ctx, key, raw, ttl); err != nil {
		f.log.WarnContext(ctx, "caching a client key set failed", "err", err)
	}
	return set, true, nil
}

// fetchJWKS GETs a key set through the SSRF-guarded client.
func (f *cimdFetcher) fetchJWKS(ctx context.Context, uri string) ([]byte, time.Duration, error) {
	body, cacheControl, err := f.get(ctx, uri, "application/json, application/jwk-set+json", jwksMaxBytes, "64 KB")
	if err != nil {
		return nil, 0, fmt.Errorf("the client's key set (jwks_uri): %v", err)
	}
	// Keys are public, so no-store protects nothing here; a key set is
	// cached at least a minute so each assertion does not cost a fetch.
	ttl := cacheTTL(cacheControl)
	if ttl == 0 {
		ttl = cimdMinTTL
	}
	return body, ttl, nil
}

// parseJWKS reads a JSON Web Key Set (RFC 7517 §5) and keeps the keys fit to
// verify signatures: public RSA keys of at least 2048 bits, EC keys on P-256,
// P-384 or P-521, Ed25519 keys; "use" absent or "sig". Keys of other types
// are skipped (a set may hold encryption keys too); a symmetric or private
// key, or a set with no usable key, refuses the whole set: a client that
// publishes either has misunderstood what it publishes.
func parseJWKS(raw []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Keys) == 0 {
		return nil, errors.New("the client's key set is not a JSON Web Key Set with keys")
	}
	var out []jose.JSONWebKey
	tooSmall := false
	for _, kr := range doc.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(kr) != nil {
			continue // an unknown kty or a malformed key: not one we could use
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < minRSABits {
				tooSmall = true
				continue
			}
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() && key.Curve != elliptic.P521() {
				continue
			}
		case ed25519.PublicKey:
		default:
			return nil, errors.New("the client's key set holds a symmetric or private key; publish public keys only")
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		if tooSmall {
			return nil, errors.New("the client's key set has no usable key (RSA keys must have at least 2048 bits)")
		}
		return nil, errors.New("the client's key set has no usable signing key")
	}
	return out, nil
}

// validJWKSURI: a key set comes from an https URL like the document itself.
func validJWKSURI(u string) bool { return clientid.IsMetadataDocument(u) }
