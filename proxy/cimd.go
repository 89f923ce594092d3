package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// CIMDConfig configures Client ID Metadata Documents (MCP 2025-11-25,
// draft-ietf-oauth-client-id-metadata-document): a client_id that is an https
// URL names a JSON document describing the client.
type CIMDConfig struct {
	Enabled bool
	// AllowPrivate lets documents come from loopback and private addresses.
	// TEST ONLY: it turns the SSRF guard off.
	AllowPrivate bool
	// Allowed and Denied are the admission policy (CIMD_ALLOWED_CLIENTS,
	// CIMD_DENIED_CLIENTS): patterns of client-id URLs, or of their hosts.
	// Denied wins; a non-empty Allowed admits only what it matches.
	Allowed, Denied []string
}

// admits applies the admission policy to a metadata-document client_id
// before anything is fetched from it, so a refused host is never contacted.
// A pattern with "://" is a URL pattern (the ALLOWED_REDIRECT_URIS syntax:
// "https://*.example.com/mcp/*"); any other is a host, "*.example.com"
// meaning its subdomains.
func (c CIMDConfig) admits(id string) error {
	u, err := url.Parse(id)
	if err != nil {
		return fmt.Errorf("%w: its client_id is not a URL", errCIMD)
	}
	matches := func(patterns []string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool {
			if strings.Contains(p, "://") {
				return matchPattern(p, u)
			}
			host := u.Hostname()
			if suffix, ok := strings.CutPrefix(p, "*."); ok {
				return strings.HasSuffix(host, "."+suffix)
			}
			return host == p
		})
	}
	if matches(c.Denied) || len(c.Allowed) > 0 && !matches(c.Allowed) {
		return fmt.Errorf("%w: this server does not accept apps identified by %s", errCIMD, u.Host)
	}
	return nil
}

// Limits on fetching documents (SSRF and abuse guards).
const (
	cimdMaxBytes   = 5 << 10
	cimdTimeout    = 5 * time.Second
	cimdDefaultTTL = time.Hour
	cimdMinTTL     = time.Minute
	cimdMaxTTL     = 24 * time.Hour
)

// errCIMD marks a client metadata document that could not be used; its text
// is safe to show.
var errCIMD = errors.New("client metadata document")

type cimdFetcher struct {
	cfg   CIMDConfig
	store store.Store
	httpc *http.Client
	now   func() time.Time
	log   *slog.Logger
}

func newCIMDFetcher(cfg CIMDConfig, st store.Store, httpc *http.Client, now func() time.Time, log *slog.Logger) *cimdFetcher {
	if httpc == nil {
		httpc = NewCIMDHTTPClient(cfg.AllowPrivate, nil)
	}
	return &cimdFetcher{cfg: cfg, store: st, httpc: httpc, now: now, log: log}
}

// lookupClient returns a registered client, or the client described by a
// metadata document when client_id is an https URL.
func (s *Server) lookupClient(ctx context.Context, id string) (store.Client, error) {
	if len(id) > 2048 {
		return store.Client{}, store.ErrNotFound
	}
	if s.cfg.CIMD.Enabled && clientid.IsMetadataDocument(id) {
		// Checked on every use, not only at first fetch: a client denied
		// after its document was cached is refused at once.
		if err := s.cfg.CIMD.admits(id); err != nil {
			return store.Client{}, err
		}
		return s.cimd.client(ctx, id)
	}
	return s.store.GetClient(ctx, id)
}

func (f *cimdFetcher) cacheKey(id string) string { return "cimd:" + seal.HashHex(id) }

func (f *cimdFetcher) client(ctx context.Context, id string) (store.Client, error) {
	if raw, err := f.store.GetCache(ctx, f.cacheKey(id)); err == nil {
		var c store.Client
		if json.Unmarshal(raw, &c) == nil && c.ID == id {
			return c, nil
		}
	}
	c, ttl, err := f.fetch(ctx, id)
	if err != nil {
		f.log.WarnContext(ctx, "client metadata document refused", "client_id", id, "err", err)
		return c, err
	}
	if ttl > 0 {
		raw, err := json.Marshal(c)
		if err == nil {
			err = f.store.SetCache(ctx, f.cacheKey(id), raw, ttl)
		}
		if err != nil {
			// Served all the same: the next request fetches the document again.
			f.log.WarnContext(ctx, "caching a client metadata document failed", "err", err)
		}
	}
	return c, nil
}

// cimdDocument is the subset of client metadata the proxy reads.
type cimdDocument struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
	// JWKSURI or JWKS publish a private_key_jwt client's public keys (RFC
	// 7591 §2): one of them, never both.
	JWKSURI string          `json:"jwks_uri"`
	JWKS    json.RawMessage `json:"jwks"`
}

func (f *cimdFetcher) fetch(ctx context.Context, id string) (store.Client, time.Duration, error) {
	var c store.Client
	body, cacheControl, err := f.get(ctx, id, "application/json", cimdMaxBytes, "5 KB")
	if err != nil {
		return c, 0, fmt.Errorf("%w: %v", errCIMD, err)
	}
	var doc cimdDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return c, 0, fmt.Errorf("%w: it is not a JSON object with client metadata", errCIMD)
	}
	if doc.ClientID != id {
		return c, 0, fmt.Errorf("%w: its client_id does not equal the URL it was fetched from", errCIMD)
	}
	if len(doc.RedirectURIs) == 0 || len(doc.RedirectURIs) > maxRedirectURIs {
		return c, 0, fmt.Errorf("%w: it must list between 1 and 20 redirect_uris", errCIMD)
	}
	for _, u := range doc.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return c, 0, fmt.Errorf("%w: %v", errCIMD, err)
		}
	}
	appType, err := applicationType(doc.ApplicationType, doc.RedirectURIs)
	if err != nil {
		return c, 0, fmt.Errorf("%w: %v", errCIMD, err)
	}
	switch doc.TokenEndpointAuthMethod {
	case "", authNone:
		doc.TokenEndpointAuthMethod = authNone
		doc.JWKSURI, doc.JWKS = "", nil // a public client's keys are never used
	case authJWTKey:
		if err := checkClientKeys(&doc); err != nil {
			return c, 0, err
		}
	default:
		return c, 0, fmt.Errorf("%w: token_endpoint_auth_method must be none or private_key_jwt (shared secrets cannot be published)", errCIMD)
	}
	for _, g := range doc.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return c, 0, fmt.Errorf("%w: grant_types may only contain authorization_code and refresh_token", errCIMD)
		}
	}
	if len(doc.ClientName) > 200 {
		doc.ClientName = doc.ClientName[:200]
	}
	if doc.LogoURI != "" && !strings.HasPrefix(doc.LogoURI, "https://") {
		doc.LogoURI = ""
	}
	c = store.Client{
		ID: id, Name: doc.ClientName, URI: doc.ClientURI, LogoURI: doc.LogoURI, RedirectURIs: doc.RedirectURIs,
		GrantTypes: doc.GrantTypes, ResponseTypes: doc.ResponseTypes, TokenEndpointAuthMethod: doc.TokenEndpointAuthMethod,
		Scope: doc.Scope, ApplicationType: appType, Metadata: true, CreatedAt: f.now().UTC(), JWKSURI: doc.JWKSURI, JWKS: string(doc.JWKS),
	}
	return c, cacheTTL(cacheControl), nil
}

// checkClientKeys requires a private_key_jwt document to publish its keys in
// exactly one way: an https jwks_uri (fetched when an assertion arrives), or
// an inline jwks, checked here so a document with unusable keys is refused
// at once. A public client's document keeps neither.
func checkClientKeys(doc *cimdDocument) error {
	hasInline := len(doc.JWKS) > 0 && string(doc.JWKS) != "null"
	switch {
	case doc.JWKSURI != "" && hasInline:
		return fmt.Errorf("%w: give jwks_uri or jwks, not both", errCIMD)
	case doc.JWKSURI != "":
		if !validJWKSURI(doc.JWKSURI) {
			return fmt.Errorf("%w: jwks_uri must be an https URL with a path", errCIMD)
		}
		doc.JWKS = nil
	case hasInline:
		if _, err := parseJWKS(doc.JWKS); err != nil {
			return fmt.Errorf("%w: %v", errCIMD, err)
		}
	default:
		return fmt.Errorf("%w: token_endpoint_auth_method private_key_jwt needs jwks_uri or jwks", errCIMD)
	}
	return nil
}

// get fetches a client's document (a metadata document or a key set)
// through the SSRF-guarded client: one GET, no redirects, at most maxBytes
// (named by limit in the error). Its errors say what went wrong with "it",
// the document, in a form safe to show the client.
func (f *cimdFetcher) get(ctx context.Context, uri, accept string, maxBytes int, limit string) (body []byte, cacheControl string, err error) {
	ctx, cancel := context.WithTimeout(ctx, cimdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, "", errors.New("it is not at a fetchable URL")
	}
	req.Header.Set("Accept", accept)
	resp, err := f.httpc.Do(req)
	if err != nil {
		if errors.Is(err, errBlockedAddress) {
			return nil, "", errors.New("its host resolves to a private or reserved address")
		}
		return nil, "", errors.New("it could not be fetched")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetching it answered HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
	if err != nil {
		return nil, "", errors.New("it could not be read")
	}
	if len(body) > maxBytes {
		return nil, "", errors.New("it is larger than " + limit)
	}
	return body, resp.Header.Get("Cache-Control"), nil
}

// cacheTTL honours Cache-Control (no-store/no-cache: do not cache; max-age
// clamped to [1m, 24h]); the default is an hour.
func cacheTTL(cc string) time.Duration {
	ttl := cimdDefaultTTL
	for _, d := range strings.Split(strings.ToLower(cc), ",") {
		d = strings.TrimSpace(d)
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age="))
			if err != nil || n < 0 {
				continue
			}
			ttl = time.Duration(n) * time.Second
		}
	}
	return min(max(ttl, cimdMinTTL), cimdMaxTTL)
}

// errBlockedAddress is returned by the guarded dialer.
var errBlockedAddress = errors.New("destination address is not public")

// NewCIMDHTTPClient builds the client that fetches metadata documents: https
// only, no redirects, short timeouts, and a dialer that refuses loopback,
// private, link-local (cloud metadata), CGNAT, multicast, unspecified and reserved
// addresses at connect time, after DNS, so rebinding cannot sneak past it.
// allowPrivate disables the address guard (tests only). rootCAs may be nil.
func NewCIMDHTTPClient(allowPrivate bool, rootCAs *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: cimdTimeout}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return errBlockedAddress
			}
			ip := net.ParseIP(host)
			if ip == nil || !publicIP(ip) {
				return errBlockedAddress
			}
			return nil
		}
	}
	transport := &http.Transport{
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rootCAs},
		TLSHandshakeTimeout:    cimdTimeout,
		ResponseHeaderTimeout:  cimdTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		Proxy:                  nil,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   cimdTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// nonPublic lists the special-purpose ranges of the IANA IPv4 and IPv6
// registries (RFC 6890 and successors) that are not globally routable
// unicast: loopback, RFC 1918 and unique-local, link-local (cloud metadata at
// 169.254.169.254 and fd00:ec2::254), CGNAT, "this network" 0.0.0.0/8,
// benchmarking, documentation, IETF protocol assignments, multicast and the
// reserved 240.0.0.0/4 (which includes the broadcast address). Not only the
// obviously internal ones: in some networks reserved ranges are routed to
// internal services too.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/96", // unspecified, loopback and the deprecated IPv4-compatible addresses
		"64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// Ranges that wrap an IPv4 address inside an IPv6 one (RFC 6052 NAT64, RFC
// 3056 6to4): the wrapped address is what is really reached.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// publicIP reports whether ip is a globally routable unicast address.
func publicIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap() // ::ffff:a.b.c.d is a.b.c.d
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return publicIP(net.IP(b[12:16]))
		case sixToFour.Contains(a):
			return publicIP(net.IP(b[2:6]))
		}
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
