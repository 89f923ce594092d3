package mcpwire

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		body  string
		batch bool
		names []string
		tools []string
		err   bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, false, []string{"a"}, []string{"a"}, false},
		{` [{"id":1,"method":"tools/call","params":{"name":"a"}},{"id":2,"method":"resources/read","params":{"uri":"x://y"}},{"id":3,"method":"tools/call","params":{"name":"a"}}]`,
			true, []string{"a", "x://y", "a"}, []string{"a"}, false},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, false, []string{""}, nil, false},
		{``, false, nil, nil, true},
		{`"str"`, false, nil, nil, true},
		{`[1,2]`, true, nil, nil, true},
		{`{"method":"tools/call","params":"notobject"}`, false, []string{""}, nil, false},
	}
	for _, tc := range tests {
		msgs, batch, err := Parse([]byte(tc.body))
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrNotJSONRPC)) {
			t.Errorf("Parse(%q) err = %v", tc.body, err)
			continue
		}
		if err != nil {
			continue
		}
		var names []string
		for _, m := range msgs {
			names = append(names, m.Name)
		}
		if batch != tc.batch || !slices.Equal(names, tc.names) || !slices.Equal(ToolCalls(msgs), tc.tools) {
			t.Errorf("Parse(%q) = batch %v names %q tools %q", tc.body, batch, names, ToolCalls(msgs))
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	call := []Message{{ID: []byte("1"), Method: "tools/call", Params: []byte(`{"name":"get-user-info"}`)}}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	const modern = "2026-07-28"
	tests := []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"older revision needs no headers", h(mcp.HeaderProtocolVersion, "2025-11-25"), true},
		{"matching", h(mcp.HeaderProtocolVersion, modern, "Mcp-Method", "tools/call", "Mcp-Name", "get-user-info"), true},
		{"missing method", h(mcp.HeaderProtocolVersion, modern), false},
		{"other method", h(mcp.HeaderProtocolVersion, modern, "Mcp-Method", "tools/list", "Mcp-Name", "get-user-info"), false},
		{"other name", h(mcp.HeaderProtocolVersion, modern, "Mcp-Method", "tools/call", "Mcp-Name", "delete-everything"), false},
		{"base64 name", h(mcp.HeaderProtocolVersion, modern, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?Z2V0LXVzZXItaW5mbw==?="), true},
	}
	for _, tc := range tests {
		if err := CheckHeaders(tc.h, call, false); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if err := CheckHeaders(h(mcp.HeaderProtocolVersion, modern), append(call, call...), true); err != nil {
		t.Errorf("batches are not checked: %v", err)
	}
}

func TestMetaAndErrorResponses(t *testing.T) {
	for _, tc := range []struct {
		body string
		keys []string
	}{
		{`{"id":1,"method":"tools/call","params":{"name":"a","_meta":{"openai/locale":"en","progressToken":2}}}`, []string{"openai/locale", "progressToken"}},
		{`{"id":1,"method":"tools/call","params":{"name":"a"}}`, nil},
		{`{"id":1,"method":"tools/call","params":{"name":"a","_meta":"x"}}`, nil},
		{`{"id":1,"method":"ping"}`, nil},
	} {
		msgs, _, err := Parse([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range msgs[0].Meta() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, tc.keys) {
			t.Errorf("%s: meta keys %v, want %v", tc.body, keys, tc.keys)
		}
	}
	one, _ := json.Marshal(Responses(false, []Error{{ID: json.RawMessage(`"a"`), Code: CodeForbidden, Message: "no", Data: map[string]any{"tool": "t"}}}))
	if string(one) != `{"error":{"code":-32003,"data":{"tool":"t"},"message":"no"},"id":"a","jsonrpc":"2.0"}` {
		t.Errorf("single: %s", one)
	}
	many, _ := json.Marshal(Responses(true, []Error{{ID: json.RawMessage(`1`), Code: -1, Message: "x"}}))
	if string(many) != `[{"error":{"code":-1,"message":"x"},"id":1,"jsonrpc":"2.0"}]` {
		t.Errorf("batch: %s", many)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":1,"method":"tools/call","params":{"name":"a"}}`))
	f.Add([]byte(`[{"method":"resources/read","params":{"uri":"u"}}]`))
	f.Add([]byte(`{"id":1,"method":"tools/call","params":{"name":"a","_meta":{"openai/locale":"en"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, batch, err := Parse(body)
		if err == nil {
			_ = ToolCalls(msgs)
			for _, m := range msgs {
				_ = m.Meta()
				if _, err := json.Marshal(Responses(batch, []Error{{ID: m.ID, Code: CodeForbidden, Message: "no"}})); err != nil && json.Valid(m.ID) {
					t.Fatalf("error response for id %q: %v", m.ID, err)
				}
			}
			_ = CheckHeaders(http.Header{"Mcp-Protocol-Version": {"2026-07-28"}}, msgs, false)
		}
	})
}
