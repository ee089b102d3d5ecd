// Command worker runs cartflow's Temporal worker: the workflows and the activities, wired to
// PostgreSQL and the payment providers. It is the only place that wires everything together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/analytics"
	"github.com/cartflow/cartflow/internal/app"
	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/schedules"
	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, codecAuthorizer); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// codecAuthorizer lets only staff keys with the ops scope use the codec endpoint: decoding a
// payload reads a customer's personal data. A refused key is refused; a database that cannot
// say is "unavailable" (503), never a pass.
func codecAuthorizer(d *app.Deps) (codec.Authorizer, error) {
	checker := staffkey.NewChecker(store.New(d.Pool))
	return codec.KeyAuthorizer(func(ctx context.Context, key string) error {
		_, err := checker.Check(ctx, key, staffkey.ScopeOps)
		if err != nil && !errors.Is(err, staffkey.ErrUnauthenticated) && !errors.Is(err, staffkey.ErrForbidden) {
			return fmt.Errorf("%w: %v", codec.ErrAuthorizerUnavailable, err)
		}
		return err
	}), nil
}

// run polls cartflow's task queue until ctx is canceled, then lets running tasks finish.
// newAuthorizer builds, from the process's clients, who may call the codec endpoint.
func run(ctx context.Context, stdout io.Writer, newAuthorizer func(*app.Deps) (codec.Authorizer, error)) error {
	var cfg config.Worker
	if err := config.Load(&cfg); err != nil {
		return err
	}
	// Before anything connects: a production process on a published secret must not start.
	if err := config.CheckProduction(&cfg); err != nil {
		return err
	}
	deps, err := app.Start(ctx, cfg.Common, "worker", stdout)
	if err != nil {
		return err
	}
	defer deps.Close()
	log := deps.Log

	if cfg.MetricsAddr != "" {
		auth, err := newAuthorizer(deps)
		if err != nil {
			return fmt.Errorf("codec endpoint: %w", err)
		}
		// The internal listener: Prometheus, and the codec endpoint the Temporal Web UI decodes through.
		mux := http.NewServeMux()
		mux.Handle("/metrics", deps.Metrics.Handler())
		mux.Handle("/codec/", codec.NewServer(deps.Codec, auth, cfg.CodecCORSOrigins, log.With("component", "codec")))
		if cfg.PprofEnabled {
			mux.Handle("/debug/pprof/", metrics.Profiler())
		}
		go func() {
			if err := metrics.Serve(ctx, cfg.MetricsAddr, mux, log); err != nil {
				log.Error("metrics listener", "error", err)
			}
		}()
	}
	// Funnel analytics are best-effort: events queued when the worker stops get five seconds to go out.
	mp, err := analytics.New(analytics.Config{Token: cfg.Mixpanel.Token, APIURL: cfg.Mixpanel.APIURL,
		BatchSize: cfg.Mixpanel.BatchSize, FlushInterval: cfg.Mixpanel.FlushInterval, Logger: log.With("component", "mixpanel")})
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mp.Close(closeCtx)
	}()
	gws, err := app.Gateways(cfg, log)
	if err != nil {
		return err
	}
	// Business outcomes (a decline, a refused change, a reused idempotency key) are answers, not errors.
	expected := append(slices.Clone(activities.BusinessOutcomes), workflows.ErrTypeIdempotencyKeyReused)
	reporter, err := app.NewReporter(cfg.Sentry, log, expected...)
	if err != nil {
		return err
	}
	defer reporter.Flush(5 * time.Second)
	acts := &activities.Activities{
		Store:    store.New(deps.Pool),
		Gateways: gws,
		// A gateway that cannot list its payments is not reconciled; its webhooks still find orphans.
		Reconcilers: app.Reconcilers(gws),
		Mailer: mailer.New(mailer.Config{
			Addr: cfg.SMTP.Addr, From: cfg.SMTP.From, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password,
			Timeout: cfg.SMTP.Timeout,
		}),
		Temporal:          deps.Temporal,
		Analytics:         mp,
		Metrics:           deps.Metrics,
		Reporter:          reporter,
		Logger:            log,
		HeartbeatInterval: time.Second,
		Links:             activities.Links{StorefrontURL: cfg.StorefrontURL},
		Declines: activities.DeclineLimits{Window: cfg.Declines.Window, PerIP: cfg.Declines.PerIP, PerEmail: cfg.Declines.PerEmail,
			PerFingerprint: cfg.Declines.PerFingerprint},
	}
	// Two workers in one process, sharing its Temporal client and sticky cache: one for the
	// customers' work and one for the scheduled jobs, each on its own task queue, so that a job
	// never queues behind the renewals or checkouts it starts or competes with
	// (workflows.JobsTaskQueue). Both register everything: a job started by hand on TaskQueue,
	// or a run from before the split, still finds a worker.
	newWorker := func(taskQueue string) worker.Worker {
		w := worker.New(deps.Temporal, taskQueue, worker.Options{
			Interceptors:                       []interceptor.WorkerInterceptor{reporter.WorkerInterceptor()},
			MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
			WorkerStopTimeout:                  10 * time.Second,
		})
		workflows.Register(w)
		w.RegisterActivity(acts)
		return w
	}
	w, jobs := newWorker(workflows.TaskQueue), newWorker(workflows.JobsTaskQueue)

	if err := ensureSearchAttributes(ctx, deps.Temporal, cfg.Temporal.Namespace); err != nil {
		return err
	}
	// Schedules are written before polling starts, so that a worker that cannot reach them fails loudly.
	if _, err := schedules.Sync(ctx, deps.Temporal, schedules.Cartflow(scheduleSettings(cfg)), log); err != nil {
		return fmt.Errorf("schedules: %w", err)
	}

	// The relay sends what completed orders queued (their receipts). It stops with the worker, after
	// the worker's last activity: a message it leaves is found by the next relay.
	relay := activities.NewOutboxRelay(acts)
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		relay.Run(relayCtx)
	}()
	defer func() {
		stopRelay()
		<-relayDone
	}()

	if err := jobs.Start(); err != nil {
		return fmt.Errorf("jobs worker: %w", err)
	}
	defer jobs.Stop()
	log.Info("worker polling", "task_queue", workflows.TaskQueue, "jobs_task_queue", workflows.JobsTaskQueue,
		"temporal", cfg.Temporal.Address)
	if err := w.Run(stopOn(ctx)); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log.Info("worker stopped")
	return nil
}

// ensureSearchAttributes checks that the namespace has cartflow's custom search attributes with
// their types, and adds the missing ones, so that a checkout never fails to index itself and ops
// can search by customer, order, status and amount. A name taken with another type is an error
// for ops to resolve.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, want := range workflows.SearchAttributes {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = want
		case got != want:
			return fmt.Errorf("search attribute %s is %s in namespace %s, cartflow needs %s", name, got, namespace, want)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("add search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
	}
	return nil
}

// scheduleSettings turns the worker's configuration into the schedules and their jobs' inputs.
func scheduleSettings(cfg config.Worker) schedules.Settings {
	sc := cfg.Schedules
	return schedules.Settings{
		TaskQueue: workflows.JobsTaskQueue, RenewalSweepInterval: sc.RenewalSweepInterval, SummaryCron: sc.SummaryCron,
		CleanupCron: sc.CleanupCron, CatchupWindow: sc.CatchupWindow, Paused: sc.Paused,
		SweepInput: workflows.RenewalSweepInput{
			BatchSize: sc.RenewalBatchSize, Dunning: workflows.DunningPolicy{RetryAfter: sc.DunningRetryAfter},
			TrialReminderBefore: sc.TrialReminderBefore,
		},
		SummaryInput: workflows.DailySummaryInput{OpsEmail: cfg.OpsEmail},
		CleanupInput: workflows.CleanupInput{
			AbandonedCheckoutAge: sc.AbandonedCheckoutAge, UnconfirmedUserAge: sc.UnconfirmedUserAge,
			RecordRetention: sc.RecordRetention, BatchSize: sc.CleanupBatchSize,
		},
	}
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
