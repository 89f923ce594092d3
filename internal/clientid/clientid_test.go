package clientid

import (
	"context"
	"errors"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

func TestIsMetadataDocument(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"https://claude.ai/oauth/claude-code-client-metadata", true},
		{"https://example.com/", false},
		{"https://example.com", false},
		{"http://example.com/client", false},
		{"mcp_abc", false},
		{"https://u@example.com/client", false},
		{"https://example.com/client#frag", false},
	} {
		if got := IsMetadataDocument(tc.id); got != tc.ok {
			t.Errorf("IsMetadataDocument(%q) = %v", tc.id, got)
		}
	}
}

type failing struct{}

func (failing) GetClient(context.Context, string) (store.Client, error) {
	return store.Client{}, errors.New("redis down")
}

func TestGone(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	if err := st.CreateClient(ctx, store.Client{ID: "mcp_registered"}, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		regs Registrations
		id   string
		gone bool
		err  bool
	}{
		{"registered", st, "mcp_registered", false, false},
		{"deleted or never registered", st, "mcp_unknown", true, false},
		{"metadata document: nothing to lose", st, "https://app.example/client.json", false, false},
		{"store down: an error, not gone", failing{}, "mcp_registered", false, true},
		{"store down: a metadata document needs no store", failing{}, "https://app.example/client.json", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone, err := Gone(ctx, tc.regs, tc.id)
			if gone != tc.gone || (err != nil) != tc.err {
				t.Fatalf("Gone = %v, %v; want %v, error %v", gone, err, tc.gone, tc.err)
			}
		})
	}
}
