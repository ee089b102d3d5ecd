//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The bare-engine baseline: a workflow of three no-op activities, on the same Temporal server.
const bareTaskQueue = "bench-bare-engine"

func bareWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range 3 {
		if err := workflow.ExecuteActivity(ctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func noopActivity(context.Context) error { return nil }

// benchConcurrency is how many requests are in flight at once in both phases.
const benchConcurrency = 8

// BenchmarkCheckoutVsBareEngine measures completed checkouts per second through the whole stack
// (HTTP → BFF → Update-With-Start → worker → Postgres and the Stripe layer → answer) and bare
// workflows of three no-op activities per second on the same Temporal server. The phases
// alternate in rounds so that both see the same machine load, and the ratio is reported: on a
// shared, noisy machine it is the figure to compare between runs.
func BenchmarkCheckoutVsBareEngine(b *testing.B) {
	w := worker.New(temporal, bareTaskQueue, worker.Options{})
	w.RegisterWorkflow(bareWorkflow)
	w.RegisterActivity(noopActivity)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	var run atomic.Int64
	prefix := strings.ToLower(newKey(b))
	bare := func() error {
		id := fmt.Sprintf("%s-bare-%d", prefix, run.Add(1))
		wr, err := temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: bareTaskQueue}, bareWorkflow)
		if err != nil {
			return err
		}
		return wr.Get(context.Background(), nil)
	}
	checkout := func() error {
		key := fmt.Sprintf("%s-co-%d", prefix, run.Add(1))
		code, res := postJSON(b, key, validBody(key+"@example.com", "pm_card_visa"))
		if code != http.StatusCreated || res.Status != "completed" {
			return fmt.Errorf("checkout %s: %d %s %+v", key, code, res.Status, res.Error)
		}
		return nil
	}
	// Warm both paths (connections, caches, the first workflow tasks) before measuring.
	if _, err := timed(benchConcurrency, benchConcurrency, bare); err != nil {
		b.Fatal(err)
	}
	if _, err := timed(benchConcurrency, benchConcurrency, checkout); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	var bareTime, stackTime time.Duration
	const round = 50
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		d, err := timed(n, benchConcurrency, bare)
		if err != nil {
			b.Fatal(err)
		}
		bareTime += d
		if d, err = timed(n, benchConcurrency, checkout); err != nil {
			b.Fatal(err)
		}
		stackTime += d
	}
	b.StopTimer()
	bareRate := float64(b.N) / bareTime.Seconds()
	stackRate := float64(b.N) / stackTime.Seconds()
	b.ReportMetric(stackRate, "checkouts/s")
	b.ReportMetric(bareRate, "bare-workflows/s")
	b.ReportMetric(stackRate/bareRate, "checkout/bare")
}

// timed runs n calls of f with the given concurrency and returns the wall time they took.
func timed(n, concurrency int, f func() error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range min(concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := f(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}
