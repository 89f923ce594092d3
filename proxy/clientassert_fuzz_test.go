package proxy

// Fuzz targets for the private_key_jwt parsers: client assertions (RFC 7523)
// and JSON Web Key Sets a client publishes. Both read outside input before
// anything is trusted.
//
//	go test -run='^$' -fuzz='^FuzzParseAssertion$' -fuzztime=20s ./proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzParseAssertion: any string either is refused with a reason label from
// the known list and a message, or yields an assertion with an allowed alg,
// one signature and every claim RFC 7523 requires. No panic either way.
func FuzzParseAssertion(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, nil)
	if err != nil {
		f.Fatal(err)
	}
	good, err := jwt.Signed(signer).Claims(map[string]any{"iss": "https://c.example/c.json", "sub": "https://c.example/c.json",
		"aud": []string{"https://as.example/token"}, "exp": time.Now().Add(time.Minute).Unix(), "jti": "j1"}).Serialize()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, good[:len(good)/2], "", ".", "..", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "eyJhbGciOiJFUzI1NiJ9.bnVsbA.c2ln", "a.b.c.d.e"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, reason, err := parseAssertion(raw)
		if err != nil {
			if !slices.Contains(AssertionFailureReasons, reason) || err.Error() == "" {
				t.Fatalf("refusal with reason %q, message %q", reason, err)
			}
			return
		}
		c := a.claims
		if !slices.Contains(assertionAlgs, a.alg) || len(a.token.Headers) != 1 || c.Issuer == "" || c.Subject == "" ||
			len(c.Audience) == 0 || c.Expiry == nil || c.ID == "" || len(c.ID) > maxJTIBytes || len(raw) > maxAssertionBytes {
			t.Fatalf("accepted an assertion that breaks the rules: alg %q claims %+v", a.alg, c)
		}
	})
}

// FuzzParseJWKS: any bytes are refused, or give keys that are all public
// signing keys of an accepted kind and size.
func FuzzParseJWKS(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ec.PublicKey, KeyID: "e"}, {Key: &rk.PublicKey, KeyID: "r", Use: "sig"}}})
	for _, seed := range []string{string(set), `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"AAAA"}]}`, `null`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := parseJWKS(raw)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
				t.Fatalf("unusable key kept: %T use %q", k.Key, k.Use)
			}
			if r, ok := k.Key.(*rsa.PublicKey); ok && r.N.BitLen() < minRSABits {
				t.Fatalf("RSA key of %d bits kept", r.N.BitLen())
			}
			if !keyFitsAlg(k.Key, jose.RS256) && !keyFitsAlg(k.Key, jose.ES256) && !keyFitsAlg(k.Key, jose.ES384) &&
				!keyFitsAlg(k.Key, jose.ES512) && !keyFitsAlg(k.Key, jose.EdDSA) {
				t.Fatalf("key of type %T kept", k.Key)
			}
		}
	})
}
