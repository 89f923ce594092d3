// The peer scripts/bench-peer measures clerk-mcp-proxy against: fastmcp's
// OAuthProxy (generic OAuth provider, its defaults: in-memory encrypted
// token storage, token swap to its own JWTs, consent screen) in front of the
// fake Clerk, with one tool answering what our get-user-info answers.
// Usage: PORT=... CLERK=http://127.0.0.1:... CLIENT_ID=... CLIENT_SECRET=... node server.mjs
import { FastMCP, OAuthProvider, requireAuth } from "fastmcp";

const { PORT, CLERK, CLIENT_ID, CLIENT_SECRET } = process.env;
const baseUrl = `http://127.0.0.1:${PORT}`;
// The fake Clerk's preselected user as our get-user-info shows it: a
// constant, since our proxy answers from its caches too, so neither side
// makes a per-call upstream request.
const user = {
  userId: "user_2aliceExampleSeededUser0001", email: "alice@example.com", name: "Alice Example",
  picture: "https://img.clerk.com/alice.png", org_id: "", org_role: "", org_permissions: [],
  scopes: ["openid", "profile", "email"], client_id: "mcp_6tlPZxTOe1DdqRZoCrx75w",
};
const text = JSON.stringify(user, null, 2);

const server = new FastMCP({
  name: "fastmcp-peer", version: "1.0.0",
  auth: new OAuthProvider({
    baseUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
    authorizationEndpoint: `${CLERK}/oauth/authorize`, tokenEndpoint: `${CLERK}/oauth/token`,
    scopes: ["openid", "profile", "email", "offline_access"],
    allowedRedirectUriPatterns: ["http://127.0.0.1:*"],
  }),
});
server.addTool({
  name: "get-user-info", description: "Who is signed in.", canAccess: requireAuth,
  execute: async () => text,
});
await server.start({ transportType: "httpStream", httpStream: { host: "127.0.0.1", port: Number(PORT), enableJsonResponse: true } });
