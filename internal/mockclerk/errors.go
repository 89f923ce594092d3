package mockclerk

import (
	"encoding/json"
	"net/http"
)

// maxBody caps request bodies (Clerk's requests are small forms and JSON).
const maxBody = 64 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeOAuthError is the /oauth/token family's body: {"error","error_description"}.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized && code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="clerk"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// writeClerkError is Clerk's envelope for userinfo, the Backend API and
// non-OAuth endpoints.
func writeClerkError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors":         []map[string]any{{"message": msg, "long_message": msg, "code": code, "meta": map[string]any{}}},
		"clerk_trace_id": randomHex(16),
	})
}
