package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// Tool names are part of the product's interface: the README names them and
// users' prompts and client configurations refer to them.
const (
	ToolUserInfo    = "get-user-info"
	ToolUserProfile = "get-clerk-user-profile"
	ToolGreeting    = "get-user-greeting"
)

// UserInfo is the get-user-info result.
type UserInfo struct {
	UserID         string   `json:"userId"`
	Email          string   `json:"email"`
	Name           string   `json:"name"`
	Picture        string   `json:"picture"`
	OrgID          string   `json:"org_id"`
	OrgRole        string   `json:"org_role"`
	OrgPermissions []string `json:"org_permissions"`
	Scopes         []string `json:"scopes"`
	ClientID       string   `json:"client_id"`
}

func (s *Server) addTools(m *server.MCPServer) {
	readOnly := func(title string) []mcp.ToolOption {
		return []mcp.ToolOption{mcp.WithTitleAnnotation(title), mcp.WithReadOnlyHintAnnotation(true),
			mcp.WithDestructiveHintAnnotation(false), mcp.WithIdempotentHintAnnotation(true), mcp.WithOpenWorldHintAnnotation(false)}
	}
	m.AddTool(mcp.NewTool(ToolUserInfo, append(readOnly("Signed-in user"),
		mcp.WithDescription("Who is signed in: user id, email, name, picture, organization, the scopes granted to this client and the client id, from the verified access token."))...),
		s.toolUserInfo)
	m.AddTool(mcp.NewTool(ToolUserProfile, append(readOnly("Clerk user profile"),
		mcp.WithDescription("The signed-in user's profile as Clerk returns it (Backend API user record when the server has a Clerk secret key, otherwise OpenID userinfo)."))...),
		s.toolUserProfile)
	m.AddTool(mcp.NewTool(ToolGreeting, append(readOnly("Greeting"),
		mcp.WithDescription("A friendly greeting for the signed-in user (or a guest, when the server makes it public)."),
		mcp.WithString("salutation", mcp.Description("The word to greet with instead of \"Hello\" (at most 40 characters)."), mcp.MaxLength(maxSalutation)))...),
		s.toolGreeting)
}

func identity(ctx context.Context) (*verifier.Identity, *mcp.CallToolResult) {
	id, ok := IdentityFrom(ctx)
	if !ok {
		return nil, mcp.NewToolResultError("not authenticated")
	}
	return id, nil
}

func (s *Server) toolUserInfo(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, errRes := identity(ctx)
	if errRes != nil {
		return errRes, nil
	}
	// Role and permissions are not in Clerk's OAuth tokens; the verifier
	// added them from the Backend API when a secret key is configured.
	out := UserInfo{UserID: id.UserID, Email: id.Email, Name: id.Name, Picture: id.Picture, OrgID: id.OrgID,
		OrgRole: id.OrgRole, OrgPermissions: slices.Clone(id.OrgPermissions), Scopes: id.Scopes, ClientID: id.ClientID}
	if out.OrgPermissions == nil {
		out.OrgPermissions = []string{}
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	return structured(out)
}

func (s *Server) toolUserProfile(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, errRes := identity(ctx)
	if errRes != nil {
		return errRes, nil
	}
	if s.profiles != nil && s.profiles.HasBackendAPI() {
		user, err := s.profiles.User(ctx, id.UserID)
		if err == nil {
			return structured(map[string]any{"source": "backend_api", "user": redactUser(user)})
		}
		s.log.WarnContext(ctx, "Clerk Backend API user lookup failed; falling back to userinfo", "err", err)
	}
	if id.UserInfo != nil {
		return structured(map[string]any{"source": "userinfo", "user": id.UserInfo})
	}
	if s.profiles != nil && id.ClerkToken != "" {
		if ui, err := s.profiles.UserInfo(ctx, id.ClerkToken); err == nil {
			return structured(map[string]any{"source": "userinfo", "user": ui})
		}
	}
	return mcp.NewToolResultError("Clerk's profile service is unavailable right now; try again shortly"), nil
}

// redactUser drops Backend API fields that are never the MCP client's
// business (private metadata, internal flags).
func redactUser(u map[string]any) map[string]any {
	out := make(map[string]any, len(u))
	for k, v := range u {
		switch k {
		case "private_metadata", "password_enabled", "totp_enabled", "backup_code_enabled", "two_factor_enabled",
			"external_id", "last_sign_in_at", "create_organization_enabled", "delete_self_enabled":
			continue
		}
		out[k] = v
	}
	return out
}

// maxSalutation bounds get-user-greeting's optional argument, in characters.
const maxSalutation = 40

// salutation is get-user-greeting's optional argument: "Hello" when absent,
// refused when too long or holding control characters.
func salutation(req mcp.CallToolRequest) (string, bool) {
	v := strings.TrimSpace(req.GetString("salutation", ""))
	if v == "" {
		return "Hello", true
	}
	if utf8.RuneCountInString(v) > maxSalutation || strings.ContainsFunc(v, unicode.IsControl) {
		return "", false
	}
	return v, true
}

func (s *Server) toolGreeting(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	hello, ok := salutation(req)
	if !ok {
		return mcp.NewToolResultError(fmt.Sprintf("salutation must be at most %d characters, without control characters", maxSalutation)), nil
	}
	id, ok := IdentityFrom(ctx)
	if !ok {
		// Reached without a token only when PUBLIC_TOOLS names it.
		const hello = "Hello! You are not signed in; sign in to see who you are."
		return mcp.NewToolResultStructured(map[string]any{"greeting": hello, "userId": ""}, hello), nil
	}
	name := id.Name
	if name == "" {
		name = id.Username
	}
	if name == "" {
		name = id.Email
	}
	if name == "" {
		name = id.UserID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s!", hello, name)
	if id.Email != "" && id.Email != name {
		fmt.Fprintf(&b, " You are signed in as %s.", id.Email)
	}
	if id.OrgName != "" {
		fmt.Fprintf(&b, " Your active organization is %s.", id.OrgName)
	}
	return mcp.NewToolResultStructured(map[string]any{"greeting": b.String(), "userId": id.UserID}, b.String()), nil
}

func structured(v any) (*mcp.CallToolResult, error) {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultStructured(v, string(raw)), nil
}
