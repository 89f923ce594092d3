package config

import (
	"maps"
	"strings"
	"testing"
)

// TestTryPage: TRY_PAGE is off in serve unless set, on in dev unless the
// page could not work there (clerk mode, DCR off), and refused where it
// cannot work when asked for.
func TestTryPage(t *testing.T) {
	with := func(base map[string]string, kv ...string) map[string]string {
		e := maps.Clone(base)
		if e == nil {
			e = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		mode    Mode
		env     map[string]string
		want    bool
		problem string // a substring of the error; "" when Load succeeds
	}{
		{"serve: off by default", ModeServe, good(), false, ""},
		{"serve: on when asked", ModeServe, with(good(), "TRY_PAGE", "true"), true, ""},
		{"serve: app mode may have it", ModeServe, with(good(), "TRY_PAGE", "true", "AUTH_MODE", "app", "APP_URL", "https://app.example.com", "CLERK_SECRET_KEY", "sk_x"), true, ""},
		{"serve: not in clerk mode", ModeServe, with(good(), "TRY_PAGE", "true", "AUTH_MODE", "clerk"), false, "TRY_PAGE does not apply with AUTH_MODE=clerk"},
		{"serve: not without DCR", ModeServe, with(good(), "TRY_PAGE", "true", "DCR_ENABLED", "false"), false, "TRY_PAGE needs DCR_ENABLED=true"},
		{"dev: on by default", ModeDev, nil, true, ""},
		{"dev: off when asked", ModeDev, with(nil, "TRY_PAGE", "false"), false, ""},
		{"dev: clerk mode leaves it off", ModeDev, with(nil, "AUTH_MODE", "clerk"), false, ""},
		{"dev: DCR off leaves it off", ModeDev, with(nil, "DCR_ENABLED", "false"), false, ""},
		{"dev: asked for in clerk mode", ModeDev, with(nil, "AUTH_MODE", "clerk", "TRY_PAGE", "true"), false, "TRY_PAGE does not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env), tc.mode)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err %v, want one containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.TryPage != tc.want || c.Summary()["try_page"] != tc.want {
				t.Errorf("TryPage %v (summary %v), want %v", c.TryPage, c.Summary()["try_page"], tc.want)
			}
		})
	}
}
