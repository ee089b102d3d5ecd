// Command dev runs the whole of cartflow locally for `make dev`: PostgreSQL (unless DATABASE_URL
// is set), the Temporal dev server with its Web UI, stripe-mock behind the Stripe test-mode
// layer, the PayPal and Braintree doubles, Mailpit, the worker and the BFF. State lives under
// .data/, so a restart keeps it (except the doubles', which live in memory).
// Ctrl-C stops everything it started.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/cartflow/cartflow/internal/dev/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

// Fixed ports, so that the URLs in the README work; only loopback is ever bound.
const (
	postgresPort    = 54329
	temporalPort    = 7233
	temporalUIPort  = 8233
	stripeMockPort  = 12111
	stripeProxyPort = 12113
	braintreePort   = 12115
	paypalPort      = 12117
	mailpitSMTPPort = 1025
	mailpitUIPort   = 8025
	apiPort         = 8080
	// apiInternalPort is the BFF's /readyz and /metrics, INTERNAL_HTTP_ADDR's default port.
	apiInternalPort = 9091
	// workerPort is the worker's internal listener, METRICS_ADDR's default: /metrics and the
	// codec endpoint, whose URL the UI's codec settings keep.
	workerPort = 9090
	// storefrontPort is the storefront's, http://localhost:3000.
	storefrontPort = 3000
)

func run(ctx context.Context, stdout io.Writer) error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, ".data")
	fmt.Fprintf(stdout, "Starting cartflow (state in %s, logs in %s)...\n", dir, filepath.Join(dir, "logs"))
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	opts := stack.DevOptions(dir)
	opts.PostgresPort, opts.TemporalPort, opts.TemporalUIPort = postgresPort, temporalPort, temporalUIPort
	opts.StripeMockPort, opts.StripeProxyPort, opts.BraintreePort, opts.PayPalPort = stripeMockPort, stripeProxyPort, braintreePort, paypalPort
	opts.APIPort, opts.APIInternalPort, opts.WorkerMetricsPort, opts.StorefrontPort = apiPort, apiInternalPort, workerPort, storefrontPort
	opts.MailpitSMTPPort, opts.MailpitUIPort = mailpitSMTPPort, mailpitUIPort
	running, err := stack.Start(startCtx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "\nStopping cartflow...")
		running.Stop()
		fmt.Fprintln(stdout, "Stopped.")
	}()

	fmt.Fprintln(stdout, "Starting the storefront (npm ci when web/package-lock.json changed, then next dev)...")
	if err := running.StartWeb(startCtx, stack.WebDev); err != nil {
		return err
	}

	urls := running.Ports()
	names := make([]string, 0, len(urls))
	for name := range urls {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(stdout, "\ncartflow is running:")
	for _, name := range names {
		fmt.Fprintf(stdout, "  %-26s %s\n", name, urls[name])
	}
	fmt.Fprintf(stdout, "\nShop at %s (its first page compiles on first visit). Ctrl-C stops everything.\n", running.StorefrontURL)

	select {
	case <-ctx.Done():
		return nil
	case <-running.Worker().Done():
		return fmt.Errorf("the worker exited; see %s", filepath.Join(dir, "logs", "worker.log"))
	case <-running.API().Done():
		return fmt.Errorf("the BFF exited; see %s", filepath.Join(dir, "logs", "api.log"))
	case <-running.Web().Done():
		return fmt.Errorf("the storefront exited; see %s", filepath.Join(dir, "logs", "web.log"))
	}
}
