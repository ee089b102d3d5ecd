// Command worker runs cartflow's Temporal worker: the workflows and the activities, wired to
// PostgreSQL and the payment providers. It is the only place that wires everything together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/app"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// run polls the checkout task queue until ctx is canceled, then lets running tasks finish.
func run(ctx context.Context, stdout io.Writer) error {
	var cfg config.Worker
	if err := config.Load(&cfg); err != nil {
		return err
	}
	deps, err := app.Start(ctx, cfg.Common, "worker", stdout)
	if err != nil {
		return err
	}
	defer deps.Close()
	log := deps.Log

	acts := &activities.Activities{
		Store: store.New(deps.Pool),
		Gateways: map[string]billing.Gateway{
			billing.ProviderStripe: billing.NewStripe(billing.StripeConfig{
				SecretKey: cfg.StripeSecretKey, APIURL: cfg.StripeAPIURL, Timeout: cfg.StripeTimeout,
				Logger: log.With("component", "stripe"),
			}),
		},
		Logger:            log,
		HeartbeatInterval: time.Second,
	}
	w := worker.New(deps.Temporal, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		WorkerStopTimeout:                  10 * time.Second,
	})
	w.RegisterWorkflowWithOptions(workflows.Purchase, workflow.RegisterOptions{Name: workflows.PurchaseWorkflowType})
	w.RegisterActivity(acts)

	log.Info("worker polling", "task_queue", workflows.TaskQueue, "temporal", cfg.TemporalAddress)
	if err := w.Run(stopOn(ctx)); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log.Info("worker stopped")
	return nil
}

// stopOn adapts a context to the interrupt channel worker.Run expects.
func stopOn(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
