package runtime

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// DebugListenEnv names the environment variable that, when set to a
// host:port, makes Run serve Go's profiler (net/http/pprof) there: CPU,
// heap and goroutine profiles of a runtime under load, for `go tool
// pprof`. It is off by default and has no authentication: bind it to
// loopback.
const DebugListenEnv = "RECPOL_PPROF_LISTEN"

// serveDebug serves the profiler on addr until ctx is done.
func (r *Runtime) serveDebug(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.log.Warn("profiler listening (no authentication)", "addr", ln.Addr().String(), "env", DebugListenEnv)
	return serveUntil(ctx, srv, ln)
}

func debugAddr() string { return os.Getenv(DebugListenEnv) }
