package proxy

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
)

// The operator console: HTML pages under /admin beside the JSON API, for
// Clerk users who hold ADMIN_ORG_ROLE in the organisation ADMIN_ORG_ID. The
// sign-in and session are the connected-apps page's (signedIn); the role is
// looked up at Clerk's Backend API on every request, through the verifier's
// membership caches. Views and actions read and run exactly what the API
// does (adminClients, adminGrants, adminActions); each action's form carries
// the session's CSRF token and writes one audit line whose actor is the
// operator's Clerk user id.

const consoleEvents = 50 // recent security events on the console's front page

// mountAdminPages serves the console when ADMIN_ORG_ID is set (not in app
// mode: the sign-in uses the Clerk OAuth application).
func (s *Server) mountAdminPages(r chi.Router) {
	if s.cfg.AdminOrgID == "" || s.appMode() {
		return
	}
	r.Group(func(r chi.Router) {
		r.Use(s.limitInFlight)
		// A signed-out visit stores an upstream state, as /account does.
		signIn := s.rateLimit("authorize", s.cfg.RateLimits.Authorize)
		r.With(signIn).Get("/admin", s.handleAdminHome)
		r.With(signIn).Get("/admin/grants", s.handleAdminGrants)
		for _, a := range s.adminActions() {
			r.Post("/admin/"+a.path+"/revoke", s.adminFormAction(a))
		}
	})
}

var (
	pageNotOperator = errorPage{status: http.StatusForbidden, Code: oautherr.AccessDenied,
		Title: "Not an operator", Message: "You are signed in, but the operator console is only for members of the operators' organisation with the operator role.",
		Hint: "Ask an operator to give you the role in Clerk, then open the page again."}
	pageAdminFailed = errorPage{status: http.StatusBadRequest, Code: oautherr.InvalidRequest,
		Title: "The action did not complete", Message: "The operator console could not do what was asked.",
		Hint: "Go back to the console and try again."}
)

// operator is the signed-in operator of a console page; when there is none
// (not signed in, not an operator, Clerk not answering) the answer has been
// written.
func (s *Server) operator(w http.ResponseWriter, r *http.Request) (accountSession, bool) {
	sess, ok := s.signedIn(w, r, "/admin")
	return sess, ok && s.isOperator(w, r, sess)
}

// isOperator checks the user's role at Clerk; a refusal is audited and
// answered 403 with no data.
func (s *Server) isOperator(w http.ResponseWriter, r *http.Request, sess accountSession) bool {
	role, err := s.roles.OrgRole(r.Context(), sess.UserID, s.cfg.AdminOrgID)
	if err != nil {
		s.log.WarnContext(r.Context(), "operator console: Clerk organisation memberships unavailable", "err", err)
		s.renderError(w, r, pageUnavailable.with("The identity provider could not confirm your operator role."))
		return false
	}
	if role != s.cfg.AdminOrgRole {
		s.audit(r, "admin_action", "actor", sess.UserID, "action", "authenticate", "target", r.URL.Path, "result", "forbidden")
		s.renderError(w, r, pageNotOperator)
		return false
	}
	return true
}

type adminPageView struct {
	Service, UserID, CSRF, Done string
}

type adminHomeView struct {
	adminPageView
	Clients []adminClient
	Events  []eventView
}

type eventView struct {
	Time, Event, Details string
	Notable              bool
}

// handleAdminHome shows clients with their grant counts, a grant search and
// the recent security events.
func (s *Server) handleAdminHome(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.operator(w, r)
	if !ok {
		return
	}
	clients, oerr := s.adminClients(r)
	var evs []secevents.Event
	if oerr == nil {
		evs, oerr = s.recentEvents(r, consoleEvents)
	}
	s.adminAudit(r, sess.UserID, "view_console", adminResult{target: "*"}, oerr)
	if oerr != nil {
		s.renderError(w, r, pageUnavailable)
		return
	}
	sort.SliceStable(clients, func(i, j int) bool { return clients[i].Grants > clients[j].Grants })
	view := adminHomeView{adminPageView: s.adminPage(r, sess), Clients: clients}
	for _, e := range evs {
		view.Events = append(view.Events, eventView{Time: e.Time.UTC().Format("2 Jan 15:04:05"), Event: e.Event,
			Details: eventDetails(e), Notable: notableEvent(e.Event)})
	}
	s.renderPage(w, http.StatusOK, s.pages.admin, view)
}

// eventDetails is an event's attributes as "key=value", in key order.
func eventDetails(e secevents.Event) string {
	keys := make([]string, 0, len(e.Attrs))
	for k := range e.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+e.Attrs[k])
	}
	return strings.Join(parts, " · ")
}

// notableEvent marks the events that point at an attack or a leak.
func notableEvent(event string) bool {
	switch event {
	case "refresh_token_reuse_detected", "authorization_code_reused", "clerk_webhook_refused",
		"client_assertion_replayed", "client_assertion_refused", "consent_binding_mismatch":
		return true
	}
	return false
}

func (s *Server) adminPage(r *http.Request, sess accountSession) adminPageView {
	v := adminPageView{Service: s.cfg.ServiceName, UserID: sess.UserID, CSRF: sess.csrf(s)}
	q := r.URL.Query()
	if done := q.Get("done"); done != "" && seal.Equal([]byte(q.Get("sig")), []byte(s.doneSig(done))) {
		v.Done = done // signed by this server, so a link cannot put words on the page
	}
	return v
}

// doneSig signs an action's outcome message for the page it returns to.
func (s *Server) doneSig(msg string) string {
	return base64.RawURLEncoding.EncodeToString(s.cookies.MAC("admin-done", msg))
}

type adminGrantsView struct {
	adminPageView
	Kind, ID, Back string // Kind: "user" or "client"
	ClientName     string
	Grants         []adminGrantView
}

type adminGrantView struct {
	GrantID, UserID, ClientID, ClientName, Scopes, Created, LastUsed, Expires string
	Active                                                                    bool
}

// handleAdminGrants shows the grants of one user (?user_id=) or client
// (?client_id=), with the actions on them.
func (s *Server) handleAdminGrants(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.operator(w, r)
	if !ok {
		return
	}
	target, gs, oerr := s.adminGrants(r)
	s.adminAudit(r, sess.UserID, "view_grants", adminResult{target: target}, oerr)
	if oerr != nil {
		if oerr.Status >= 500 {
			s.renderError(w, r, pageUnavailable)
		} else {
			s.renderError(w, r, pageAdminFailed.withError(oerr))
		}
		return
	}
	kind, id, _ := strings.Cut(target, ":")
	view := adminGrantsView{adminPageView: s.adminPage(r, sess), Kind: kind, ID: id, Back: "/admin/grants?" + r.URL.RawQuery}
	names := map[string]string{}
	for _, g := range gs {
		name, seen := names[g.ClientID]
		if !seen {
			name = s.clientName(r, g.ClientID)
			names[g.ClientID] = name
		}
		v := adminGrantView{GrantID: g.GrantID, UserID: g.UserID, ClientID: g.ClientID, ClientName: name,
			Scopes: strings.Join(g.Scopes, " "), Created: pageTime(g.CreatedAt), LastUsed: "not yet", Expires: "never", Active: g.Active}
		if !g.LastUsedAt.IsZero() {
			v.LastUsed = pageTime(g.LastUsedAt)
		}
		if !g.ExpiresAt.IsZero() {
			v.Expires = pageTime(g.ExpiresAt)
		}
		view.Grants = append(view.Grants, v)
	}
	if kind == "client" {
		view.ClientName = s.clientName(r, id)
	}
	s.renderPage(w, http.StatusOK, s.pages.adminGrants, view)
}

// clientName is a client's display name, or "" when it has none.
func (s *Server) clientName(r *http.Request, id string) string {
	if c, err := s.lookupClient(r.Context(), id); err == nil {
		return c.Name
	}
	return ""
}

// adminFormAction runs a from the console: a live session, its CSRF token,
// the operator role, then the same function as the API; one audit line.
func (s *Server) adminFormAction(a adminAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, p, ok := s.accountForm(w, r)
		if !ok || !s.isOperator(w, r, sess) {
			return
		}
		id := strings.TrimSpace(p.get(a.field))
		res, oerr := adminResult{target: a.target(id)}, errInvalidRequest(a.field+" is required")
		if id != "" {
			res, oerr = a.run(r, id)
		}
		s.adminAudit(r, sess.UserID, a.name, res, oerr)
		if oerr != nil {
			s.renderError(w, r, pageAdminFailed.withError(oerr))
			return
		}
		done := fmt.Sprintf(a.done, id) + ": " + strconv.Itoa(res.count) + " grant(s) ended."
		back := consoleURL(p.get("back"))
		q := back.Query()
		q.Set("done", done)
		q.Set("sig", s.doneSig(done))
		back.RawQuery = q.Encode()
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
	}
}

// consoleURL is where a form goes back to: a console page of this server,
// never another site (an open redirect).
func consoleURL(back string) *url.URL {
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || (u.Path != "/admin" && u.Path != "/admin/grants") {
		return &url.URL{Path: "/admin"}
	}
	q := u.Query()
	q.Del("done")
	q.Del("sig")
	return &url.URL{Path: u.Path, RawQuery: q.Encode()}
}
