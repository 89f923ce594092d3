package httpx

import (
	"net/http"
	"net/http/pprof"
)

// Pprof serves Go's runtime profiles (/debug/pprof/...) for PPROF_ADDR, a
// listener of its own that is off by default: profiling the running binary
// under load (`go tool pprof http://127.0.0.1:6060/debug/pprof/profile`)
// without exposing the profiles on the public port. Its own mux, so nothing
// registered on http.DefaultServeMux is served.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
