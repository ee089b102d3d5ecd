// Command stripefake serves cartflow's Stripe test-mode layer in front of a stripe-mock, so that
// Stripe's documented test payment methods behave as documented (see internal/dev/fake/stripe).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stripefake:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stripefake", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:12113", "address to serve on")
	upstream := fs.String("upstream", "http://127.0.0.1:12111", "stripe-mock's base URL")
	webhookURL := fs.String("webhook-url", "", "where to POST signed Stripe events, such as the BFF's /webhooks/stripe; empty sends none")
	webhookSecret := fs.String("webhook-secret", "", "whsec_… to sign events with (default $STRIPE_WEBHOOK_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *webhookSecret == "" {
		// The BFF reads the same variable; taking it from the environment keeps the secret out of
		// the process list (and out of -h, which prints flag defaults).
		*webhookSecret = os.Getenv("STRIPE_WEBHOOK_SECRET")
	}
	log := logging.New(os.Stdout, "info", "stripefake")
	proxy, err := stripefake.New(*upstream, stripefake.WithLogger(log))
	if err != nil {
		return err
	}
	if err := proxy.SetWebhook(*webhookURL, *webhookSecret); err != nil {
		return err
	}
	srv := &http.Server{Addr: *listen, Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("stripe test-mode layer listening", "addr", *listen, "upstream", *upstream, "webhook_url", *webhookURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
