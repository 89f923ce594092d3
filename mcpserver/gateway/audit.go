package gateway

import (
	"context"
	"log/slog"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
)

// audit writes the one audit line of a tools/call: who, through which
// client, which tool, the policy's decision and why, what the upstream
// answered (0: not asked) and how long the call took. Never arguments or
// results: they may hold anything the user typed or the tool returned.
func (g *Gateway) audit(ctx context.Context, x *exchange, tool string, d toolpolicy.Decision, upstreamStatus int) {
	attrs := []slog.Attr{
		slog.String("user", x.id.UserID),
		slog.String("client", x.id.ClientID),
		slog.String("tool", tool),
		slog.String("decision", string(d.Outcome)),
		slog.Int("upstream_status", upstreamStatus),
		slog.Int64("duration_ms", g.now().Sub(x.start).Milliseconds()),
		slog.String("request_id", httpx.RequestID(ctx)),
	}
	if len(d.Missing) > 0 {
		attrs = append(attrs, slog.String("reason", "missing "+strings.Join(d.Missing, " ")))
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "audit: tools/call", attrs...)
}

// auditCalls writes the audit line of every tools/call of the exchange once
// the upstream's status is known (the policy allowed them all: refused
// bodies never get this far).
func (g *Gateway) auditCalls(ctx context.Context, x *exchange, upstreamStatus int) {
	for _, m := range x.calls {
		g.audit(ctx, x, m.Name, toolpolicy.Decision{Outcome: toolpolicy.Allowed}, upstreamStatus)
	}
}
