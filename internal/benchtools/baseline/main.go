// Command baseline serves one of the benchmark baselines of package
// benchtools on loopback for scripts/bench (never shipped):
//
//	baseline -addr 127.0.0.1:9000 -kind hello   bare net/http at any path
//	baseline -addr 127.0.0.1:9001 -kind mcp     bare mcp-go streamable HTTP at /mcp
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/benchtools"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	kind := flag.String("kind", "hello", "hello or mcp")
	flag.Parse()
	var h http.Handler
	switch *kind {
	case "hello":
		h = benchtools.Hello()
	case "mcp":
		mux := http.NewServeMux()
		mux.Handle("/mcp", benchtools.MCP(benchtools.SampleUser))
		h = mux
	default:
		fmt.Fprintf(os.Stderr, "unknown -kind %q (hello or mcp)\n", *kind)
		os.Exit(2)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
