package gateway

import (
	"net/http"
	"strings"
)

// hopByHop says whether name is an RFC 9110 §7.6.1 connection-specific
// header: it describes one connection, never the message, so no proxy
// forwards it. (A switch, not a set: this runs twice per request.)
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
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
	var named map[string]bool // rare: only when Connection names headers
	for _, v := range src.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				if named == nil {
					named = map[string]bool{}
				}
				named[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	for k, vs := range src {
		if hopByHop(k) || named[k] || drop(k) {
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
