// Package toolpolicy decides who may see and call an MCP tool: per-tool
// scope requirements (answered with a 403 insufficient_scope step-up),
// Clerk organisation role and permission requirements (answered with a
// JSON-RPC error; the tool is hidden from tools/list), and tools that are
// public (callable without a token). The same rules serve the built-in MCP
// endpoint, the library API (package clerkmcp) and gateway mode, so a rule
// means the same thing wherever it is written.
//
// The package is part of the public API: it has no dependencies beyond the
// standard library and its types appear in clerkmcp.
package toolpolicy

import (
	"slices"
	"sync"
)

// Rule is what a caller needs to see and call one tool. The zero Rule means
// "any signed-in user".
type Rule struct {
	// Public tools are listed to and callable by clients without a token.
	// Scopes and organisation requirements are then ignored.
	Public bool
	// Scopes must all be granted to the client (missing ones are asked for
	// with a 403 insufficient_scope step-up challenge).
	Scopes []string
	// OrgRoles: the user's active organisation role must be one of these
	// (e.g. "org:admin"). Empty means no role requirement.
	OrgRoles []string
	// OrgPermissions must all be held in the user's active organisation
	// (e.g. "org:mcp:write").
	OrgPermissions []string
}

// NeedsOrg says whether the rule depends on the caller's organisation.
func (r Rule) NeedsOrg() bool { return len(r.OrgRoles) > 0 || len(r.OrgPermissions) > 0 }

// Subject is the caller a rule is checked against. The zero Subject is an
// unauthenticated caller.
type Subject struct {
	Authenticated  bool
	Scopes         []string
	OrgID          string
	OrgRole        string
	OrgPermissions []string
}

// Outcome is why a Decision allows or refuses.
type Outcome string

// Outcomes.
const (
	Allowed           Outcome = "allowed"
	Unauthenticated   Outcome = "unauthenticated"    // 401 challenge (or the Apps SDK _meta convention)
	InsufficientScope Outcome = "insufficient_scope" // 403 step-up naming the missing scopes
	ForbiddenOrg      Outcome = "forbidden_org"      // JSON-RPC error; tool hidden from tools/list
)

// Decision is the answer for one tool and one caller.
type Decision struct {
	Outcome Outcome
	// Missing lists the scopes to ask for (InsufficientScope) or the
	// organisation roles/permissions lacking (ForbiddenOrg).
	Missing []string
}

// Allowed reports whether the call may proceed.
func (d Decision) Allowed() bool { return d.Outcome == Allowed }

// Policy holds the rules of every tool. Tools without a rule get Default.
// A nil *Policy allows any signed-in user to call every tool. Its methods
// are safe for concurrent use, so rules may be attached while the server
// already serves (a library user adding a tool late); set Default before.
type Policy struct {
	mu      sync.RWMutex
	rules   map[string]Rule
	Default Rule
}

// New returns a policy with the given per-tool rules (copied).
func New(rules map[string]Rule) *Policy {
	p := &Policy{rules: make(map[string]Rule, len(rules))}
	for name, r := range rules {
		p.rules[name] = r
	}
	return p
}

// FromScopes builds a policy from the TOOL_SCOPES form: tool → scopes.
func FromScopes(toolScopes map[string][]string) *Policy {
	p := New(nil)
	for name, sc := range toolScopes {
		p.rules[name] = Rule{Scopes: slices.Clone(sc)}
	}
	return p
}

// Set replaces the rule of one tool.
func (p *Policy) Set(tool string, r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules[tool] = r
}

// Merge adds to tool's rule: scopes and permissions are unioned, roles
// replaced when r names any, Public set when r says so.
func (p *Policy) Merge(tool string, r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.rule(tool)
	cur.Public = cur.Public || r.Public
	cur.Scopes = union(cur.Scopes, r.Scopes)
	cur.OrgPermissions = union(cur.OrgPermissions, r.OrgPermissions)
	if len(r.OrgRoles) > 0 {
		cur.OrgRoles = slices.Clone(r.OrgRoles)
	}
	p.rules[tool] = cur
}

// Rule returns the rule for tool.
func (p *Policy) Rule(tool string) Rule {
	if p == nil {
		return Rule{}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rule(tool)
}

func (p *Policy) rule(tool string) Rule {
	if r, ok := p.rules[tool]; ok {
		return r
	}
	return p.Default
}

// AnyPublic says whether some tool is public, i.e. whether an
// unauthenticated client may reach the MCP endpoint at all.
func (p *Policy) AnyPublic() bool {
	if p == nil {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.Default.Public {
		return true
	}
	for _, r := range p.rules {
		if r.Public {
			return true
		}
	}
	return false
}

// AnyOrg says whether some rule depends on the caller's organisation (so
// the role and permissions must be looked up).
func (p *Policy) AnyOrg() bool {
	if p == nil {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.Default.NeedsOrg() {
		return true
	}
	for _, r := range p.rules {
		if r.NeedsOrg() {
			return true
		}
	}
	return false
}

// DependsOnTool says whether some decision for a signed-in caller depends
// on which tool a request calls (a rule asks for scopes or an
// organisation). When it does not, an endpoint need not read the tools a
// request calls: every call of a signed-in caller is allowed.
func (p *Policy) DependsOnTool() bool {
	if p == nil {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	matters := func(r Rule) bool { return !r.Public && (len(r.Scopes) > 0 || r.NeedsOrg()) }
	if matters(p.Default) {
		return true
	}
	for _, r := range p.rules {
		if matters(r) {
			return true
		}
	}
	return false
}

// Scopes returns every scope some rule asks for, sorted, once each (for the
// scopes the authorization server must know).
func (p *Policy) Scopes() []string {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := slices.Clone(p.Default.Scopes)
	for _, r := range p.rules {
		out = union(out, r.Scopes)
	}
	slices.Sort(out)
	return out
}

// Check decides whether s may call tool. The order is the order a client
// can act on: sign in first, then step up scopes, then (nothing a client can
// do) the organisation.
func (p *Policy) Check(tool string, s Subject) Decision {
	r := p.Rule(tool)
	if r.Public {
		return Decision{Outcome: Allowed}
	}
	if !s.Authenticated {
		return Decision{Outcome: Unauthenticated, Missing: slices.Clone(r.Scopes)}
	}
	if missing := without(r.Scopes, s.Scopes); len(missing) > 0 {
		return Decision{Outcome: InsufficientScope, Missing: missing}
	}
	if missing := orgMissing(r, s); len(missing) > 0 {
		return Decision{Outcome: ForbiddenOrg, Missing: missing}
	}
	return Decision{Outcome: Allowed}
}

// Visible says whether tool appears in s's tools/list. Tools are hidden only
// for what the caller cannot fix: an organisation role or permission it
// lacks. A tool that needs another scope stays listed (the client can step
// up); a protected tool stays listed to an unauthenticated client, which the
// endpoint marks as needing sign-in.
func (p *Policy) Visible(tool string, s Subject) bool {
	r := p.Rule(tool)
	if r.Public || !s.Authenticated {
		return true
	}
	return len(orgMissing(r, s)) == 0
}

func orgMissing(r Rule, s Subject) []string {
	var missing []string
	if len(r.OrgRoles) > 0 && (s.OrgID == "" || !slices.Contains(r.OrgRoles, s.OrgRole)) {
		missing = append(missing, r.OrgRoles...)
	}
	for _, perm := range r.OrgPermissions {
		if s.OrgID == "" || !slices.Contains(s.OrgPermissions, perm) {
			missing = append(missing, perm)
		}
	}
	return missing
}

// without returns the items of list not in have, in order, once each.
func without(list, have []string) []string {
	var out []string
	for _, x := range list {
		if !slices.Contains(have, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
