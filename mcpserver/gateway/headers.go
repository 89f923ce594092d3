package gateway

import (
	"net/http"
	"strings"
)

// hopByHop are the RFC 9110 §7.6.1 connection-specific headers: they
// describe one connection, never the message, so no proxy forwards them.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// dropRequest says which client headers never reach the upstream: hop-by-hop
// ones; the client's credentials (its bearer token is for the proxy alone,
// its cookies are the proxy's origin's); the identity headers, which only
// the gateway may set (a client could otherwise claim to be anyone);
// forwarding headers the upstream might trust; Origin and Referer, checked
// here already and naming the proxy's origin, not the upstream's; the
// session id, rewritten by the caller; and Accept-Encoding, so the transport
// negotiates compression itself and hands over plain bodies to filter.
func dropRequest(name string) bool {
	switch name {
	case "Authorization", "Cookie", "Content-Length", "Host", "Origin", "Referer", "Forwarded",
		"X-Real-Ip", "Accept-Encoding", "Mcp-Session-Id",
		AssertionHeader, UserHeader, EmailHeader, ClerkTokenHeader:
		return true
	}
	return strings.HasPrefix(name, "X-Forwarded-") || strings.HasPrefix(name, "X-Clerk-")
}

// dropResponse says which upstream headers never reach the client: hop-by-hop
// ones; cookies and CORS answers, which would speak for the proxy's origin;
// a challenge (the client's authorization server is the proxy's, not the
// upstream's); the length, recomputed when a body is rewritten; and the
// session id, rewritten by the caller.
func dropResponse(name string) bool {
	switch name {
	case "Set-Cookie", "Www-Authenticate", "Content-Length", "Mcp-Session-Id", "Alt-Svc":
		return true
	}
	return strings.HasPrefix(name, "Access-Control-")
}

// copyHeaders copies src into dst except hop-by-hop headers (including those
// src's Connection header names) and those drop refuses.
func copyHeaders(dst, src http.Header, drop func(string) bool) {
	named := map[string]bool{}
	for _, v := range src.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	for _, h := range hopByHop {
		named[h] = true
	}
	for k, vs := range src {
		if named[k] || drop(k) {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

// commit moves the upstream's headers kept in h onto the answer.
func commit(w http.ResponseWriter, h http.Header) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
}
