package proxy

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

//go:embed templates/*.html templates/pages.css
var templateFS embed.FS

// StylesheetPath is where the one stylesheet of every page is served (the
// Try it page links it too): a file, so the pages' CSP allows no inline style.
const StylesheetPath = "/assets/pages.css"

// pages are parsed once per server (no package-level state).
type pages struct {
	consent *template.Template
	errors  *template.Template
	account *template.Template
	css     http.Handler // the stylesheet, at StylesheetPath
	// The operator console.
	admin, adminGrants *template.Template
}

func parsePages() (*pages, error) {
	var p pages
	for _, t := range []struct {
		dst   **template.Template
		files []string
	}{
		{&p.consent, []string{"consent.html"}},
		{&p.errors, []string{"error.html"}},
		{&p.account, []string{"account.html"}},
		{&p.admin, []string{"admin_nav.html", "admin.html"}},
		{&p.adminGrants, []string{"admin_nav.html", "admin_grants.html"}},
	} {
		files := []string{"templates/layout.html"}
		for _, f := range t.files {
			files = append(files, "templates/"+f)
		}
		parsed, err := template.ParseFS(templateFS, files...)
		if err != nil {
			return nil, err
		}
		*t.dst = parsed
	}
	css, err := templateFS.ReadFile("templates/pages.css")
	if err != nil {
		return nil, err
	}
	p.css = httpx.StaticFile("pages.css", css, nil)
	return &p, nil
}

// errorPage is a local error shown in the browser when the client cannot be
// redirected to safely.
type errorPage struct {
	status  int
	Code    oautherr.Code // for JSON clients
	Title   string
	Message string
	Detail  string
	Hint    string
	// ReturnURL, when set, is the way back to the app with the error, for
	// the user to follow (see earlyError); ReturnHost names where it leads.
	ReturnURL, ReturnHost string
}

func (p errorPage) with(detail string) errorPage { p.Detail = detail; return p }

// withError shows e's description, with e's status (e.g. 408 for a body that
// did not arrive).
func (p errorPage) withError(e *oauthError) errorPage {
	p.Detail, p.status = e.Description, e.Status
	return p
}

var (
	pageBadRequest = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidRequest,
		Title: "This sign-in request is not valid", Message: "The app that sent you here made a request this server cannot accept.",
		Hint: "Try connecting again from your MCP client. If it keeps happening, tell the app's developer."}
	pageUnknownClient = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidClient,
		Title: "This app is not registered here", Message: "The app's registration is unknown to this server: it may have expired after a long time unused, or the server's storage was reset.",
		Hint: "Remove this server from your MCP client and add it again; the client will register afresh."}
	pageBadClientMetadata = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidClient,
		Title: "This app's metadata could not be used", Message: "The app identifies itself with a client metadata document that this server could not fetch or accept.",
		Hint: "Tell the app's developer; the detail below says what was wrong."}
	pageBadRedirect = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidRequest,
		Title: "Unregistered redirect address", Message: "The address this request wants to send you back to is not one the app registered, so this server will not send you there.",
		Hint: "This protects your account. Reconnect from your MCP client; if it keeps happening, tell the app's developer."}
	pageExpired = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidRequest,
		Title: "This sign-in link has expired", Message: "The sign-in request was already completed, or it is older than its time limit.",
		Hint: "Go back to your MCP client and connect again."}
	pageCSRF = errorPage{status: http.StatusForbidden, Code: oautherr.AccessDenied,
		Title: "Your approval could not be verified", Message: "The approval did not come from the page this server showed in this browser (missing or mismatched security token).",
		Hint: "Go back to your MCP client and connect again. Make sure cookies are enabled for this site."}
	pageFormCSRF = errorPage{status: http.StatusForbidden, Code: oautherr.AccessDenied,
		Title: "This form could not be verified", Message: "The form did not come from a page this server showed in this browser (missing or mismatched security token), so nothing was changed.",
		Hint: "Open the page again and retry. Make sure cookies are enabled for this site."}
	pageSessionMismatch = errorPage{status: http.StatusForbidden, Code: oautherr.AccessDenied,
		Title: "Sign-in started in another browser", Message: "This sign-in was approved in a different browser session than the one that finished it, so it was stopped to protect your account.",
		Hint: "Connect again from your MCP client and complete the whole sign-in in one browser."}
	pageAppRequest = errorPage{status: http.StatusBadRequest, Title: "The app's request could not be completed",
		Message: "The app that sent you here made a request this server cannot accept, so nothing was shared.",
		Hint:    "Return to the app only if you started this sign-in from it; it will be told what went wrong."}
	pageDenied = errorPage{status: http.StatusOK, Title: "Access denied", Message: "You did not allow the app to access your account. Nothing was shared.",
		Hint: "Return to the app only if you started this sign-in from it."}
	pageUnavailable = errorPage{status: http.StatusServiceUnavailable, Code: oautherr.TemporarilyUnavailable,
		Title: "Temporarily unavailable", Message: "The server could not reach its storage.",
		Hint: "Try again in a moment."}
)

// setPageHeaders makes HTML pages unframeable (RFC 9700 §4.16), unreferred
// (§4.2.4) and uncached, with a CSP that allows no script at all and only
// the shared stylesheet.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src https: data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// renderError shows p as HTML, or as RFC 6749 JSON to a client that asked for
// JSON and not HTML, with p's status.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, p errorPage) {
	status := p.status
	s.metrics.OAuthErrors.WithLabelValues("page", string(p.Code)).Inc()
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html") {
		desc := p.Message
		if p.Detail != "" {
			desc += " " + p.Detail
		}
		body := map[string]any{"error": p.Code, "error_description": desc}
		if p.Code == oautherr.InvalidClient {
			body["registration_endpoint"] = s.cfg.Issuer + "/register"
		}
		writeJSON(w, status, body)
		return
	}
	s.renderPage(w, status, s.pages.errors, struct {
		errorPage
		Service string
	}{p, s.cfg.ServiceName})
}

func (s *Server) renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("render page", "err", err)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("internal error")
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
