package proxy

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// TestCorruptCodeRecord proves an authorization code whose stored record is
// unreadable is answered as an invalid code (and logged as a store fault),
// not as a code "issued to another client": the record's empty client id
// used to be compared with the caller's, blaming the client for the store.
func TestCorruptCodeRecord(t *testing.T) {
	for _, tc := range []struct{ name, record string }{
		{"not JSON", "{not json"},
		{"JSON null", "null"},
		{"no grant or client", "{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFzEnv(t)
			code := "corrupt-code-0123456789abcdef"
			if err := e.st.PutTicket(context.Background(), store.KindCode, seal.HashHex(code), []byte(tc.record), codeTTL); err != nil {
				t.Fatal(err)
			}
			status, body := e.rvPost("/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {fzPublicID},
				"code": {code}, "code_verifier": {"v0123456789v0123456789v0123456789v0123456789"}, "redirect_uri": {fzRedirects[0]}}, "", "")
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["error_description"] != "the authorization code is invalid or expired" {
				t.Fatalf("%d %v", status, body)
			}
		})
	}
}
