// Package loadgen drives load at the running stack for the benchmarks: closed loops (a fixed
// number of calls at a fixed concurrency), open loops (a constant arrival rate, each latency
// measured from the moment the request was due, so that queueing is not hidden), latency
// summaries, the bare-engine baseline, a shopper's calls to the BFF, and the resident memory
// and goroutines of the stack's processes.
package loadgen

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// BareTaskQueue is the task queue of the bare-engine baseline, apart from cartflow's.
const BareTaskQueue = "bench-bare-engine"

// BareWorkflow is the bare-engine baseline: three no-op activities in a row, on the same
// Temporal server as cartflow, so that a checkout's rate can be read against the engine's own.
func BareWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range 3 {
		if err := workflow.ExecuteActivity(ctx, NoopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// NoopActivity does nothing: what it costs is the engine's.
func NoopActivity(context.Context) error { return nil }

// StartBareWorker serves BareWorkflow and NoopActivity on BareTaskQueue in this process; the
// caller stops it.
func StartBareWorker(c client.Client) (worker.Worker, error) {
	w := worker.New(c, BareTaskQueue, worker.Options{})
	w.RegisterWorkflow(BareWorkflow)
	w.RegisterActivity(NoopActivity)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start the bare worker: %w", err)
	}
	return w, nil
}

// RunBare starts one BareWorkflow under id and waits for it to complete.
func RunBare(ctx context.Context, c client.Client, id string) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: BareTaskQueue}, BareWorkflow)
	if err != nil {
		return err
	}
	return run.Get(ctx, nil)
}
