package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// JSON-RPC error codes the gateway answers with. -32000..-32019 are
// implementation-defined (MCP 2026-07-28 reserves -32020..-32099 for the
// specification).
const (
	codeParseError     = mcp.PARSE_ERROR
	codeInvalidRequest = mcp.INVALID_REQUEST
	// codeForbidden: the user may not call the tool (organisation role or
	// permission missing); re-authorizing would not help.
	codeForbidden = -32003
	// codeUpstream: the upstream MCP server failed, timed out, refused the
	// gateway or answered garbage.
	codeUpstream = -32010
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

func response(id json.RawMessage, e rpcError) rpcResponse {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	return rpcResponse{JSONRPC: "2.0", ID: id, Error: e}
}

// writeRPC is the one place the gateway's own answers are written: a
// JSON-RPC error (or a batch of them) with the given HTTP status, never
// cached (they depend on the user and on the moment).
func writeRPC(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeRPCError answers one JSON-RPC error.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	writeRPC(w, status, response(id, rpcError{Code: code, Message: msg}))
}

// writeRefusal answers a body with a forbidden tools/call: nothing of it is
// forwarded. The refusal is a JSON-RPC error with HTTP 200, not a 403: the
// transport worked, and some clients take a 403 for an authorization
// failure and start a sign-in that cannot help (Pomerium answers alike).
// In a batch every request gets an error, the allowed ones saying why they
// were not sent.
func writeRefusal(w http.ResponseWriter, x *exchange, refusals map[string][]string) {
	var out []rpcResponse
	for _, m := range x.msgs {
		if !m.IsRequest() {
			continue
		}
		e := rpcError{Code: codeForbidden, Message: "not sent: another call in the same batch was refused"}
		if missing, ok := refusals[string(m.ID)]; ok && m.Method == "tools/call" {
			e = rpcError{
				Code:    codeForbidden,
				Message: fmt.Sprintf("you may not call the tool %q: your organisation role or permissions do not allow it (needs %s)", m.Name, strings.Join(missing, ", ")),
				Data:    map[string]any{"tool": m.Name, "missing": missing},
			}
		}
		out = append(out, response(m.ID, e))
	}
	if !x.batch && len(out) == 1 {
		writeRPC(w, http.StatusOK, out[0])
		return
	}
	writeRPC(w, http.StatusOK, out)
}
