package mockclerk

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
)

// Token categories: since 2026-05-27 every JWT Clerk signs carries a "cat"
// protected header naming what kind of token it is (clerk/javascript#9038,
// #9469), and verifiers that reject unknown headers broke on it. Session
// tokens carry cl_B7d4PD111AAA (@clerk/backend); the value on OAuth tokens
// is not published, so the fake uses one of the
// same shape: what matters is that every JWT it signs has the header.
const catOAuthToken = "cl_B7d4PD444AAA"

// sign makes an RS256 JWT with the instance key (kid "ins_…") and the
// category header cat.
func (s *Server) sign(typ, cat string, claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", s.kid).WithHeader("cat", cat)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// parseOwnJWT verifies a JWT signed by this instance and returns its claims.
func (s *Server) parseOwnJWT(token string) (map[string]any, bool) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, false
	}
	payload, err := jws.Verify(&s.key.PublicKey)
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return nil, false
	}
	return claims, true
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"use": "sig", "kty": "RSA", "kid": s.kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// catSessionToken is Clerk's category of session tokens (@clerk/backend
// JWT_CATEGORY_SESSION_TOKEN).
const catSessionToken = "cl_B7d4PD111AAA"

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomToken(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomAlnum(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}
