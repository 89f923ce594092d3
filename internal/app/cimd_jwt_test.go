package app_test

// private_key_jwt (RFC 7523 §2.2) for metadata-document clients, the way
// ChatGPT connects: its document declares token_endpoint_auth_method
// private_key_jwt and a jwks_uri, and every request to /token carries a
// client_assertion signed with the published key. Documents and key sets are
// served on loopback (CIMD_ALLOW_LOOPBACK_FOR_TESTS, see security_cimd_test.go).

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// clientKey is a signing key a test client publishes.
type clientKey struct {
	jwk jose.JSONWebKey // private
	alg jose.SignatureAlgorithm
}

func newECKey(t *testing.T, kid string) clientKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{jwk: jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}, alg: jose.ES256}
}

func newRSAKey(t *testing.T, kid string, bits int) clientKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{jwk: jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}, alg: jose.RS256}
}

// jwksJSON publishes the public halves of keys.
func jwksJSON(t *testing.T, keys ...clientKey) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sign makes an assertion with claims (nil values are left out).
func (k clientKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range claims {
		if v == nil {
			delete(claims, name)
		}
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are valid assertion claims for client id at the env's token
// endpoint, with overrides (nil deletes).
func claimsFor(e *e2etest.Env, id string, override map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": id, "sub": id, "aud": e.BaseURL + "/token", "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": randomJTI()}
	for k, v := range override {
		c[k] = v
	}
	return c
}

func randomJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// chatGPTDoc is a metadata document in the shape ChatGPT publishes: a
// confidential client that signs, with its keys at a jwks_uri.
func chatGPTDoc(id, jwksURI string, override map[string]any) string {
	return cimdDoc(id, mergeMaps(map[string]any{
		"client_name": "ChatGPT", "client_uri": "https://chatgpt.com",
		"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwksURI,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid email profile",
	}, override))
}

func mergeMaps(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// assertForm is a token-endpoint form authenticated by assertion.
func assertForm(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	return form
}

// assertionFailures reads client_assertion_failures_total{reason}.
func assertionFailures(t *testing.T, e *e2etest.Env, reason string) int {
	t.Helper()
	resp, err := http.Get(e.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := `clerk_mcp_proxy_client_assertion_failures_total{reason="` + reason + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("no metric line %q", prefix)
	return 0
}

// TestPrivateKeyJWTFlow: a ChatGPT-shaped client runs the whole flow
// authenticated by assertions: discovery advertises private_key_jwt, the code
// exchange and the refresh each carry a fresh assertion (audience the token
// endpoint, then the issuer as rfc7523bis prefers), /mcp works, the key set
// is fetched once for all of it (cached in Redis), a replayed assertion and a
// refresh without one are refused, a rotated key is picked up, and nothing of
// the key reaches the log but its kid.
func TestPrivateKeyJWTFlow(t *testing.T) {
	d := newDocServer(t)
	key := newECKey(t, "chatgpt-2026-1")
	id := d.URL + "/oauth/chatgpt.json"
	jwksURI := d.serve("/oauth/jwks.json", docReply{body: jwksJSON(t, key), cc: "max-age=600"})
	d.serve("/oauth/chatgpt.json", docReply{body: chatGPTDoc(id, jwksURI, nil), cc: "max-age=300"})
	e := startCIMDEnv(t, d)

	meta := get(t, e.BaseURL+"/.well-known/oauth-authorization-server", nil).JSON()
	if !containsAny(meta["token_endpoint_auth_methods_supported"], "private_key_jwt") ||
		!containsAny(meta["token_endpoint_auth_signing_alg_values_supported"], "ES256") ||
		containsAny(meta["token_endpoint_auth_signing_alg_values_supported"], "HS256") ||
		containsAny(meta["token_endpoint_auth_signing_alg_values_supported"], "none") {
		t.Fatalf("AS metadata must advertise private_key_jwt with asymmetric algorithms only: %v / %v",
			meta["token_endpoint_auth_methods_supported"], meta["token_endpoint_auth_signing_alg_values_supported"])
	}

	c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
	p := e2etest.NewPKCE()
	code := e.SignIn(c, p, testflow.Choices{})
	codeForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cimdRedirect}, "code_verifier": {p.Verifier}}
	// Without an assertion the client is not authenticated, and the code survives.
	wantOAuthError(t, "code exchange without an assertion", postForm(t, e.BaseURL+"/token", mergeForm(codeForm, "client_id", id), nil),
		http.StatusUnauthorized, "invalid_client")
	status, out := e.Token(assertForm(mergeForm(codeForm, "client_id", id), key.sign(t, claimsFor(e, id, nil))))
	if status != http.StatusOK {
		t.Fatalf("code exchange with an assertion: %d %v", status, out)
	}
	c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
	if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
		t.Fatalf("/mcp with the access token: %d", s)
	}

	refresh := func(rt, assertion string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if assertion != "" {
			form = assertForm(form, assertion)
		} else {
			form.Set("client_id", id)
		}
		return e.Token(form)
	}
	// Refresh with the issuer as audience and no client_id in the form
	// (RFC 7523 §3: sub names the client).
	st, out := refresh(c.RefreshToken, key.sign(t, claimsFor(e, id, map[string]any{"aud": e.BaseURL})))
	if st != http.StatusOK {
		t.Fatalf("refresh with an assertion: %d %v", st, out)
	}
	c.RefreshToken = out["refresh_token"].(string)
	if st, out := refresh(c.RefreshToken, ""); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("refresh without an assertion: %d %v, want 401 invalid_client", st, out)
	}
	used := key.sign(t, claimsFor(e, id, nil))
	if st, out := refresh(c.RefreshToken, used); st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, out)
	} else {
		c.RefreshToken = out["refresh_token"].(string)
	}
	replays := assertionFailures(t, e, "replay")
	if st, out := refresh(c.RefreshToken, used); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("replayed assertion: %d %v, want 401 invalid_client", st, out)
	}
	if got := assertionFailures(t, e, "replay"); got != replays+1 {
		t.Errorf("replay metric %d -> %d", replays, got)
	}
	if n := d.hitsFor("/oauth/jwks.json"); n != 1 {
		t.Errorf("the key set was fetched %d times, want 1 (cached and shared)", n)
	}

	// Key rotation: the client publishes a new key and signs with it; the
	// unknown kid makes one fresh fetch, and the new key works.
	rotated := newECKey(t, "chatgpt-2026-2")
	d.serve("/oauth/jwks.json", docReply{body: jwksJSON(t, key, rotated), cc: "max-age=600"})
	if st, out := refresh(c.RefreshToken, rotated.sign(t, claimsFor(e, id, nil))); st != http.StatusOK {
		t.Fatalf("refresh signed with a rotated key: %d %v", st, out)
	} else {
		c.RefreshToken = out["refresh_token"].(string)
	}
	if n := d.hitsFor("/oauth/jwks.json"); n != 2 {
		t.Errorf("after a rotation the key set was fetched %d times in all, want 2", n)
	}
	// Another unknown kid within the pacing interval fetches nothing.
	stranger := newECKey(t, "made-up-kid")
	if st, out := refresh(c.RefreshToken, stranger.sign(t, claimsFor(e, id, nil))); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("assertion with an unknown kid: %d %v", st, out)
	}
	if n := d.hitsFor("/oauth/jwks.json"); n != 2 {
		t.Errorf("an unknown kid within the pacing interval fetched the key set again (%d fetches)", n)
	}

	// Revocation authenticates the same way.
	r := postForm(t, e.BaseURL+"/revoke", assertForm(url.Values{"token": {c.RefreshToken}}, key.sign(t, claimsFor(e, id, map[string]any{"aud": e.BaseURL + "/revoke"}))), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("revoke with an assertion: %d %s", r.Status, r.Body)
	}

	pub := key.jwk.Public().Key.(*ecdsa.PublicKey)
	x := base64.RawURLEncoding.EncodeToString(pub.X.Bytes())
	if logs := e.Logs.String(); strings.Contains(logs, x) || strings.Contains(logs, used) {
		t.Errorf("the log holds key material or an assertion")
	}
}

func mergeForm(f url.Values, k, v string) url.Values {
	out := url.Values{}
	for name, vals := range f {
		out[name] = append([]string(nil), vals...)
	}
	out.Set(k, v)
	return out
}

func containsAny(v any, want string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == want {
			return true
		}
	}
	return false
}

// TestPrivateKeyJWTRefusals: every bad assertion, bad key set and bad
// document gets a clear 401 invalid_client, counted under its reason, never
// a 5xx. The request is a refresh with a made-up token: authentication comes
// first, so a valid assertion would reach 400 invalid_grant.
func TestPrivateKeyJWTRefusals(t *testing.T) {
	d := newDocServer(t)
	e := startCIMDEnv(t, d)
	key := newECKey(t, "k1")
	other := newECKey(t, "k1") // same kid, another key
	small := newRSAKey(t, "small", 1024)

	// publish serves a document (and its key set) under a fresh path.
	n := 0
	publish := func(jwks string, override map[string]any) string {
		n++
		base := fmt.Sprintf("/c%d", n)
		jwksURI := d.serve(base+"/jwks.json", docReply{body: jwks})
		id := d.URL + base + "/client.json"
		d.serve(base+"/client.json", docReply{body: chatGPTDoc(id, jwksURI, override)})
		return id
	}
	good := publish(jwksJSON(t, key), nil)
	public := func() string {
		n++
		id := d.URL + fmt.Sprintf("/c%d/public.json", n)
		d.serve(fmt.Sprintf("/c%d/public.json", n), docReply{body: cimdDoc(id, nil)})
		return id
	}()
	header := func(h map[string]any, claims map[string]any, sig []byte) string {
		hb, _ := json.Marshal(h)
		cb, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb) + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	hs256 := func(id string) string {
		// HMAC keyed with the client's public key: the classic confusion attack.
		pubJSON, _ := json.Marshal(key.jwk.Public())
		unsigned := header(map[string]any{"alg": "HS256", "kid": "k1"}, claimsFor(e, id, nil), nil)
		unsigned = unsigned[:strings.LastIndex(unsigned, ".")]
		m := hmac.New(sha256.New, pubJSON)
		m.Write([]byte(unsigned))
		return unsigned + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	replayed := key.sign(t, claimsFor(e, good, nil))
	closed := d.URL[:strings.LastIndex(d.URL, ":")] + ":1/jwks.json" // nothing listens on port 1

	for _, tc := range []struct {
		name, reason string
		id           string                 // client_id sent in the form ("" = none)
		assertion    func(id string) string // built for the form's client
	}{
		{"valid assertion reaches the grant", "", good, func(id string) string { return key.sign(t, claimsFor(e, id, nil)) }},
		{"alg none", "alg", good, func(id string) string {
			return header(map[string]any{"alg": "none"}, claimsFor(e, id, nil), nil)
		}},
		{"HS256 keyed with the public key", "alg", good, hs256},
		{"garbage", "malformed", good, func(string) string { return "not.a.jws" }},
		{"no jti", "malformed", good, func(id string) string { return key.sign(t, claimsFor(e, id, map[string]any{"jti": nil})) }},
		{"no exp", "malformed", good, func(id string) string { return key.sign(t, claimsFor(e, id, map[string]any{"exp": nil})) }},
		{"wrong aud", "audience", good, func(id string) string {
			return key.sign(t, claimsFor(e, id, map[string]any{"aud": "https://other-as.example/token"}))
		}},
		{"aud with several values", "audience", good, func(id string) string {
			return key.sign(t, claimsFor(e, id, map[string]any{"aud": []string{e.BaseURL, "https://other-as.example"}}))
		}},
		{"expired", "expiry", good, func(id string) string {
			return key.sign(t, claimsFor(e, id, map[string]any{"exp": time.Now().Add(-2 * time.Minute).Unix()}))
		}},
		{"exp too far ahead", "expiry", good, func(id string) string {
			return key.sign(t, claimsFor(e, id, map[string]any{"exp": time.Now().Add(time.Hour).Unix()}))
		}},
		{"iss is not the client", "client", good, func(id string) string {
			return key.sign(t, claimsFor(e, id, map[string]any{"iss": "https://evil.example/client.json"}))
		}},
		{"sub is not the form's client_id", "client", good, func(string) string {
			return key.sign(t, claimsFor(e, public, nil))
		}},
		{"public client sends an assertion", "client", public, func(id string) string { return key.sign(t, claimsFor(e, id, nil)) }},
		{"signed by another key with the same kid", "signature", good, func(id string) string {
			return other.sign(t, claimsFor(e, id, nil))
		}},
		{"replayed jti", "replay", good, func(string) string { return replayed }},
		{"key set with only an RSA-1024 key", "keys", publish(jwksJSON(t, small), nil), func(id string) string {
			return small.sign(t, claimsFor(e, id, nil))
		}},
		{"key set that is not JSON", "keys", publish("<html>", nil), func(id string) string { return key.sign(t, claimsFor(e, id, nil)) }},
		{"key set with a symmetric key", "keys", publish(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"k1"}]}`, nil), func(id string) string {
			return key.sign(t, claimsFor(e, id, nil))
		}},
		{"unreachable jwks_uri", "keys", publish("", map[string]any{"jwks_uri": closed}), func(id string) string {
			return key.sign(t, claimsFor(e, id, nil))
		}},
		{"jwks_uri answers 404", "keys", publish("", map[string]any{"jwks_uri": d.URL + "/nowhere/jwks.json"}), func(id string) string {
			return key.sign(t, claimsFor(e, id, nil))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "replayed jti" {
				// First use is fine (it reaches the grant)...
				r := postForm(t, e.BaseURL+"/token", assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}, "client_id": {tc.id}}, replayed), nil)
				wantOAuthError(t, "first use", r, http.StatusBadRequest, "invalid_grant")
			}
			before := 0
			if tc.reason != "" {
				before = assertionFailures(t, e, tc.reason)
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}, "client_id": {tc.id}}
			r := postForm(t, e.BaseURL+"/token", assertForm(form, tc.assertion(tc.id)), nil)
			if tc.reason == "" {
				wantOAuthError(t, tc.name, r, http.StatusBadRequest, "invalid_grant")
				return
			}
			wantOAuthError(t, tc.name, r, http.StatusUnauthorized, "invalid_client")
			if got := assertionFailures(t, e, tc.reason); got != before+1 {
				t.Errorf("client_assertion_failures_total{reason=%q} %d -> %d", tc.reason, before, got)
			}
		})
	}

	// A private_key_jwt client must publish usable keys, in one way.
	for name, override := range map[string]map[string]any{
		"no keys":                 {"jwks_uri": nil},
		"jwks_uri and jwks":       {"jwks": json.RawMessage(jwksJSON(t, key))},
		"jwks_uri over http":      {"jwks_uri": "http://127.0.0.1/jwks.json"},
		"inline RSA-1024 key":     {"jwks_uri": nil, "jwks": json.RawMessage(jwksJSON(t, small))},
		"inline private key":      {"jwks_uri": nil, "jwks": json.RawMessage(`{"keys":[` + mustJSON(t, key.jwk) + `]}`)},
		"inline key set not JSON": {"jwks_uri": nil, "jwks": "keys"},
	} {
		t.Run("document: "+name, func(t *testing.T) {
			id := publish(jwksJSON(t, key), override)
			r := get(t, e.AuthorizeURL(&e2etest.Client{ID: id, RedirectURI: cimdRedirect}, e2etest.NewPKCE(), "state-cimd-1234", nil), nil)
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Fatalf("authorize with the document: %d %q, want a local 400 page", r.Status, r.Header.Get("Location"))
			}
			tok := postForm(t, e.BaseURL+"/token", assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}, "client_id": {id}},
				key.sign(t, claimsFor(e, id, nil))), nil)
			wantOAuthError(t, "token", tok, http.StatusUnauthorized, "invalid_client")
		})
	}

	// An inline key set works like a jwks_uri.
	inline := publish("", map[string]any{"jwks_uri": nil, "jwks": json.RawMessage(jwksJSON(t, key))})
	r := postForm(t, e.BaseURL+"/token", assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}, "client_id": {inline}},
		key.sign(t, claimsFor(e, inline, nil))), nil)
	wantOAuthError(t, "inline jwks", r, http.StatusBadRequest, "invalid_grant")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPrivateKeyJWTWithTypeScriptSDK: the assertion comes from the
// official MCP TypeScript SDK's createPrivateKeyJwtAuth (panva's jose under
// it), with the SDK's own defaults (audience = the issuer from the AS
// metadata, 300 s lifetime, its jti); the proxy accepts it at /token. Needs
// node and e2e/node_modules (scripts/deps installs them).
func TestPrivateKeyJWTWithTypeScriptSDK(t *testing.T) {
	sdk, err := filepath.Abs("../../e2e/node_modules/@modelcontextprotocol/sdk")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(sdk); err != nil || serr != nil {
		t.Skip("needs node and e2e/node_modules (bash scripts/deps)")
	}
	d := newDocServer(t)
	key := newRSAKey(t, "sdk-key", 2048)
	id := d.URL + "/sdk/client.json"
	jwksURI := d.serve("/sdk/jwks.json", docReply{body: jwksJSON(t, key)})
	d.serve("/sdk/client.json", docReply{body: chatGPTDoc(id, jwksURI, nil)})
	e := startCIMDEnv(t, d)

	sign := func() url.Values {
		in, _ := json.Marshal(map[string]any{"sdk": sdk, "issuer": e.BaseURL, "clientId": id, "privateJwk": key.jwk, "alg": "RS256"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, node, "testdata/sdk-private-key-jwt.mjs", string(in)).Output()
		if err != nil {
			t.Fatalf("node: %v %s", err, out)
		}
		var params map[string]string
		if err := json.Unmarshal(out, &params); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		f := url.Values{}
		for k, v := range params {
			f.Set(k, v)
		}
		return f
	}
	c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
	p := e2etest.NewPKCE()
	code := e.SignIn(c, p, testflow.Choices{})
	form := sign()
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("redirect_uri", cimdRedirect)
	form.Set("code_verifier", p.Verifier)
	form.Set("client_id", id)
	status, out := e.Token(form)
	if status != http.StatusOK {
		t.Fatalf("code exchange with the SDK's assertion: %d %v", status, out)
	}
	form = sign()
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", out["refresh_token"].(string))
	if status, out := e.Token(form); status != http.StatusOK {
		t.Fatalf("refresh with the SDK's assertion: %d %v", status, out)
	}
}

// TestPrivateKeyJWTReplayAcrossReplicas: an assertion accepted by replica
// A is a replay at replica B (the jti record lives in Redis), and B fetched
// no key set of its own (the cached one is shared).
func TestPrivateKeyJWTReplayAcrossReplicas(t *testing.T) {
	d := newDocServer(t)
	key := newECKey(t, "k1")
	id := d.URL + "/r/client.json"
	jwksURI := d.serve("/r/jwks.json", docReply{body: jwksJSON(t, key)})
	d.serve("/r/client.json", docReply{body: chatGPTDoc(id, jwksURI, nil)})
	e := startCIMDEnv(t, d)
	b := startReplicaWith(t, e, app.Options{CIMDClient: d.client()})

	assertion := key.sign(t, claimsFor(e, id, nil))
	form := assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}, "client_id": {id}}, assertion)
	// Authenticated at A: the made-up refresh token is what fails there.
	wantOAuthError(t, "at A", postForm(t, e.BaseURL+"/token", form, nil), http.StatusBadRequest, "invalid_grant")
	status, body := b.do(http.MethodPost, "/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
		t.Fatalf("the same assertion at B: %d %s, want 401 invalid_client", status, body)
	}
	if n := d.hitsFor("/r/jwks.json"); n != 1 {
		t.Errorf("the key set was fetched %d times by two replicas, want 1", n)
	}
}
