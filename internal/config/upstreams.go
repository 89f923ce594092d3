package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
)

// Upstream is one MCP server the gateway fronts at a path of its own
// (UPSTREAMS / UPSTREAMS_FILE): its own protected resource, BASE_URL+Path,
// with its own RFC 9728 metadata, token audience, scopes and tool policy,
// under the one authorization server.
type Upstream struct {
	// Path is where the proxy serves it, e.g. /github (never /mcp, which is
	// the built-in tools or UPSTREAM_MCP_URL).
	Path string `json:"path"`
	// URL is the upstream's full MCP URL.
	URL string `json:"url"`
	// Name is the resource_name of its metadata; default: the path.
	Name string `json:"name,omitempty"`
	// Scopes are its baseline scopes (metadata, 401 challenge); default:
	// SCOPES_SUPPORTED.
	Scopes []string `json:"scopes,omitempty"`
	// ToolScopes, ToolRoles and ToolPermissions are its tool policy, as
	// TOOL_SCOPES, TOOL_ROLES and TOOL_PERMISSIONS are /mcp's.
	ToolScopes      map[string][]string `json:"tool_scopes,omitempty"`
	ToolRoles       map[string][]string `json:"tool_roles,omitempty"`
	ToolPermissions map[string][]string `json:"tool_permissions,omitempty"`
	// Timeout bounds the wait for its response headers; default
	// UPSTREAM_TIMEOUT.
	Timeout time.Duration `json:"-"`
	// ForwardUserHeaders and ForwardClerkToken are
	// UPSTREAM_FORWARD_USER_HEADERS and UPSTREAM_FORWARD_CLERK_TOKEN for
	// this upstream alone (default off).
	ForwardUserHeaders bool `json:"forward_user_headers,omitempty"`
	ForwardClerkToken  bool `json:"forward_clerk_token,omitempty"`
}

// Limits of the upstreams document.
const (
	maxUpstreamsDoc = 1 << 20
	maxUpstreams    = 64
	maxMountPath    = 200
)

// reservedSegments are the first path segments the proxy serves itself; an
// upstream mounted there would shadow (or be shadowed by) an endpoint.
var reservedSegments = []string{".well-known", "mcp", "authorize", "token", "register", "revoke", "introspect",
	"consent", "oauth", "callback", "account", "admin", "webhooks", "try", "assets", "healthz", "readyz", "metrics"}

// ParseUpstreams reads the upstreams document: a JSON array of objects,
// decoded strictly (an unknown field, a wrong type, a duplicate path or
// trailing data is an error, so a typo never silently drops a setting).
// Defaults are not applied here (see Load). Every problem is reported,
// each naming the entry it is about.
func ParseUpstreams(doc []byte) ([]Upstream, Problems) {
	if len(doc) > maxUpstreamsDoc {
		return nil, Problems{fmt.Sprintf("the document is longer than %d bytes", maxUpstreamsDoc)}
	}
	type entry struct {
		Upstream
		Timeout string `json:"timeout,omitempty"`
	}
	var raw []entry
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, Problems{"not a JSON array of upstreams: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Problems{"unexpected data after the JSON array"}
	}
	var p Problems
	switch {
	case len(raw) == 0:
		p = append(p, "the array names no upstream")
	case len(raw) > maxUpstreams:
		p = append(p, fmt.Sprintf("more than %d upstreams", maxUpstreams))
	}
	out := make([]Upstream, 0, len(raw))
	seen := map[string]bool{}
	for i, e := range raw {
		u := e.Upstream
		where := fmt.Sprintf("[%d]", i)
		if u.Path != "" {
			where += " " + u.Path
		}
		bad := func(format string, args ...any) { p = append(p, where+": "+fmt.Sprintf(format, args...)) }
		if err := checkMountPath(u.Path); err != nil {
			bad("path: %v", err)
		} else if seen[strings.ToLower(u.Path)] {
			bad("path is used by another upstream")
		}
		seen[strings.ToLower(u.Path)] = true
		if u.URL == "" {
			bad("url is required")
		} else if _, err := gateway.ParseUpstream(u.URL); err != nil {
			bad("url: %v", err)
		}
		if len(u.Name) > 200 || strings.ContainsFunc(u.Name, isControl) {
			bad("name must be at most 200 printable characters")
		}
		for _, s := range u.Scopes {
			if !validScopeToken(s) {
				bad("scope %q has characters RFC 6749 §3.3 does not allow", s)
			}
		}
		if e.Timeout != "" {
			d, err := time.ParseDuration(e.Timeout)
			if err != nil || d <= 0 || d > time.Hour {
				bad("timeout %q must be a positive duration of at most 1h (e.g. 30s)", e.Timeout)
			}
			u.Timeout = d
		}
		for _, r := range []struct {
			field string
			rules map[string][]string
			valid func(string) bool
			what  string
		}{
			{"tool_scopes", u.ToolScopes, validScopeToken, "a valid scope token"},
			{"tool_roles", u.ToolRoles, isOrgKey, "a Clerk role key (org:...)"},
			{"tool_permissions", u.ToolPermissions, isOrgKey, "a Clerk permission key (org:...)"},
		} {
			for _, tool := range sortedKeys(r.rules) {
				if strings.TrimSpace(tool) == "" || len(r.rules[tool]) == 0 {
					bad("%s: every entry needs a tool name and at least one value", r.field)
				}
				for _, v := range r.rules[tool] {
					if !r.valid(v) {
						bad("%s: %q of tool %q is not %s", r.field, v, tool, r.what)
					}
				}
			}
		}
		out = append(out, u)
	}
	if len(p) > 0 {
		return nil, p
	}
	return out, nil
}

// jsonProblem says what is wrong with the document without echoing it
// (an upstream URL may carry a token in its query).
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		field := strings.TrimPrefix(te.Field, "Upstream.")
		if field == "" || !strings.ContainsFunc(field, unicode.IsLetter) {
			return "the document must be an array of objects"
		}
		return fmt.Sprintf("field %q: expected %s", field, jsonKind(te.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the document is empty or cut short"
	}
	return "invalid JSON"
}

// jsonKind names a Go type as the JSON an operator writes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array of strings"
	case reflect.Map:
		return `an object of tool names to arrays of strings`
	}
	return "an object"
}

// checkMountPath: one or more segments of RFC 3986 unreserved characters,
// no dot segments, no trailing slash, not under a path the proxy serves.
func checkMountPath(path string) error {
	if !strings.HasPrefix(path, "/") || len(path) < 2 || len(path) > maxMountPath {
		return fmt.Errorf("must start with / and be 2 to %d characters, e.g. /github", maxMountPath)
	}
	segs := strings.Split(path[1:], "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsFunc(s, func(r rune) bool { return !isUnreserved(r) }) {
			return errors.New("segments must be non-empty letters, digits, '-', '.', '_' or '~' (no trailing slash, no dot segments)")
		}
	}
	if slices.Contains(reservedSegments, strings.ToLower(segs[0])) {
		return fmt.Errorf("/%s is served by the proxy itself (use UPSTREAM_MCP_URL for /mcp)", segs[0])
	}
	return nil
}

func isUnreserved(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~'
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isOrgKey(s string) bool { return strings.HasPrefix(s, "org:") && len(s) > 4 }

// upstreams reads UPSTREAMS (the JSON text) or UPSTREAMS_FILE (a file
// holding it); setting both is an error.
func (l *loader) upstreams() []Upstream {
	inline, file := l.getenv("UPSTREAMS"), l.getenv("UPSTREAMS_FILE")
	var doc []byte
	name := "UPSTREAMS"
	switch {
	case inline != "" && file != "":
		l.bad("UPSTREAMS and UPSTREAMS_FILE are both set; use one")
		return nil
	case inline != "":
		doc = []byte(inline)
	case file != "":
		name = "UPSTREAMS_FILE"
		f, err := os.Open(file)
		if err != nil {
			l.bad("UPSTREAMS_FILE: cannot read %q", file)
			return nil
		}
		defer f.Close()
		doc, err = io.ReadAll(io.LimitReader(f, maxUpstreamsDoc+1))
		if err != nil {
			l.bad("UPSTREAMS_FILE: cannot read %q", file)
			return nil
		}
	default:
		return nil
	}
	ups, problems := ParseUpstreams(doc)
	for _, pr := range problems {
		if strings.HasPrefix(pr, "[") {
			l.bad("%s%s", name, pr) // UPSTREAMS[1] /docs: ...
		} else {
			l.bad("%s: %s", name, pr)
		}
	}
	return ups
}

// Upstreams is the effective list of upstreams at their own paths, with
// the defaults (scopes, timeout) filled in.
func (c Config) Upstreams() []Upstream {
	out := slices.Clone(c.MountedUpstreams)
	for i := range out {
		if len(out[i].Scopes) == 0 {
			out[i].Scopes = c.ScopesSupported
		}
		if out[i].Timeout == 0 {
			out[i].Timeout = c.UpstreamTimeout
		}
		if out[i].Name == "" {
			out[i].Name = out[i].Path
		}
	}
	return out
}

// UpstreamResource is the protected resource (RFC 8707 / RFC 9728) of an
// upstream mounted at path.
func (c Config) UpstreamResource(path string) string { return c.BaseURL + path }

// Policy is the upstream's tool policy.
func (u Upstream) Policy() *toolpolicy.Policy {
	return toolRules(u.ToolScopes, u.ToolRoles, u.ToolPermissions)
}
