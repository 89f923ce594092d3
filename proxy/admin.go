package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// The operator API: JSON under /admin/api/, for automation, authorised by
// the bearer token ADMIN_TOKEN. It lists clients and grants and ends grants
// (one, a client's everywhere, a user's), revoking their Clerk tokens at
// Clerk. Every request, refused ones included, writes one audit line
// (event admin_action: actor, action, target, result).

const (
	adminActor      = "admin_token"
	maxAdminBody    = 4 << 10
	adminChallenge  = `Bearer realm="clerk-mcp-proxy admin"`
	adminEndpoint   = "admin"
	reasonByAdmin   = "revoked_by_admin"
	reasonUserEnded = "user_grants_ended_by_admin"
)

// mountAdmin serves the operator API when ADMIN_TOKEN is set, and the
// operator console's pages (adminpages.go) when ADMIN_ORG_ID is. The API
// shares the per-IP limits of the OAuth endpoints, so a token cannot be
// guessed fast.
func (s *Server) mountAdmin(r chi.Router) {
	s.mountAdminPages(r)
	if s.cfg.AdminToken == "" {
		return
	}
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	r.Route("/admin/api", func(r chi.Router) {
		r.Use(s.limitInFlight, s.rateLimit("admin", s.cfg.RateLimits.Token), s.adminAuth(want))
		r.Get("/clients", s.adminEndpoint("list_clients", s.adminListClients))
		r.Get("/grants", s.adminEndpoint("list_grants", s.adminListGrants))
		r.Get("/events", s.adminEndpoint("list_events", s.adminListEvents))
		for _, a := range s.adminActions() {
			r.Post("/"+a.path+"/revoke", s.adminEndpoint(a.name, s.jsonAction(a)))
		}
	})
}

// adminAction is one operator action. The API (JSON body) and the console
// (a CSRF-protected form) read the target differently and then run the same
// function.
type adminAction struct {
	name  string // audit action
	path  string // the action is POST .../<path>/revoke
	field string // the JSON or form field naming the target
	done  string // what the console says afterwards, with %s for the target id
	run   func(r *http.Request, id string) (adminResult, *oauthError)
}

func (s *Server) adminActions() []adminAction {
	return []adminAction{
		{"revoke_grant", "grants", "grant_id", "Revoked grant %s", s.adminRevokeGrant},
		{"revoke_client", "clients", "client_id", "Revoked client %s everywhere", s.adminRevokeAll("client", reasonByAdmin, s.revokeClientGrants)},
		{"revoke_user", "users", "user_id", "Ended the grants of user %s", s.adminRevokeAll("user", reasonUserEnded, s.revokeUserGrants)},
	}
}

// target names what an action is aimed at in its audit line.
func (a adminAction) target(id string) string { return strings.TrimSuffix(a.field, "_id") + ":" + id }

// jsonAction runs a with the target read from a JSON body.
func (s *Server) jsonAction(a adminAction) func(http.ResponseWriter, *http.Request) (adminResult, *oauthError) {
	return func(w http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
		id, oerr := adminTarget(w, r, a.field)
		if oerr != nil {
			return adminResult{target: a.target(id)}, oerr
		}
		return a.run(r, id)
	}
}

// adminAudit writes the one audit line of an operator's request; actor is
// "admin_token" for the API, the Clerk user id for the console.
func (s *Server) adminAudit(r *http.Request, actor, action string, res adminResult, oerr *oauthError) {
	result := "ok"
	if oerr != nil {
		result = string(oerr.Code)
	}
	s.audit(r, "admin_action", "actor", actor, "action", action, "target", res.target, "result", result, "grants_ended", res.count)
}

// adminAuth lets a request through only with "Authorization: Bearer
// ADMIN_TOKEN". Both sides are hashed first so the comparison takes the same
// time whatever the length of what was sent.
func (s *Server) adminAuth(want [sha256.Size]byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := bearerToken(r)
			got := sha256.Sum256([]byte(tok))
			if ok && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
			e := oautherr.New(http.StatusUnauthorized, oautherr.Unauthorized, "an admin bearer token is required")
			result := "no_token"
			if ok {
				e = oautherr.New(http.StatusUnauthorized, oautherr.InvalidToken, "the admin token is not valid")
				result = "bad_token"
			}
			e.Challenge = adminChallenge
			s.audit(r, "admin_action", "actor", "anonymous", "action", "authenticate", "target", r.URL.Path, "result", result)
			s.writeError(w, r, adminEndpoint, e)
		})
	}
}

// adminResult is what an admin action did, for its answer and audit line.
type adminResult struct {
	target string
	body   any
	count  int // grants ended, for revocations
}

// adminEndpoint runs one admin action and writes its answer and its one
// audit line.
func (s *Server) adminEndpoint(action string, h func(w http.ResponseWriter, r *http.Request) (adminResult, *oauthError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, oerr := h(w, r)
		s.adminAudit(r, adminActor, action, res, oerr)
		if oerr != nil {
			s.writeError(w, r, adminEndpoint, oerr)
			return
		}
		writeJSON(w, http.StatusOK, res.body)
	}
}

// adminClient is a client as the operator API shows it.
type adminClient struct {
	ClientID     string    `json:"client_id"`
	ClientName   string    `json:"client_name,omitempty"`
	Kind         string    `json:"kind"` // "registered" (RFC 7591) or "metadata_document" (CIMD)
	RedirectURIs []string  `json:"redirect_uris,omitempty"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	Grants       int       `json:"grants"` // live grants (active or awaiting their code's redemption)
}

// adminListClients lists every registered client and every metadata-document
// client that holds grants, with its number of grants. A metadata document
// is only cached, so such a client is known by its grants.
func (s *Server) adminListClients(_ http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
	out, oerr := s.adminClients(r)
	return adminResult{target: "*", body: map[string]any{"clients": out}}, oerr
}

// adminClients is the client listing of the API and the console.
func (s *Server) adminClients(r *http.Request) ([]adminClient, *oauthError) {
	ctx := r.Context()
	records, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, s.adminStoreError(r, "list_clients", err)
	}
	holding, err := s.store.ListGrantClients(ctx)
	if err != nil {
		return nil, s.adminStoreError(r, "list_grant_clients", err)
	}
	byID := map[string]store.Client{}
	ids := slices.Clone(holding)
	for _, c := range records {
		byID[c.ID] = c
		if !clientid.IsMetadataDocument(c.ID) {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := []adminClient{}
	for _, id := range ids {
		gs, err := s.store.ListGrantsByClient(ctx, id)
		if err != nil {
			return nil, s.adminStoreError(r, "list_grants", err)
		}
		c, known := byID[id]
		meta := clientid.IsMetadataDocument(id)
		if (!known && !meta) || (meta && len(gs) == 0) {
			// A registration that is gone (its grants are already refused
			// everywhere, clientid.Gone), or a metadata-document client
			// whose last grants have just ended.
			continue
		}
		kind := "registered"
		if meta {
			kind = "metadata_document"
		}
		out = append(out, adminClient{ClientID: id, ClientName: c.Name, Kind: kind, RedirectURIs: c.RedirectURIs,
			CreatedAt: c.CreatedAt, Grants: len(gs)})
	}
	return out, nil
}

// adminGrant is a grant as the operator API shows it: never a token, a hash
// or the sealed Clerk tokens.
type adminGrant struct {
	GrantID   string    `json:"grant_id"`
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	Resource  string    `json:"resource,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastUsedAt is the minute of the grant's last recorded use (at most a
	// minute behind; internal/lastused); absent when never used.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Active     bool      `json:"active"`
}

// adminListGrants lists the grants of one user (?user_id=) or one client
// (?client_id=), oldest first.
func (s *Server) adminListGrants(_ http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
	target, gs, oerr := s.adminGrants(r)
	return adminResult{target: target, body: map[string]any{"grants": gs}}, oerr
}

// adminGrants is the grant listing of the API and the console: the query
// names exactly one user_id or one client_id.
func (s *Server) adminGrants(r *http.Request) (target string, out []adminGrant, oerr *oauthError) {
	q := r.URL.Query()
	user, client := q.Get("user_id"), q.Get("client_id")
	var (
		gs  []store.Grant
		err error
	)
	switch {
	case len(q["user_id"]) == 1 && len(q["client_id"]) == 0 && user != "":
		target = "user:" + user
		gs, err = s.store.ListGrantsByUser(r.Context(), user)
	case len(q["client_id"]) == 1 && len(q["user_id"]) == 0 && client != "":
		target = "client:" + client
		gs, err = s.store.ListGrantsByClient(r.Context(), client)
	default:
		return "", nil, errInvalidRequest("name exactly one user_id or one client_id")
	}
	if err != nil {
		return target, nil, s.adminStoreError(r, "list_grants", err)
	}
	slices.SortFunc(gs, func(a, b store.Grant) int { return a.CreatedAt.Compare(b.CreatedAt) })
	out = make([]adminGrant, 0, len(gs))
	for _, g := range gs {
		ag := adminGrant{GrantID: g.ID, UserID: g.UserID, ClientID: g.ClientID, Scopes: g.Scopes,
			Resource: g.Resource, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt, Active: g.Active}
		if s.lastUsed != nil {
			ag.LastUsedAt, _ = s.lastUsed.LastUsed(r.Context(), g.ID)
		}
		out = append(out, ag)
	}
	return target, out, nil
}

// adminListEvents lists recent security events, newest first (?limit=,
// 1 to maxEventsListed, default defaultEventsListed).
func (s *Server) adminListEvents(_ http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
	res := adminResult{target: "events"}
	n := defaultEventsListed
	if q := r.URL.Query(); q.Has("limit") {
		v, err := strconv.Atoi(q.Get("limit"))
		if err != nil || v < 1 || v > maxEventsListed || len(q["limit"]) != 1 {
			return res, errInvalidRequest("limit must be one integer from 1 to " + strconv.Itoa(maxEventsListed))
		}
		n = v
	}
	evs, oerr := s.recentEvents(r, n)
	res.body = map[string]any{"events": evs}
	return res, oerr
}

const (
	defaultEventsListed = 100
	maxEventsListed     = 1000
)

// recentEvents reads the shared event log (none when it is off).
func (s *Server) recentEvents(r *http.Request, n int) ([]secevents.Event, *oauthError) {
	if s.secEvents == nil {
		return []secevents.Event{}, nil
	}
	evs, err := s.secEvents.Recent(r.Context(), n)
	if err != nil {
		return nil, s.adminStoreError(r, "recent_events", err)
	}
	return evs, nil
}

// adminRevokeGrant ends one grant.
func (s *Server) adminRevokeGrant(r *http.Request, id string) (adminResult, *oauthError) {
	res := adminResult{target: "grant:" + id}
	g, err := s.store.GetGrant(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return res, oautherr.New(http.StatusNotFound, oautherr.NotFound, "no such grant")
	}
	if err != nil {
		return res, s.adminStoreError(r, "get_grant", err)
	}
	n, err := s.endGrants(r, []store.Grant{g}, reasonByAdmin)
	return s.adminRevoked(res, n, err)
}

// adminRevokeAll is an action that ends every grant found through one
// index: a client's grants for every user (the registration stays; for a
// metadata-document client there is none: to keep a client out, delete its
// registration or deny it with CIMD_DENIED_CLIENTS), or a user's grants.
func (s *Server) adminRevokeAll(kind, reason string, revoke func(*http.Request, string, string) (int, error)) func(*http.Request, string) (adminResult, *oauthError) {
	return func(r *http.Request, id string) (adminResult, *oauthError) {
		n, err := revoke(r, id, reason)
		return s.adminRevoked(adminResult{target: kind + ":" + id}, n, err)
	}
}

func (s *Server) adminRevoked(res adminResult, n int, err error) (adminResult, *oauthError) {
	res.count = n
	res.body = map[string]any{"revoked": n}
	if err != nil {
		// Already logged where it failed; ending grants again is harmless,
		// so the operator retries.
		return res, errUnavailable("the store failed part-way; retry to end the remaining grants").WithCause(err)
	}
	return res, nil
}

func (s *Server) adminStoreError(r *http.Request, op string, err error) *oauthError {
	s.storeError(r, op, err)
	return errUnavailable("the store is unavailable, try again").WithCause(err)
}

// adminTarget reads an action's JSON body, {"<field>": "<non-empty id>"},
// and nothing else.
func adminTarget(w http.ResponseWriter, r *http.Request, field string) (string, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return "", errInvalidRequest("the body must be application/json")
	}
	body, berr := httpx.ReadBody(w, r, maxAdminBody)
	if berr != nil {
		return "", oautherr.New(berr.Status, oautherr.InvalidRequest, berr.Description)
	}
	var req map[string]string
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return "", errInvalidRequest(`the body must be a JSON object {"` + field + `": "..."}`)
	}
	id := req[field]
	if len(req) != 1 || strings.TrimSpace(id) == "" {
		return "", errInvalidRequest(`the body must be a JSON object {"` + field + `": "..."}`)
	}
	return id, nil
}

// revokeClientGrants ends every grant made for clientID, with their Clerk
// tokens, and returns how many it ended.
func (s *Server) revokeClientGrants(r *http.Request, clientID, reason string) (int, error) {
	return s.revokeIndexed(r, s.store.ListGrantsByClient, clientID, reason)
}

// revokeUserGrants ends every grant of userID, with their Clerk tokens (a
// user deleted or banned in Clerk, an operator's action).
func (s *Server) revokeUserGrants(r *http.Request, userID, reason string) (int, error) {
	return s.revokeIndexed(r, s.store.ListGrantsByUser, userID, reason)
}

func (s *Server) revokeIndexed(r *http.Request, list func(context.Context, string) ([]store.Grant, error), id, reason string) (int, error) {
	gs, err := list(r.Context(), id)
	if err != nil {
		s.storeError(r, "list_grants", err)
		return 0, err
	}
	return s.endGrants(r, gs, reason)
}
