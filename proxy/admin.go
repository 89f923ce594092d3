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
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
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

// mountAdmin serves the operator API when ADMIN_TOKEN is set. It shares the
// per-IP limits of the OAuth endpoints, so a token cannot be guessed fast.
func (s *Server) mountAdmin(r chi.Router) {
	if s.cfg.AdminToken == "" {
		return
	}
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	r.Route("/admin/api", func(r chi.Router) {
		r.Use(s.limitInFlight, s.rateLimit("admin", s.cfg.RateLimits.Token), s.adminAuth(want))
		r.Get("/clients", s.adminEndpoint("list_clients", s.adminListClients))
		r.Get("/grants", s.adminEndpoint("list_grants", s.adminListGrants))
		r.Post("/grants/revoke", s.adminEndpoint("revoke_grant", s.adminRevokeGrant))
		r.Post("/clients/revoke", s.adminEndpoint("revoke_client", s.adminRevokeAll("client_id", reasonByAdmin, s.revokeClientGrants)))
		r.Post("/users/revoke", s.adminEndpoint("revoke_user", s.adminRevokeAll("user_id", reasonUserEnded, s.revokeUserGrants)))
	})
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
		result := "ok"
		if oerr != nil {
			result = string(oerr.Code)
		}
		s.audit(r, "admin_action", "actor", adminActor, "action", action, "target", res.target, "result", result, "grants_ended", res.count)
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
	ctx := r.Context()
	records, err := s.store.ListClients(ctx)
	if err != nil {
		return adminResult{target: "*"}, s.adminStoreError(r, "list_clients", err)
	}
	holding, err := s.store.ListGrantClients(ctx)
	if err != nil {
		return adminResult{target: "*"}, s.adminStoreError(r, "list_grant_clients", err)
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
			return adminResult{target: "*"}, s.adminStoreError(r, "list_grants", err)
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
	return adminResult{target: "*", body: map[string]any{"clients": out}}, nil
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
	Active    bool      `json:"active"`
}

// adminListGrants lists the grants of one user (?user_id=) or one client
// (?client_id=), oldest first.
func (s *Server) adminListGrants(_ http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
	q := r.URL.Query()
	user, client := q.Get("user_id"), q.Get("client_id")
	var (
		gs  []store.Grant
		err error
	)
	switch {
	case len(q["user_id"]) == 1 && len(q["client_id"]) == 0 && user != "":
		gs, err = s.store.ListGrantsByUser(r.Context(), user)
	case len(q["client_id"]) == 1 && len(q["user_id"]) == 0 && client != "":
		gs, err = s.store.ListGrantsByClient(r.Context(), client)
	default:
		return adminResult{}, errInvalidRequest("name exactly one user_id or one client_id")
	}
	target := "user:" + user
	if client != "" {
		target = "client:" + client
	}
	if err != nil {
		return adminResult{target: target}, s.adminStoreError(r, "list_grants", err)
	}
	slices.SortFunc(gs, func(a, b store.Grant) int { return a.CreatedAt.Compare(b.CreatedAt) })
	out := make([]adminGrant, 0, len(gs))
	for _, g := range gs {
		out = append(out, adminGrant{GrantID: g.ID, UserID: g.UserID, ClientID: g.ClientID, Scopes: g.Scopes,
			Resource: g.Resource, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt, Active: g.Active})
	}
	return adminResult{target: target, body: map[string]any{"grants": out}}, nil
}

// adminRevokeGrant ends one grant: {"grant_id": "..."}.
func (s *Server) adminRevokeGrant(w http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
	id, oerr := adminTarget(w, r, "grant_id")
	res := adminResult{target: "grant:" + id}
	if oerr != nil {
		return res, oerr
	}
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
// index: {"client_id": "..."} ends a client's grants for every user (the
// registration stays; for a metadata-document client there is none: to keep
// a client out, delete its registration or deny it with CIMD_DENIED_CLIENTS),
// {"user_id": "..."} ends a user's grants.
func (s *Server) adminRevokeAll(field, reason string, revoke func(*http.Request, string, string) (int, error)) func(http.ResponseWriter, *http.Request) (adminResult, *oauthError) {
	return func(w http.ResponseWriter, r *http.Request) (adminResult, *oauthError) {
		id, oerr := adminTarget(w, r, field)
		res := adminResult{target: strings.TrimSuffix(field, "_id") + ":" + id}
		if oerr != nil {
			return res, oerr
		}
		n, err := revoke(r, id, reason)
		return s.adminRevoked(res, n, err)
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
