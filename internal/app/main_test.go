package app_test

import (
	"os"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// TestMain gives the package's tests one redis-server between them
// (e2etest.Start's default); tests that stop or flush Redis start their own.
// Their key prefixes are unique, so they run in parallel.
func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }
