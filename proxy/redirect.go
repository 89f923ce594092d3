package proxy

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Limits on registered redirect URIs (RFC 7591 leaves them to the server).
const (
	maxRedirectURIs   = 20
	maxRedirectURILen = 2000
)

// unsafeSchemes can never be redirect targets: they execute or read content
// in the browser instead of handing the code to an app.
var unsafeSchemes = map[string]bool{
	"javascript": true, "data": true, "file": true, "vbscript": true, "about": true,
	"blob": true, "filesystem": true, "view-source": true, "ws": true, "wss": true, "ftp": true, "mailto": true,
}

// validateRedirectURI decides whether uri may be registered: https anywhere,
// http only on loopback (RFC 8252 §7.3), or a private-use scheme for native
// apps (RFC 8252 §7.1, e.g. cursor://). It must be absolute, in canonical
// (lowercase) scheme form, without fragment, userinfo or dot segments.
func validateRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxRedirectURILen {
		return errors.New("redirect URIs must be between 1 and 2000 characters")
	}
	for _, r := range raw {
		if r <= 0x20 || r == 0x7f || r == '\\' || r > 0x7e {
			return errors.New("redirect URIs must not contain spaces, backslashes, control or non-ASCII characters")
		}
	}
	if strings.Contains(raw, "#") {
		return errors.New("redirect URIs must not contain a fragment (RFC 6749 §3.1.2)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return errors.New("redirect URIs must be absolute URIs")
	}
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return errors.New("redirect URI schemes must be lowercase")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return errors.New("redirect URIs must not contain userinfo")
	}
	if hasDotSegment(u) {
		return errors.New("redirect URIs must not contain dot segments")
	}
	switch {
	case unsafeSchemes[u.Scheme]:
		return errors.New("the redirect URI scheme " + u.Scheme + " is not allowed")
	case u.Scheme == "https":
		if u.Hostname() == "" {
			return errors.New("https redirect URIs need a host")
		}
	case u.Scheme == "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("http redirect URIs are only allowed on loopback hosts (127.0.0.1, [::1], localhost); use https")
		}
	default:
		// A private-use scheme (RFC 8252 §7.1) for a native app.
		if u.Opaque == "" && u.Host == "" && u.Path == "" {
			return errors.New("private-use redirect URIs need a path")
		}
	}
	return nil
}

// Application types (OpenID Connect Dynamic Registration §2, SEP-837).
const (
	appNative = "native"
	appWeb    = "web"
)

// applicationType checks a client's redirect URIs against its declared
// application_type (SEP-837) and returns the type to record. A web client is
// a site: only https redirects on a real (non-loopback) host, so a web
// registration cannot be turned into a loopback or custom-scheme catcher. A
// native client may also use loopback http and private-use schemes (RFC 8252
// §7.1, §7.3: cursor://…). A client that declares nothing keeps the rules
// every MCP client relied on before SEP-837 (OIDC's default of "web" would
// refuse them all) and is recorded as native when any redirect URI is native.
// The URIs are already known to pass validateRedirectURI.
func applicationType(declared string, uris []string) (string, error) {
	anyNative := slices.ContainsFunc(uris, isNativeRedirect)
	switch declared {
	case appWeb:
		if anyNative {
			return "", errors.New(`application_type "web" allows only https redirect URIs on a non-loopback host; a desktop or CLI client registers as "native"`)
		}
		return appWeb, nil
	case appNative:
		return appNative, nil
	case "":
		if anyNative {
			return appNative, nil
		}
		return appWeb, nil
	default:
		return "", errors.New(`application_type must be "native" or "web"`)
	}
}

// isNativeRedirect reports the redirect URIs only a native app may use:
// loopback hosts and private-use schemes.
func isNativeRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return true
	}
	return u.Scheme != "https" || isLoopbackHost(u.Hostname())
}

// hasDotSegment reports "." or ".." path segments, raw or percent-encoded;
// they let an attacker walk out of a registered path on some servers.
func hasDotSegment(u *url.URL) bool {
	p := strings.ToLower(u.EscapedPath() + "/" + u.Opaque)
	p = strings.ReplaceAll(p, "%2e", ".")
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// isLoopbackHost reports the loopback hosts RFC 8252 §7.3 lets native apps use.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// matchRedirectURI reports whether the requested redirect URI matches a
// registered one: the exact string, or, for loopback http URIs, the same
// string except for the port (RFC 8252 §7.3: native apps get an ephemeral
// port). localhost and 127.0.0.1 are different hosts.
func matchRedirectURI(registered []string, requested string) bool {
	for _, reg := range registered {
		if reg == requested {
			return true
		}
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || !isLoopbackHost(req.Hostname()) || strings.Contains(requested, "#") || req.User != nil {
		return false
	}
	if !strings.HasPrefix(requested, "http:") {
		return false
	}
	for _, reg := range registered {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == req.Hostname() && ru.EscapedPath() == req.EscapedPath() && ru.RawQuery == req.RawQuery && validPort(req.Port()) {
			// Paths "" and "/" are the same resource on an origin.
			return true
		}
		if ru.Hostname() == req.Hostname() && ru.RawQuery == req.RawQuery && validPort(req.Port()) &&
			(ru.EscapedPath() == "" && req.EscapedPath() == "/" || ru.EscapedPath() == "/" && req.EscapedPath() == "") {
			return true
		}
	}
	return false
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n > 0 && n <= 65535
}

// redirectAllowed applies the operator's optional allowlist of redirect-URI
// patterns (ALLOWED_REDIRECT_URIS). An empty list allows everything that
// validateRedirectURI accepts.
//
// Pattern syntax: scheme://host[:port][/path][?query] where host may be
// "*.example.com" (subdomains only), port may be "*" (any), and path may
// contain "*" (any characters). A pattern without a path allows any path;
// a loopback pattern without a port allows any port.
func redirectAllowed(patterns []string, uri string) bool {
	if len(patterns) == 0 {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if matchPattern(p, u) {
			return true
		}
	}
	return false
}

func matchPattern(pattern string, u *url.URL) bool {
	scheme, rest, ok := strings.Cut(pattern, "://")
	if !ok || scheme != u.Scheme {
		return false
	}
	hostport, pathq := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, pathq = rest[:i], rest[i:]
	}
	host, port := hostport, ""
	if i := strings.LastIndex(hostport, ":"); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	host = strings.Trim(host, "[]")
	switch {
	case strings.HasPrefix(host, "*."):
		if !strings.HasSuffix(u.Hostname(), host[1:]) || len(u.Hostname()) <= len(host)-1 {
			return false
		}
	case host != u.Hostname():
		return false
	}
	switch {
	case port == "*":
	case port == "" && isLoopbackHost(u.Hostname()):
	case port != u.Port():
		return false
	}
	if pathq == "" {
		return true
	}
	target := u.EscapedPath()
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	if !strings.Contains(pathq, "?") && u.RawQuery != "" {
		target = u.EscapedPath()
	}
	return globMatch(pathq, target)
}

// globMatch matches s against a pattern where "*" is any run of characters.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// redirectTrusted reports whether the server may send the browser to a
// validated redirect URI before the user has signed in (RFC 9700 §4.11.2).
// A loopback or private-use-scheme URI reaches only an app on the user's own
// machine; an operator's allowlist names what it trusts. An https URI that a
// client registered for itself (registration is open to anyone) might be a
// phishing site.
func (s *Server) redirectTrusted(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	if u.Scheme != "https" {
		return true // validateRedirectURI allows http only on loopback
	}
	return len(s.cfg.AllowedRedirects) > 0 && redirectAllowed(s.cfg.AllowedRedirects, uri)
}

// hostOf names where a redirect URI leads, for people: its host, or the
// scheme of a private-use URI.
func hostOf(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return uri
	case u.Scheme == "http" || u.Scheme == "https":
		return u.Host
	default:
		return u.Scheme + "://" + u.Host
	}
}
