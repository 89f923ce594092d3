package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw string
		ok  bool
	}{
		{"a=1&b=2", true},
		{"a=1&a=2", false}, // RFC 6749 §3.1: no repeats
		{"state=ab%0d%0aSet-Cookie:x", false},
		{"state=%ff%fe", false},
		{"a=" + strings.Repeat("x", 5000), false},
		{"%ff=1", false},
	}
	for _, tc := range tests {
		v, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		if _, oerr := checkParams(v); (oerr == nil) != tc.ok {
			t.Errorf("checkParams(%q) = %v, want ok=%v", tc.raw, oerr, tc.ok)
		}
	}
}

func FuzzCheckParams(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "a=1&a=1", "state=%0d%0a", "x=%ff", "code=abc&code_verifier=def"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, oerr := checkParams(v)
		if oerr == nil {
			for name, vals := range p.v {
				if len(vals) != 1 || !validParamText(name) || !validParamText(vals[0]) {
					t.Fatalf("accepted %q", raw)
				}
			}
		}
	})
}
