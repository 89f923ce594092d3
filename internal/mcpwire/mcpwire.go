// Package mcpwire reads what the MCP endpoint and the gateway must know of a
// streamable-HTTP request without being an MCP server: the JSON-RPC messages
// of a POST body (single or batch) with their method and target name, and
// whether the 2026-07-28 Mcp-Method / Mcp-Name headers agree with them.
package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// Message is one JSON-RPC message of a POST body.
type Message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
	// Name is params.name (tools/call, prompts/get) or params.uri
	// (resources/read); empty for other methods.
	Name string `json:"-"`
}

// IsRequest says whether the message expects an answer (it has an id and
// a method).
func (m Message) IsRequest() bool { return len(m.ID) > 0 && m.Method != "" }

// ErrNotJSONRPC is returned for a body that is not a JSON object or array of
// objects.
var ErrNotJSONRPC = errors.New("the body is not a JSON-RPC message or batch")

// Parse reads the messages of a POST body. batch says whether the body was
// a JSON array.
func Parse(body []byte) (msgs []Message, batch bool, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, false, ErrNotJSONRPC
	}
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &msgs); err != nil {
			return nil, true, ErrNotJSONRPC
		}
		batch = true
	} else {
		var m Message
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, false, ErrNotJSONRPC
		}
		msgs = []Message{m}
	}
	for i := range msgs {
		if n, ok := mcp.ExtractHeaderName(mcp.MCPMethod(msgs[i].Method), msgs[i].Params); ok {
			msgs[i].Name = n
		}
	}
	return msgs, batch, nil
}

// ToolCalls returns the names of the tools a body calls, once each.
func ToolCalls(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Method == string(mcp.MethodToolsCall) && m.Name != "" && !contains(out, m.Name) {
			out = append(out, m.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HeaderMismatchCode is the JSON-RPC error code for a request whose
// Mcp-Method / Mcp-Name headers disagree with its body (SEP-2243); mcp-go's
// server answers the same.
const HeaderMismatchCode = mcp.HEADER_MISMATCH

// CheckHeaders checks the 2026-07-28 standard headers against the single
// message of a POST body; a no-op for earlier protocol versions (they did
// not define the headers) and for batches (2026-07-28 has none).
func CheckHeaders(h http.Header, msgs []Message, batch bool) error {
	if batch || len(msgs) != 1 {
		return nil
	}
	m := msgs[0]
	return mcp.ValidateStandardHeaders(h.Get, h.Get(mcp.HeaderProtocolVersion), mcp.MCPMethod(m.Method), m.Params)
}

// Meta returns the request's params._meta object (nil when absent or not
// an object): clients put hints there, e.g. the OpenAI Apps SDK's
// "openai/..." keys on tools/call.
func (m Message) Meta() map[string]json.RawMessage {
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if len(m.Params) == 0 || json.Unmarshal(m.Params, &p) != nil {
		return nil
	}
	return p.Meta
}

// CodeForbidden is the JSON-RPC error code for a call the caller is not
// allowed to make (an organisation role or permission it lacks). MCP
// defines none; it is in the range JSON-RPC leaves to servers, and refused
// calls answer it as a JSON-RPC error rather than an HTTP 403 because some
// clients drop the whole connection on a 403.
const CodeForbidden = -32003

// Error is a JSON-RPC error answer to one request.
type Error struct {
	ID      json.RawMessage
	Code    int
	Message string
	Data    any
}

// Response is the wire form of e.
func (e Error) Response() map[string]any {
	body := map[string]any{"code": e.Code, "message": e.Message}
	if e.Data != nil {
		body["data"] = e.Data
	}
	id := e.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	return map[string]any{"jsonrpc": "2.0", "id": id, "error": body}
}

// Responses is the body answering a POST with errs: one object, or an array
// when the request was a batch.
func Responses(batch bool, errs []Error) any {
	if !batch && len(errs) == 1 {
		return errs[0].Response()
	}
	out := make([]map[string]any, len(errs))
	for i, e := range errs {
		out[i] = e.Response()
	}
	return out
}

// NeedsHeaderCheck says whether a request's protocol version defines the
// Mcp-Method / Mcp-Name headers (2026-07-28 and later), i.e. whether
// CheckHeaders can refuse it.
func NeedsHeaderCheck(h http.Header) bool {
	return mcp.RequiresStandardHeaders(h.Get(mcp.HeaderProtocolVersion))
}
