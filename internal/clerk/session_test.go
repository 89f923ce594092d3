package clerk

import "testing"

func TestProfileFromUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		user map[string]any
		want UserInfo
	}{
		{"full", map[string]any{"id": "user_1", "first_name": "Ada", "last_name": "L", "image_url": "https://img/a", "username": "ada",
			"primary_email_address_id": "idn_2", "email_addresses": []any{
				map[string]any{"id": "idn_1", "email_address": "old@example.com"},
				map[string]any{"id": "idn_2", "email_address": "ada@example.com", "verification": map[string]any{"status": "verified"}}}},
			UserInfo{Subject: "user_1", UserID: "user_1", GivenName: "Ada", FamilyName: "L", Name: "Ada L", Picture: "https://img/a",
				PreferredUsername: "ada", Email: "ada@example.com", EmailVerified: true}},
		{"no primary email", map[string]any{"id": "user_1", "email_addresses": []any{map[string]any{"id": "", "email_address": "x@example.com"}}},
			UserInfo{Subject: "user_1", UserID: "user_1"}},
		{"wrong types", map[string]any{"id": 7, "first_name": []any{}, "email_addresses": "nope"}, UserInfo{}},
		{"nil", nil, UserInfo{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProfileFromUser(tc.user); got.Subject != tc.want.Subject || got.Name != tc.want.Name || got.Email != tc.want.Email ||
				got.EmailVerified != tc.want.EmailVerified || got.Picture != tc.want.Picture || got.PreferredUsername != tc.want.PreferredUsername {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
