// Command orgadmin serves a tool only administrators of the user's active
// Clerk organisation may see and call, beside one every signed-in user may
// call. Members do not find the admin tool in tools/list, and calling it
// anyway is a JSON-RPC error that says what is missing.
//
// Organisation roles come from Clerk's Backend API and the organisation
// from the token, so it needs CLERK_SECRET_KEY and user:org:read in
// CLERK_SCOPES besides the variables of `clerk-mcp-proxy serve`:
//
//	CLERK_SCOPES="openid profile email offline_access user:org:read" go run ./examples/orgadmin
package main

import (
	"context"
	"log"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
)

func main() {
	if err := clerkmcp.Run(context.Background(), clerkmcp.Options{NoDemoTools: true}, addTools); err != nil {
		log.Fatal(err)
	}
}

// adminRole is Clerk's built-in organisation admin role.
const adminRole = "org:admin"

func addTools(srv *clerkmcp.Server) error {
	membership := mcp.NewTool("my-organization", mcp.WithDescription("Your active organisation and your role in it"),
		mcp.WithReadOnlyHintAnnotation(true))
	err := srv.AddTool(membership, func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := clerkmcp.IdentityFrom(ctx)
		return mcp.NewToolResultStructuredOnly(map[string]any{"org_id": id.OrgID, "org_name": id.OrgName, "role": id.OrgRole,
			"permissions": id.OrgPermissions}), nil
	}, clerkmcp.Rule{})
	if err != nil {
		return err
	}
	audit := mcp.NewTool("org-audit", mcp.WithDescription("An administrators-only report on the active organisation"),
		mcp.WithReadOnlyHintAnnotation(true))
	return srv.AddTool(audit, func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := clerkmcp.IdentityFrom(ctx)
		return mcp.NewToolResultStructuredOnly(map[string]any{"org_id": id.OrgID, "requested_by": id.UserID,
			"report": "all members accounted for"}), nil
	}, clerkmcp.Rule{OrgRoles: []string{adminRole}})
}
