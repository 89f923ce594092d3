// Package trypage owns /try: a page that is a real MCP client running in the
// browser, for people trying the product without installing a client. It
// discovers the server from /mcp's 401 (RFC 9728, RFC 8414), registers
// itself by Dynamic Client Registration (RFC 7591) with BASE_URL/try as its
// redirect URI, runs PKCE (RFC 7636) in the page, signs in through the
// consent page and Clerk, and then speaks MCP's streamable HTTP transport
// over fetch. It uses only the public endpoints every MCP client uses: this
// package serves static files and nothing else, so the page can do nothing a
// third-party client could not.
//
// Everything is embedded (assets/): plain ES modules, no framework, no CDN.
// The stylesheet is the proxy's shared one (proxy.StylesheetPath).
package trypage

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
)

//go:embed assets
var assets embed.FS

// Path is the page; its modules are under AssetsPath.
const (
	Path       = "/try"
	AssetsPath = "/try/assets/"
)

// CSP is the page's policy: its own scripts and the shared stylesheet only,
// no inline script or style, fetch to this origin only (everything the page
// needs is here, so no CORS either), no form posts (the page's forms are
// handled in script), unframeable, and Trusted Types so no string can
// become markup: the page builds its DOM with textContent only.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// headers go on the page and its modules alike. The page's URL carries the
// authorization code on the way back from sign-in: no-referrer and no-store
// keep it from leaking to other sites or a cache (the page also removes it
// from the address bar at once). The opener policy keeps the windows of
// other sites from holding a handle on it.
func headers() http.Header {
	h := http.Header{}
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	return h
}

// Mount serves the page at Path and every module under AssetsPath.
func Mount(r chi.Router) error {
	entries, err := fs.ReadDir(assets, "assets")
	if err != nil {
		return err
	}
	for _, e := range entries {
		body, err := assets.ReadFile("assets/" + e.Name())
		if err != nil {
			return err
		}
		if e.Name() == "index.html" {
			h := headers()
			h.Set("Cache-Control", "no-store")
			r.Method(http.MethodGet, Path, httpx.StaticFile("index.html", body, h))
			continue
		}
		r.Method(http.MethodGet, AssetsPath+e.Name(), httpx.StaticFile(e.Name(), body, headers()))
	}
	return nil
}
