// Command api is cartflow's Backend for Frontend: a Gin HTTP server that starts checkouts as
// Temporal workflows and serves their status from PostgreSQL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/app"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// run serves until ctx is canceled, then drains in-flight requests within the shutdown timeout.
func run(ctx context.Context, stdout io.Writer) error {
	var cfg config.API
	if err := config.Load(&cfg); err != nil {
		return err
	}
	// Before anything connects: a production process on a published secret must not start.
	if err := config.CheckProduction(&cfg); err != nil {
		return err
	}
	deps, err := app.Start(ctx, cfg.Common, "api", stdout)
	if err != nil {
		return err
	}
	defer deps.Close()
	log := deps.Log

	gin.SetMode(gin.ReleaseMode)
	reporter, err := app.NewReporter(cfg.Sentry, log)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: after the server has drained its requests.
	defer reporter.Flush(2 * time.Second)
	webhooks, err := app.WebhookVerifiers(cfg, log)
	if err != nil {
		return err
	}
	paypal, err := app.PayPalGateway(cfg.PayPal, log)
	if err != nil {
		return err
	}
	st := store.New(deps.Pool)
	s := &server{cfg: cfg, store: st, temporal: deps.Temporal, log: log, webhooks: webhooks, metrics: deps.Metrics, reporter: reporter,
		telemetry: deps.Telemetry, dataConverter: deps.DataConverter}
	if paypal != nil {
		s.paypal = &paypalOrders{gateway: paypal, store: st}
	}
	if err := validateEdge(cfg); err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.CheckoutWait + 15*time.Second,
		IdleTimeout:       60 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	log.Info("api listening", "addr", ln.Addr().String())
	// The internal listener serves /readyz and /metrics, for the load balancer and Prometheus;
	// empty INTERNAL_HTTP_ADDR serves neither.
	if cfg.InternalHTTPAddr != "" {
		writeTimeout := 15 * time.Second
		if cfg.PprofEnabled {
			// net/http/pprof refuses a profile longer than the write timeout; the bench takes 30 s ones.
			writeTimeout = 2 * time.Minute
		}
		internal := &http.Server{
			Addr:              cfg.InternalHTTPAddr,
			Handler:           s.internalRoutes(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       5 * time.Second,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       60 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		iln, err := net.Listen("tcp", cfg.InternalHTTPAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (INTERNAL_HTTP_ADDR): %w", cfg.InternalHTTPAddr, err)
		}
		servers, listeners = append(servers, internal), append(listeners, iln)
		log.Info("api internal listener", "addr", iln.Addr().String())
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	log.Info("api shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Both drain side by side, so that neither waits out the other's timeout.
	shutdownErrs := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { shutdownErrs <- srv.Shutdown(shutdownCtx) }()
	}
	for range servers {
		if err := <-shutdownErrs; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}
