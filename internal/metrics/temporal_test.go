//go:build integration

package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/metrics"
)

const (
	metricsTaskQueue    = "cartflow-metrics-test"
	metricsWorkflowType = "MetricsProbe"
)

func probeWorkflow(ctx workflow.Context, in string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, "MetricsProbeActivity", in).Get(ctx, &out)
	return out, err
}

func probeActivity(_ context.Context, in string) (string, error) { return strings.ToUpper(in), nil }

// TestTemporalMetricsReachTheScrape runs a workflow with an activity through a real
// Temporal dev server, with the client and worker reporting into a Registry, and
// checks that the SDK's metrics show up in the /metrics scrape with their workflow
// and activity labels.
func TestTemporalMetricsReachTheScrape(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, err := stack.StartTemporal(ctx, stack.TemporalOptions{})
	if err != nil {
		t.Fatalf("start Temporal: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop Temporal: %v", err)
		}
	})

	reg := metrics.New()
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("close registry: %v", err)
		}
	})
	if reg.TemporalMetricsHandler() != reg.TemporalMetricsHandler() {
		t.Fatal("TemporalMetricsHandler returned two different handlers; the second would fail to register")
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:       srv.HostPort(),
		Logger:         log.NewStructuredLogger(quiet),
		MetricsHandler: reg.TemporalMetricsHandler(),
	})
	if err != nil {
		t.Fatalf("dial Temporal: %v", err)
	}
	defer c.Close()

	w := worker.New(c, metricsTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(probeWorkflow, workflow.RegisterOptions{Name: metricsWorkflowType})
	w.RegisterActivityWithOptions(probeActivity, activity.RegisterOptions{Name: "MetricsProbeActivity"})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "metrics-probe", TaskQueue: metricsTaskQueue}, metricsWorkflowType, "ok")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "OK" {
		t.Fatalf("workflow result %q, %v; want OK", out, err)
	}

	// The SDK's tally scope flushes into the registry once a second.
	want := map[string]string{
		"temporal_request_total":                            `operation="StartWorkflowExecution"`,
		"temporal_workflow_completed_total":                 `workflow_type="` + metricsWorkflowType + `"`,
		"temporal_activity_execution_latency_seconds_count": `activity_type="MetricsProbeActivity"`,
	}
	h := reg.Handler()
	deadline := time.Now().Add(15 * time.Second)
	for {
		missing := missingSeries(scrape(t, h), want)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Temporal SDK metrics never reached the scrape: %v", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// missingSeries returns the metric names in want that have no sample with a
// value of at least 1 carrying the wanted label.
func missingSeries(got map[string]float64, want map[string]string) []string {
	var missing []string
	for name, label := range want {
		found := false
		for series, v := range got {
			if strings.HasPrefix(series, name+"{") && strings.Contains(series, label) && v >= 1 {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, name+"{"+label+"}")
		}
	}
	return missing
}
