package toolpolicy

import (
	"slices"
	"testing"
)

func TestCheckAndVisible(t *testing.T) {
	p := New(map[string]Rule{
		"open":   {Public: true, Scopes: []string{"ignored"}},
		"write":  {Scopes: []string{"mcp:write"}},
		"admin":  {OrgRoles: []string{"org:admin"}},
		"perm":   {OrgPermissions: []string{"org:mcp:write"}},
		"both":   {Scopes: []string{"mcp:write"}, OrgRoles: []string{"org:admin"}},
		"nobody": {OrgRoles: []string{"org:owner"}},
	})
	anon := Subject{}
	member := Subject{Authenticated: true, Scopes: []string{"profile"}, OrgID: "org_1", OrgRole: "org:member"}
	admin := Subject{Authenticated: true, Scopes: []string{"mcp:write"}, OrgID: "org_1", OrgRole: "org:admin",
		OrgPermissions: []string{"org:mcp:write"}}
	noOrg := Subject{Authenticated: true, Scopes: []string{"mcp:write"}, OrgRole: "org:admin", OrgPermissions: []string{"org:mcp:write"}}
	tests := []struct {
		tool    string
		s       Subject
		outcome Outcome
		missing []string
		visible bool
	}{
		{"open", anon, Allowed, nil, true},
		{"unlisted", anon, Unauthenticated, nil, true},
		{"unlisted", member, Allowed, nil, true},
		{"write", anon, Unauthenticated, []string{"mcp:write"}, true},
		{"write", member, InsufficientScope, []string{"mcp:write"}, true},
		{"write", admin, Allowed, nil, true},
		{"admin", member, ForbiddenOrg, []string{"org:admin"}, false},
		{"admin", admin, Allowed, nil, true},
		{"admin", noOrg, ForbiddenOrg, []string{"org:admin"}, false}, // a role without an active org counts for nothing
		{"perm", member, ForbiddenOrg, []string{"org:mcp:write"}, false},
		{"perm", admin, Allowed, nil, true},
		{"both", member, InsufficientScope, []string{"mcp:write"}, false}, // scopes first: the client can fix those
		{"nobody", admin, ForbiddenOrg, []string{"org:owner"}, false},
		{"admin", anon, Unauthenticated, nil, true},
	}
	for _, tc := range tests {
		d := p.Check(tc.tool, tc.s)
		if d.Outcome != tc.outcome || !slices.Equal(d.Missing, tc.missing) {
			t.Errorf("Check(%s, %+v) = %+v, want %s %v", tc.tool, tc.s, d, tc.outcome, tc.missing)
		}
		if d.Allowed() != (tc.outcome == Allowed) {
			t.Errorf("Allowed() disagrees with outcome for %s", tc.tool)
		}
		if v := p.Visible(tc.tool, tc.s); v != tc.visible {
			t.Errorf("Visible(%s, %+v) = %v, want %v", tc.tool, tc.s, v, tc.visible)
		}
	}
}

func TestNilPolicyAllowsSignedIn(t *testing.T) {
	var p *Policy
	if d := p.Check("x", Subject{Authenticated: true}); !d.Allowed() {
		t.Errorf("nil policy refused a signed-in caller: %+v", d)
	}
	if d := p.Check("x", Subject{}); d.Outcome != Unauthenticated {
		t.Errorf("nil policy let an anonymous caller in: %+v", d)
	}
	if p.AnyPublic() || p.AnyOrg() || p.Scopes() != nil {
		t.Error("nil policy claims rules")
	}
}

func TestMergeFromScopesAndSummaries(t *testing.T) {
	p := FromScopes(map[string][]string{"a": {"s1"}, "b": {"s2", "s1"}})
	p.Merge("a", Rule{Scopes: []string{"s3", "s1"}, OrgRoles: []string{"org:admin"}})
	p.Merge("c", Rule{Public: true})
	if r := p.Rule("a"); !slices.Equal(r.Scopes, []string{"s1", "s3"}) || !slices.Equal(r.OrgRoles, []string{"org:admin"}) {
		t.Errorf("merged rule = %+v", r)
	}
	if !p.AnyPublic() || !p.AnyOrg() {
		t.Error("AnyPublic/AnyOrg missed a rule")
	}
	if got := p.Scopes(); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("Scopes() = %v", got)
	}
}

func TestDependsOnTool(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *Policy
		want bool
	}{
		{"nil", nil, false},
		{"empty", New(nil), false},
		{"public only", New(map[string]Rule{"a": {Public: true, Scopes: []string{"x"}}}), false},
		{"a scope", FromScopes(map[string][]string{"a": {"x"}}), true},
		{"a role", New(map[string]Rule{"a": {OrgRoles: []string{"org:admin"}}}), true},
		{"a default", &Policy{rules: map[string]Rule{}, Default: Rule{OrgPermissions: []string{"org:p"}}}, true},
	} {
		if got := tc.p.DependsOnTool(); got != tc.want {
			t.Errorf("%s: DependsOnTool() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
