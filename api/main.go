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
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/errorreport"
	"github.com/cartflow/cartflow/internal/store"
)

// webhookVerifiers builds a verifier for each provider whose webhook credentials are configured;
// the others have no webhook endpoint.
func webhookVerifiers(cfg config.API) (map[string]billing.WebhookVerifier, error) {
	v := map[string]billing.WebhookVerifier{}
	if cfg.PayPal.ClientID != "" && cfg.PayPal.WebhookID != "" {
		// PayPal verifies its own signatures: the BFF asks its API, with the app's credentials.
		pp, err := billing.NewPayPal(billing.PayPalConfig{ClientID: cfg.PayPal.ClientID, Secret: cfg.PayPal.Secret,
			APIURL: cfg.PayPal.APIURL, Timeout: cfg.PayPal.Timeout, WebhookID: cfg.PayPal.WebhookID})
		if err != nil {
			return nil, err
		}
		v[billing.ProviderPayPal] = billing.NewPayPalWebhookVerifier(pp, cfg.PayPal.WebhookID)
	}
	if cfg.Stripe.WebhookSecret != "" {
		v[billing.ProviderStripe] = billing.NewStripeWebhookVerifier(cfg.Stripe.WebhookSecret)
	}
	if cfg.Braintree.PublicKey != "" {
		v[billing.ProviderBraintree] = billing.NewBraintreeWebhookVerifier(cfg.Braintree.PublicKey, cfg.Braintree.PrivateKey, time.Now)
	}
	return v, nil
}

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
	deps, err := app.Start(ctx, cfg.Common, "api", stdout)
	if err != nil {
		return err
	}
	defer deps.Close()
	log := deps.Log

	gin.SetMode(gin.ReleaseMode)
	reporter, err := errorreport.New(errorreport.Config{DSN: cfg.Sentry.DSN, Release: cfg.Sentry.Release,
		Environment: cfg.Sentry.Environment, Logger: log.With("component", "sentry")})
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: after the server has drained its requests.
	defer reporter.Flush(2 * time.Second)
	webhooks, err := webhookVerifiers(cfg)
	if err != nil {
		return err
	}
	s := &server{cfg: cfg, store: store.New(deps.Pool), temporal: deps.Temporal, log: log, webhooks: webhooks, metrics: deps.Metrics, reporter: reporter,
		telemetry: deps.Telemetry}
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
	log.Info("api listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("api shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
