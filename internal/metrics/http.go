package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// unmatched is the route label of requests no route matched. The raw path is
// never used as a label: scanners would turn it into unbounded series.
const unmatched = "unmatched"

// shutdownTimeout bounds how long Serve waits for in-flight scrapes on shutdown.
const shutdownTimeout = 5 * time.Second

// Gin returns middleware that times every request and counts it by method,
// route template (c.FullPath()) and status. Register it first with
// engine.Use so it also sees 404s and requests aborted by later middleware.
// On a nil Registry it only passes the request on.
func (r *Registry) Gin() gin.HandlerFunc {
	if r == nil {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = unmatched
		}
		labels := []string{bounded(c.Request.Method, httpMethods), route, strconv.Itoa(c.Writer.Status())}
		r.httpDuration.WithLabelValues(labels...).Observe(time.Since(start).Seconds())
		r.httpRequests.WithLabelValues(labels...).Inc()
	}
}

// Serve serves h on addr (e.g. ":9090", the worker's METRICS_ADDR) until ctx
// is done, then shuts the server down gracefully. It returns once the listener
// is closed: nil after a shutdown caused by ctx, the error otherwise. A bind
// failure is returned at once, so a misconfigured address fails start-up.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
	}
	log.Info("metrics listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	// ctx is already done; the shutdown needs a context of its own.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// Profiler serves Go's profiler (net/http/pprof) under /debug/pprof/, for an internal listener
// only: its pages reveal the code, and a CPU profile costs CPU while it runs. Importing
// net/http/pprof also registers it on http.DefaultServeMux, which neither binary serves.
func Profiler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
