package mcpserver

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestSalutation: get-user-greeting's optional argument defaults to Hello,
// is trimmed, and is refused when too long or holding control characters
// (it is echoed into the greeting).
func TestSalutation(t *testing.T) {
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
		ok   bool
	}{
		{"absent", nil, "Hello", true},
		{"empty", map[string]any{"salutation": "  "}, "Hello", true},
		{"given", map[string]any{"salutation": " Bonjour "}, "Bonjour", true},
		{"40 characters", map[string]any{"salutation": strings.Repeat("é", 40)}, strings.Repeat("é", 40), true},
		{"41 characters", map[string]any{"salutation": strings.Repeat("é", 41)}, "", false},
		{"control character", map[string]any{"salutation": "Hi\x1b[2J"}, "", false},
		{"newline", map[string]any{"salutation": "Hi\nthere"}, "", false},
		{"not a string", map[string]any{"salutation": 42}, "Hello", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req mcp.CallToolRequest
			req.Params.Arguments = tc.args
			got, ok := salutation(req)
			if got != tc.want || ok != tc.ok {
				t.Errorf("salutation(%v) = %q %v, want %q %v", tc.args, got, ok, tc.want, tc.ok)
			}
		})
	}
}
