package mockclerk

// The "team app" of AUTH_MODE=app: a stand-in for the team's own web app
// (Cloudflare's workers-oauth-provider Clerk template), served on the fake's
// origin under /team-app. Its /team-app/auth/mcp page signs a seeded user
// in (a Clerk session), asks whether to let the MCP client in, and sends the
// browser back to the proxy's callback_url with a Clerk session token
// (clerk_token) or error=access_denied, and the state unchanged. The Backend
// API's session endpoints answer for those sessions.

import (
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// TeamAppPath is where the team app lives: APP_URL = issuer + TeamAppPath.
const TeamAppPath = "/team-app"

// sessionTokenTTL is Clerk's session-token lifetime (60 s; the frontend SDK
// refreshes it every minute).
const sessionTokenTTL = 60 * time.Second

// clerkSession is a Clerk session (BAPI Session object, the fields used).
type clerkSession struct {
	ID, UserID, Status string
	Created            time.Time
}

var teamAppTmpl = template.Must(template.New("teamapp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect {{.Client}} · Team app (fake)</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;background:#eef3f8;color:#1f2430;margin:0;display:flex;justify-content:center;padding:48px 16px}
.card{background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(20,20,40,.08);padding:32px;max-width:440px;width:100%}
.brand{font-weight:700;color:#0a7c66;margin-bottom:4px}h1{font-size:22px;margin:0 0 6px}.muted{color:#6b7080;font-size:14px}
label.user{display:flex;gap:12px;align-items:center;border:1px solid #e3e3ea;border-radius:10px;padding:10px 12px;margin:8px 0}
.row{display:flex;gap:12px;margin-top:18px}button{flex:1;border:0;border-radius:10px;padding:12px;font-size:16px;cursor:pointer}
.approve{background:#0a7c66;color:#fff}.deny{background:#e9e9ef;color:#1f2430}
</style></head><body><main class="card"><div class="brand">Team app · development fake</div>
<h1>Connect {{.Client}}</h1>
<p class="muted">{{.Client}} wants to use the MCP server as you. Signed in to the team app with Clerk as:</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="callback_url" value="{{.Callback}}">
{{range $i, $u := .Users}}<label class="user"><input type="radio" name="user_id" value="{{$u.ID}}"{{if eq $i 0}} checked{{end}}>
<span>{{$u.Name}} <small class="muted">{{$u.Email}}</small></span></label>
{{end}}<div class="row"><button class="deny" type="submit" name="action" value="deny">Deny</button>
<button class="approve" type="submit" name="action" value="approve">Allow</button></div>
</form></main></body></html>`))

func (s *Server) teamAppRoutes() {
	s.mux.HandleFunc("GET "+TeamAppPath+"/auth/mcp", s.handleTeamAppPage)
	s.mux.HandleFunc("POST "+TeamAppPath+"/auth/mcp", s.handleTeamAppDecision)
	s.mux.HandleFunc("GET /v1/sessions/{id}", s.bapi(s.handleSession))
	s.mux.HandleFunc("POST /v1/sessions/{id}/revoke", s.bapi(s.handleSessionRevoke))
}

// teamAppCallback reads and checks the callback_url: an absolute http(s)
// URL (a real app would also pin it to its proxy).
func teamAppCallback(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	return u, err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Fragment == ""
}

func (s *Server) handleTeamAppPage(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pageParams(w, r, http.MethodGet)
	if !ok {
		return
	}
	if _, ok := teamAppCallback(p.Get("callback_url")); !ok || p.Get("state") == "" {
		s.page(w, http.StatusBadRequest, "Invalid request", "state and an absolute callback_url are required.")
		return
	}
	setPageHeaders(w)
	_ = teamAppTmpl.Execute(w, map[string]any{"Client": nonEmpty(p.Get("client_name"), "An MCP client"), "Action": TeamAppPath + "/auth/mcp",
		"State": p.Get("state"), "Callback": p.Get("callback_url"), "Users": s.cfg.Users})
}

// handleTeamAppDecision signs the chosen user in (a new Clerk session) and
// returns to the proxy with the session token, or with access_denied.
func (s *Server) handleTeamAppDecision(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pageParams(w, r, http.MethodPost)
	if !ok {
		return
	}
	cb, ok := teamAppCallback(p.Get("callback_url"))
	if !ok || p.Get("state") == "" {
		s.page(w, http.StatusBadRequest, "Invalid request", "state and an absolute callback_url are required.")
		return
	}
	q := cb.Query()
	q.Set("state", p.Get("state"))
	if p.Get("action") != "approve" {
		q.Set("error", "access_denied")
		cb.RawQuery = q.Encode()
		http.Redirect(w, r, cb.String(), http.StatusFound)
		return
	}
	u, ok := s.user(nonEmpty(p.Get("user_id"), s.cfg.Users[0].ID))
	if !ok {
		s.page(w, http.StatusBadRequest, "Unknown user", "Pick one of the listed users.")
		return
	}
	tok, err := s.NewSession(u.ID)
	if err != nil {
		s.page(w, http.StatusInternalServerError, "Error", "signing failed")
		return
	}
	q.Set("clerk_token", tok)
	cb.RawQuery = q.Encode()
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, cb.String(), http.StatusFound)
}

// NewSession signs userID in (a new active session) and returns its session
// token: RS256 under the instance key, typ JWT, the cat header, and the
// claims of a Clerk session token (iss, sub, sid, azp = the team app's
// origin, iat, nbf, exp after 60 s).
func (s *Server) NewSession(userID string) (string, error) {
	now := s.cfg.Now()
	sess := &clerkSession{ID: "sess_" + randomAlnum(27), UserID: userID, Status: "active", Created: now}
	s.mu.Lock()
	s.st.sessions[sess.ID] = sess
	s.mu.Unlock()
	return s.SessionToken(sess.ID, userID, s.cfg.Issuer, now)
}

// SessionToken mints a session token for a session with the given azp at
// iat, for tests that need one expired or minted for another origin.
func (s *Server) SessionToken(sessionID, userID, azp string, iat time.Time) (string, error) {
	return s.sign("JWT", catSessionToken, map[string]any{"iss": s.cfg.Issuer, "sub": userID, "sid": sessionID, "azp": azp,
		"iat": iat.Unix(), "nbf": iat.Unix() - 10, "exp": iat.Add(sessionTokenTTL).Unix(), "v": 2})
}

// RevokeSession ends a session, as signing out in the team app does.
func (s *Server) RevokeSession(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.st.sessions[id]; ok {
		sess.Status = "revoked"
	}
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess, ok := s.st.sessions[r.PathValue("id")]
	var out map[string]any
	if ok {
		out = map[string]any{"object": "session", "id": sess.ID, "user_id": sess.UserID, "client_id": "client_" + sess.ID[5:],
			"status": sess.Status, "created_at": sess.Created.UnixMilli(), "updated_at": sess.Created.UnixMilli(),
			"last_active_at": sess.Created.UnixMilli(), "expire_at": sess.Created.Add(7 * 24 * time.Hour).UnixMilli()}
	}
	s.mu.Unlock()
	if !ok {
		writeClerkError(w, http.StatusNotFound, "resource_not_found", "Session not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSessionRevoke(w http.ResponseWriter, r *http.Request) {
	s.RevokeSession(r.PathValue("id"))
	s.handleSession(w, r)
}
