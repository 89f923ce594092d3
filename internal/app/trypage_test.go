package app_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/trypage"
)

// TestTryPageOffByDefault: serve does not offer /try unless TRY_PAGE says so.
func TestTryPageOffByDefault(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{})
	for _, path := range []string{trypage.Path, trypage.AssetsPath + "try.js"} {
		if r := get(t, e.BaseURL+path, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s without TRY_PAGE: %d, want 404", path, r.Status)
		}
	}
}

var (
	assetRef  = regexp.MustCompile(`(?:src|href)="(/[^"]+)"`)
	importRef = regexp.MustCompile(`from "\./([a-z]+\.js)"`)
	// A path the page's code names literally ("/mcp", "/try", ...).
	pathLiteral = regexp.MustCompile(`["` + "`" + `](/[a-zA-Z0-9._\-][a-zA-Z0-9._\-/]*)`)
)

// TestTryPageServed: the page and every file it loads (its modules, their
// imports, the shared stylesheet) are served with the strict CSP, framing
// refused, nosniff and a revalidating ETag; the HTML has no inline script
// or style.
func TestTryPageServed(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"TRY_PAGE": "true"}})
	page := get(t, e.BaseURL+trypage.Path, nil)
	h, html := page.Header, page.Body
	if page.Status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /try: %d %s", page.Status, h.Get("Content-Type"))
	}
	for k, want := range map[string]string{"Content-Security-Policy": trypage.CSP, "X-Frame-Options": "DENY", "Cache-Control": "no-store",
		"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cross-Origin-Opener-Policy": "same-origin"} {
		if h.Get(k) != want {
			t.Errorf("/try %s = %q, want %q", k, h.Get(k), want)
		}
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(trypage.CSP, directive+";") {
			t.Errorf("CSP lacks %s", directive)
		}
	}
	if strings.Contains(trypage.CSP, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", trypage.CSP)
	}
	if regexp.MustCompile(`<script(?:\s+type="module")?>|<style|\sstyle=|\son[a-z]+=`).MatchString(html) {
		t.Error("/try has inline script, style or an event handler attribute")
	}

	// Every file the page loads, and every module those import.
	var refs []string
	for _, m := range assetRef.FindAllStringSubmatch(html, -1) {
		refs = append(refs, m[1])
	}
	if !slices.Contains(refs, "/assets/pages.css") || !slices.Contains(refs, trypage.AssetsPath+"try.js") {
		t.Fatalf("/try loads %v: want the shared stylesheet and its script", refs)
	}
	seen := map[string]bool{}
	for len(refs) > 0 {
		ref := refs[0]
		refs = refs[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		resp := get(t, e.BaseURL+ref, nil)
		ct := resp.Header.Get("Content-Type")
		wantCT := map[string]string{".js": "text/javascript", ".css": "text/css"}[filepath.Ext(ref)]
		if resp.Status != http.StatusOK || !strings.HasPrefix(ct, wantCT) || wantCT == "" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: %d %q nosniff=%q etag=%q", ref, resp.Status, ct, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("ETag"))
			continue
		}
		if strings.HasPrefix(ref, trypage.AssetsPath) && resp.Header.Get("Content-Security-Policy") != trypage.CSP {
			t.Errorf("GET %s: CSP %q", ref, resp.Header.Get("Content-Security-Policy"))
		}
		if again := get(t, e.BaseURL+ref, map[string]string{"If-None-Match": resp.Header.Get("ETag")}); again.Status != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", ref, again.Status)
		}
		for _, m := range importRef.FindAllStringSubmatch(resp.Body, -1) {
			refs = append(refs, trypage.AssetsPath+m[1])
		}
	}
	// Every module in the directory is part of the page: no dead file.
	entries, err := os.ReadDir("../trypage/assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".js") && !seen[trypage.AssetsPath+en.Name()] {
			t.Errorf("assets/%s is not loaded by the page", en.Name())
		}
	}
}

// TestTryPageUsesOnlyPublicEndpoints: the paths the page's code names are
// public ones, every fetch goes through the one recorder (which omits
// cookies), and the flow the page runs works from those alone: the 401's
// resource_metadata, the two metadata documents, DCR with BASE_URL/try,
// PKCE sign-in back to /try, the code exchanged without a secret, and /mcp
// with the Origin a browser on BASE_URL sends (the Host/Origin guard lets
// the same origin through; no CORS is involved).
func TestTryPageUsesOnlyPublicEndpoints(t *testing.T) {
	public := []string{"/mcp", "/try", "/assets/pages.css", "/.well-known/", trypage.AssetsPath}
	err := fs.WalkDir(os.DirFS("../trypage/assets"), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := os.ReadFile(filepath.Join("../trypage/assets", name))
		if err != nil {
			return err
		}
		for _, m := range pathLiteral.FindAllStringSubmatch(string(src), -1) {
			if !slices.ContainsFunc(public, func(p string) bool { return m[1] == p || strings.HasSuffix(p, "/") && strings.HasPrefix(m[1], p) }) {
				t.Errorf("%s names %q, which is not a public endpoint of an MCP server", name, m[1])
			}
		}
		if n := strings.Count(string(src), "fetch("); n > 0 && (name != "exchanges.js" || n != 1 || !strings.Contains(string(src), `credentials: "omit"`)) {
			t.Errorf("%s calls fetch %d times: every request goes through the recorder in exchanges.js, without cookies", name, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"TRY_PAGE": "true"}})
	origin := map[string]string{"Origin": e.BaseURL}
	probe, err := e.TryMCPWithHeaders("", origin, "initialize", map[string]any{})
	if err != nil || probe.Status != http.StatusUnauthorized {
		t.Fatalf("probe: %v %d", err, probe.Status)
	}
	prmURL := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(probe.Header.Get("WWW-Authenticate"))
	if prmURL == nil || !strings.HasPrefix(prmURL[1], e.BaseURL+"/.well-known/") {
		t.Fatalf("401 challenge %q", probe.Header.Get("WWW-Authenticate"))
	}
	var prm struct {
		Resource string   `json:"resource"`
		AS       []string `json:"authorization_servers"`
	}
	if err := json.Unmarshal([]byte(get(t, prmURL[1], origin).Body), &prm); err != nil {
		t.Fatalf("%s: %v", prmURL[1], err)
	}
	var asm map[string]any
	if err := json.Unmarshal([]byte(get(t, e.BaseURL+"/.well-known/oauth-authorization-server", origin).Body), &asm); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"} {
		if u, _ := asm[k].(string); !strings.HasPrefix(u, e.BaseURL+"/") {
			t.Errorf("%s %q is not on the page's origin: connect-src 'self' would block it", k, u)
		}
	}
	if prm.Resource != e.BaseURL+"/mcp" || len(prm.AS) != 1 || prm.AS[0] != e.BaseURL {
		t.Fatalf("protected resource metadata %+v", prm)
	}

	c := e.RegisterClient(e2etest.ClientOptions{Name: "Try it (browser)", RedirectURIs: []string{e.BaseURL + trypage.Path}})
	p := e2etest.NewPKCE()
	q := e.Authorize(c, p, testflow.Choices{})
	if q.Get("code") == "" || q.Get("iss") != e.BaseURL {
		t.Fatalf("authorization response at /try: %v", q)
	}
	status, tok := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {c.RedirectURI},
		"client_id": {c.ID}, "code_verifier": {p.Verifier}, "resource": {e.BaseURL + "/mcp"}})
	access, _ := tok["access_token"].(string)
	if status != http.StatusOK || access == "" {
		t.Fatalf("token: %d %v", status, tok)
	}
	init, err := e.TryMCPWithHeaders(access, origin, "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "try", "version": "1"}})
	if err != nil || init.Status != http.StatusOK || init.Result == nil {
		t.Fatalf("initialize with Origin %s: %v %d %s", e.BaseURL, err, init.Status, init.Body)
	}
	if init.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/mcp answered a same-origin request with CORS headers: %v", init.Header)
	}
	// Another origin is still refused: the page's pass is its origin, not a hole.
	if other, _ := e.TryMCPWithHeaders(access, map[string]string{"Origin": "http://evil.example"}, "tools/list", nil); other.Status != http.StatusForbidden {
		t.Errorf("/mcp with a foreign Origin: %d, want 403", other.Status)
	}
}

// TestPagesShareOneStylesheet: the proxy's own pages (here an error page of
// /authorize) and /try load the one stylesheet, and no page carries inline
// style, so every page's CSP can say style-src 'self'.
func TestPagesShareOneStylesheet(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"TRY_PAGE": "true"}})
	for _, path := range []string{"/authorize?client_id=nobody", trypage.Path} {
		r := get(t, e.BaseURL+path, map[string]string{"Accept": "text/html"})
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(r.Body, `<link rel="stylesheet" href="/assets/pages.css">`) ||
			strings.Contains(r.Body, "<style") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: %d %s CSP %q", path, r.Status, r.Header.Get("Content-Type"), csp)
		}
	}
}
