package proxy

// SSRF guard of the client metadata document fetcher: with the test setting
// off (the default) the dialer refuses every non-public destination at
// connect time, after DNS resolution, so neither an IP literal nor a name
// that resolves (or rebinds) to an internal address gets through; redirects
// are not followed, documents are capped at 5 KB, and a server that never
// answers cannot hold a request.

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

// TestCIMDGuardRefusesNonPublicAddresses dials every class of internal
// address through the default (guarded) client. The refusal must be the
// guard's own error, which the dialer's Control hook returns before any
// packet is sent.
func TestCIMDGuardRefusesNonPublicAddresses(t *testing.T) {
	t.Parallel()
	client := NewCIMDHTTPClient(false, nil)
	for _, hostport := range []string{
		"127.0.0.1:443", "127.9.9.9:8443", "[::1]:443", // loopback
		"localhost:443",                                     // a name resolving to loopback: checked after DNS
		"10.0.0.1:443", "172.16.5.4:443", "192.168.1.1:443", // RFC 1918
		"169.254.169.254:80", "169.254.0.1:443", "[fe80::1]:443", // link-local, cloud metadata
		"[fd00:ec2::254]:443", "[fc00::1]:443", // unique local (AWS IPv6 metadata)
		"100.64.0.1:443",                         // CGNAT
		"0.0.0.0:443", "0.1.2.3:443", "[::]:443", // unspecified / "this network"
		"224.0.0.1:443", "[ff02::1]:443", "255.255.255.255:443", // multicast, broadcast
		"240.0.0.1:443", "198.18.0.1:443", "192.0.0.8:443", // reserved, benchmarking, IETF protocol assignments
		"[::ffff:127.0.0.1]:443", "[::ffff:169.254.169.254]:443", // IPv4-mapped IPv6
		"[64:ff9b::a9fe:a9fe]:443", "[2002:a9fe:a9fe::1]:443", // NAT64 and 6to4 wrapping 169.254.169.254
	} {
		t.Run(hostport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+hostport+"/client.json", nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("fetched https://%s", hostport)
			}
			if !errors.Is(err, errBlockedAddress) {
				t.Fatalf("https://%s failed, but not by the guard: %v", hostport, err)
			}
		})
	}
}

// TestPublicIP pins the classification, including public addresses that must
// stay reachable.
func TestPublicIP(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "93.184.215.14": true, "2606:4700:4700::1111": true, "2a00:1450:4001::200e": true,
		"64:ff9b::808:808": true, // NAT64 of a public address
		"127.0.0.1":        false, "10.1.2.3": false, "172.31.255.255": false, "192.168.0.1": false, "169.254.169.254": false,
		"100.127.255.254": false, "0.0.0.0": false, "::": false, "::1": false, "fe80::1": false, "fd12:3456::1": false,
		"::ffff:10.0.0.1": false, "224.1.1.1": false, "255.255.255.255": false, "240.0.0.1": false, "198.19.255.255": false,
		"192.0.2.10": false, "198.51.100.1": false, "203.0.113.1": false, "2001:db8::1": false,
		"64:ff9b::7f00:1": false, "2002:0a00:0001::1": false,
	} {
		if got := publicIP(net.ParseIP(addr)); got != want {
			t.Errorf("publicIP(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestCIMDGuardIsAtDialTime: the same loopback TLS server is reachable with
// the guard off and refused with it on, whether named by IP or by a host
// name; so the refusal comes from the guard checking the resolved address,
// not from a failed connection or a host-name blocklist.
func TestCIMDGuardIsAtDialTime(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("{}"))
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))

	open := NewCIMDHTTPClient(true, pool)
	resp, err := open.Get(srv.URL + "/client.json")
	if err != nil {
		t.Fatalf("control: the unguarded client cannot reach the server: %v", err)
	}
	resp.Body.Close()

	guarded := NewCIMDHTTPClient(false, pool)
	for _, u := range []string{srv.URL + "/client.json", "https://localhost:" + port + "/client.json"} {
		resp, err := guarded.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("the guarded client fetched %s", u)
		}
		if !errors.Is(err, errBlockedAddress) {
			t.Fatalf("%s: refused, but not by the guard: %v", u, err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("server saw %d requests, want only the control's", n)
	}
}

// cimdTestFetcher fetches from srv through the product's client (guard off so
// the loopback test server is reachable) into a memory store.
func cimdTestFetcher(t *testing.T, srv *httptest.Server) *cimdFetcher {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = st.Close() })
	return newCIMDFetcher(CIMDConfig{Enabled: true, AllowPrivate: true}, st, NewCIMDHTTPClient(true, pool), time.Now, nil)
}

func docFor(id, extra string) string {
	return `{"client_id":"` + id + `","client_name":"T","redirect_uris":["http://127.0.0.1:3000/cb"]` + extra + `}`
}

// TestCIMDFetchLimits: no redirects, a 5 KB cap, and the rules a document
// must meet (client_id equals the URL, redirect_uris present, auth method none
// or private_key_jwt — never a shared secret).
func TestCIMDFetchLimits(t *testing.T) {
	t.Parallel()
	const limit = 5 << 10 // the cap is 5 KB; not cimdMaxBytes, so changing it fails the test
	var redirectTargetHits atomic.Int32
	var base string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := base + r.URL.Path
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(docFor(id, "")))
		case "/at-cap":
			doc := docFor(id, `,"pad":"`)
			_, _ = w.Write([]byte(doc[:len(doc)-1] + strings.Repeat("x", limit-len(doc)-1) + `"}`))
		case "/over-cap":
			doc := docFor(id, `,"pad":"`)
			_, _ = w.Write([]byte(doc[:len(doc)-1] + strings.Repeat("x", limit-len(doc)) + `"}`))
		case "/redirect":
			http.Redirect(w, r, base+"/ok", http.StatusFound)
		case "/redirect-permanent":
			http.Redirect(w, r, base+"/target", http.StatusPermanentRedirect)
		case "/target":
			redirectTargetHits.Add(1)
			_, _ = w.Write([]byte(docFor(id, "")))
		case "/other-id":
			_, _ = w.Write([]byte(docFor(base+"/ok", "")))
		case "/no-redirects":
			_, _ = w.Write([]byte(`{"client_id":"` + id + `"}`))
		case "/secret-basic":
			_, _ = w.Write([]byte(docFor(id, `,"token_endpoint_auth_method":"client_secret_basic"`)))
		case "/secret-post":
			_, _ = w.Write([]byte(docFor(id, `,"token_endpoint_auth_method":"client_secret_post"`)))
		case "/none":
			_, _ = w.Write([]byte(docFor(id, `,"token_endpoint_auth_method":"none"`)))
		case "/native":
			_, _ = w.Write([]byte(docFor(id, `,"application_type":"native"`)))
		case "/web-loopback": // SEP-837: a web client's redirects are https on a real host
			_, _ = w.Write([]byte(docFor(id, `,"application_type":"web"`)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base = srv.URL
	f := cimdTestFetcher(t, srv)
	ctx := context.Background()

	for path, wantErr := range map[string]string{
		"/ok": "", "/at-cap": "", "/none": "", "/native": "",
		"/web-loopback":       `application_type "web"`,
		"/over-cap":           "larger than 5 KB",
		"/redirect":           "redirects are not followed",
		"/redirect-permanent": "redirects are not followed",
		"/other-id":           "does not equal the URL",
		"/no-redirects":       "redirect_uris",
		"/secret-basic":       "shared secrets",
		"/secret-post":        "shared secrets",
	} {
		c, _, err := f.fetch(ctx, base+path)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: refused: %v", path, err)
		case wantErr == "" && (c.ID != base+path || !c.Metadata || c.TokenEndpointAuthMethod != authNone):
			t.Errorf("%s: accepted as %+v", path, c)
		case wantErr != "" && (err == nil || !errors.Is(err, errCIMD) || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: got %v, want a refusal saying %q", path, err, wantErr)
		}
	}
	if n := redirectTargetHits.Load(); n != 0 {
		t.Errorf("a redirect was followed (%d hits on its target)", n)
	}
}

// TestCIMDFetchTimesOut: a server that accepts the connection and never
// answers does not hold the fetch (or the /authorize request behind it)
// beyond the fetcher's timeout.
func TestCIMDFetchTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := cimdTestFetcher(t, srv)
	if f.httpc.Timeout <= 0 || f.httpc.Timeout > 10*time.Second {
		t.Fatalf("the document client's overall timeout is %v, want (0, 10s]", f.httpc.Timeout)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := f.fetch(context.Background(), srv.URL+"/slow.json")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errCIMD) {
			t.Fatalf("a hanging server: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the fetch of a document from a server that never answers did not end")
	}
}

// TestCIMDCacheHonoursCacheControl: an accepted document is cached for the
// fetch's max-age (so a second lookup does not fetch again), and one served
// with no-store is fetched every time.
func TestCIMDCacheHonoursCacheControl(t *testing.T) {
	t.Parallel()
	var hits = map[string]*atomic.Int32{"/cached": {}, "/uncached": {}}
	var base string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok := hits[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		n.Add(1)
		if r.URL.Path == "/uncached" {
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "max-age=600")
		}
		_, _ = w.Write([]byte(docFor(base+r.URL.Path, "")))
	}))
	defer srv.Close()
	base = srv.URL
	f := cimdTestFetcher(t, srv)
	ctx := context.Background()
	for range 3 {
		for path := range hits {
			if _, err := f.client(ctx, base+path); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
	}
	if n := hits["/cached"].Load(); n != 1 {
		t.Errorf("max-age=600 document fetched %d times, want 1", n)
	}
	if n := hits["/uncached"].Load(); n != 3 {
		t.Errorf("no-store document fetched %d times, want 3", n)
	}
	if _, err := f.store.GetCache(ctx, f.cacheKey(base+"/uncached")); err == nil {
		t.Error("a no-store document is in the cache")
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cc   string
		want string
	}{
		{"", "1h0m0s"}, {"max-age=600", "10m0s"}, {"no-store", "0s"}, {"public, max-age=5", "1m0s"}, {"max-age=999999", "24h0m0s"}, {"max-age=abc", "1h0m0s"},
	} {
		if got := cacheTTL(tc.cc).String(); got != tc.want {
			t.Errorf("cacheTTL(%q) = %s, want %s", tc.cc, got, tc.want)
		}
	}
}

// TestCIMDAdmits: the admission policy's pattern forms — hosts, subdomain
// wildcards, URL patterns — with the denylist winning.
func TestCIMDAdmits(t *testing.T) {
	t.Parallel()
	cfg := CIMDConfig{Allowed: []string{"chatgpt.com", "*.example.com", "https://claude.ai/oauth/*"},
		Denied: []string{"bad.example.com"}}
	for id, want := range map[string]bool{
		"https://chatgpt.com/oauth/client.json":   true,
		"https://evil.chatgpt.com.attacker.io/x":  false,
		"https://apps.example.com/c.json":         true,
		"https://example.com/c.json":              false, // *.example.com is subdomains only
		"https://bad.example.com/c.json":          false, // denied wins
		"https://claude.ai/oauth/mcp-client.json": true,
		"https://claude.ai/other/mcp-client.json": false,
		"https://attacker.io/chatgpt.com/client":  false,
	} {
		if got := cfg.admits(id) == nil; got != want {
			t.Errorf("admits(%s) = %v, want %v", id, got, want)
		}
	}
	if err := (CIMDConfig{}).admits("https://anyone.example/c.json"); err != nil {
		t.Errorf("an empty policy refused a client: %v", err)
	}
}
