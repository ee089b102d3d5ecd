package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// fakeEngine stands in for the Temporal server's workflow-ID rule in sweep tests: an ID that was
// ever used is refused, whichever sweep asks.
type fakeEngine struct {
	mu      sync.Mutex
	started map[string]RenewalInput
}

func (e *fakeEngine) start(in activities.StartWorkflowsInput) activities.StartWorkflowsResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res activities.StartWorkflowsResult
	for _, s := range in.Starts {
		if _, ok := e.started[s.ID]; ok {
			res.AlreadyStarted++
			continue
		}
		// The argument crossed a data converter, so it arrives as JSON-shaped values.
		var arg RenewalInput
		raw, _ := json.Marshal(s.Arg)
		_ = json.Unmarshal(raw, &arg)
		e.started[s.ID] = arg
		res.Started++
	}
	return res
}

// dueSet is n due subscriptions in index order.
func dueSet(n int) []activities.DueSubscription {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	out := make([]activities.DueSubscription, n)
	for i := range out {
		out[i] = activities.DueSubscription{ID: fmt.Sprintf("sub-%04d", i), PeriodEnd: base.Add(time.Duration(i/3) * time.Minute)}
	}
	return out
}

// newSweepEnv runs sweeps over due with engine; each page query answers from the keyset cursor.
func newSweepEnv(t *testing.T, due []activities.DueSubscription, engine *fakeEngine, pages *int) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(RenewalSweep, workflow.RegisterOptions{Name: RenewalSweepWorkflowType})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.DueSubscriptions, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.DuePage) ([]activities.DueSubscription, error) {
		*pages++
		var page []activities.DueSubscription
		for _, d := range due {
			after := d.PeriodEnd.After(p.AfterEnd) || (d.PeriodEnd.Equal(p.AfterEnd) && d.ID > p.AfterID)
			if after && len(page) < p.Limit {
				page = append(page, d)
			}
		}
		return page, nil
	})
	env.OnActivity(a.StartWorkflows, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StartWorkflowsInput) (activities.StartWorkflowsResult, error) {
		if in.WorkflowType != RenewalWorkflowType {
			t.Errorf("started %s", in.WorkflowType)
		}
		return engine.start(in), nil
	})
	env.OnActivity(a.SendTrialReminders, mock.Anything, mock.Anything).Return(0, nil)
	return env
}

func TestSweepsThatOverlapStartEachRenewalOnce(t *testing.T) {
	due := dueSet(25)
	engine := &fakeEngine{started: map[string]RenewalInput{}}
	in := RenewalSweepInput{AsOf: time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), BatchSize: 10, MaxPagesPerRun: 100, Dunning: testLadder}

	var progress [2]SweepProgress
	for i := range progress {
		pages := 0
		env := newSweepEnv(t, due, engine, &pages)
		env.ExecuteWorkflow(RenewalSweep, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if err := env.GetWorkflowResult(&progress[i]); err != nil {
			t.Fatal(err)
		}
		if pages != 3 {
			t.Fatalf("sweep %d read %d pages, want 3", i, pages)
		}
	}
	if progress[0].Due != 25 || progress[0].Started != 25 || progress[0].AlreadyStarted != 0 {
		t.Fatalf("first sweep %+v", progress[0])
	}
	if progress[1].Due != 25 || progress[1].Started != 0 || progress[1].AlreadyStarted != 25 {
		t.Fatalf("overlapping sweep %+v", progress[1])
	}
	if len(engine.started) != 25 {
		t.Fatalf("%d renewals started", len(engine.started))
	}
	for _, d := range due {
		got, ok := engine.started[RenewalWorkflowID(d.ID, d.PeriodEnd)]
		if !ok || got.SubscriptionID != d.ID || !got.PeriodEnd.Equal(d.PeriodEnd) || len(got.Dunning.RetryAfter) != 4 {
			t.Fatalf("renewal of %s: %+v", d.ID, got)
		}
	}
}

func TestSweepContinuesAsNewWithItsCursor(t *testing.T) {
	due := dueSet(25)
	engine := &fakeEngine{started: map[string]RenewalInput{}}
	pages := 0
	env := newSweepEnv(t, due, engine, &pages)
	asOf := time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	env.ExecuteWorkflow(RenewalSweep, RenewalSweepInput{AsOf: asOf, BatchSize: 10, MaxPagesPerRun: 2})

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next RenewalSweepInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Cursor == nil || next.Cursor.SubscriptionID != due[19].ID || !next.AsOf.Equal(asOf) ||
		next.Progress.Started != 20 || next.Progress.ContinuedAsNew != 1 {
		t.Fatalf("continued with %+v (cursor %+v)", next, next.Cursor)
	}
}
