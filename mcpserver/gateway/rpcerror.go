package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mcpwire"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/mark3labs/mcp-go/mcp"
)

// JSON-RPC error codes the gateway answers with, besides mcpwire's.
// -32000..-32019 are implementation-defined (MCP 2026-07-28 reserves
// -32020..-32099 for the specification).
const (
	codeParseError     = mcp.PARSE_ERROR
	codeInvalidRequest = mcp.INVALID_REQUEST
	// codeUpstream: the upstream MCP server failed, timed out, refused the
	// gateway or answered garbage.
	codeUpstream = -32010
)

// writeRPCError answers one JSON-RPC error with the given HTTP status,
// never cached (it depends on the user and on the moment).
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	oautherr.WriteJSON(w, status, mcpwire.Error{ID: id, Code: code, Message: msg}.Response())
}
