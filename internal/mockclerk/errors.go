package mockclerk

import (
	"net/http"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// maxBody caps request bodies (Clerk's requests are small forms and JSON).
const maxBody = 64 << 10

// writeJSON is the product's one JSON writer (no-store, as Clerk's answers are).
func writeJSON(w http.ResponseWriter, status int, v any) { oautherr.WriteJSON(w, status, v) }

// writeOAuthError is the /oauth/token family's body: {"error","error_description"}.
func writeOAuthError(w http.ResponseWriter, status int, code oautherr.Code, desc string) {
	e := oautherr.New(status, code, desc)
	if status == http.StatusUnauthorized && code == oautherr.InvalidClient {
		e.Challenge = `Basic realm="clerk"`
	}
	oautherr.Write(w, e)
}

// writeClerkError is Clerk's envelope for userinfo, the Backend API and
// non-OAuth endpoints.
func writeClerkError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors":         []map[string]any{{"message": msg, "long_message": msg, "code": code, "meta": map[string]any{}}},
		"clerk_trace_id": randomHex(16),
	})
}
