//go:build integration

package schedules_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"

	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/schedules"
	"github.com/cartflow/cartflow/workflows"
)

// The tests share one headless Temporal dev server. Tests that run in parallel give their
// schedules IDs of their own (see renamed); only TestSyncCreatesThenUpdatesInPlace uses
// cartflow's real IDs.
var temporalClient client.Client

// temporalHostPort is the dev server's address, for tests that dial a client of their own.
var temporalHostPort string

// quiet is Sync's logger in tests.
var quiet = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := stack.StartTemporal(ctx, stack.TemporalOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedules tests: start Temporal:", err)
		return 1
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "schedules tests: stop Temporal:", err)
		}
	}()
	temporalHostPort = srv.HostPort()
	temporalClient, err = client.Dial(client.Options{
		HostPort: srv.HostPort(),
		Logger:   log.NewStructuredLogger(quiet),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedules tests: dial Temporal:", err)
		return 1
	}
	defer temporalClient.Close()
	return m.Run()
}

const testTaskQueue = "cartflow-schedules-test"

func testSettings() schedules.Settings {
	return schedules.Settings{
		TaskQueue:     testTaskQueue,
		CatchupWindow: 20 * time.Minute,
		SweepInput:    workflows.RenewalSweepInput{BatchSize: 250, MaxPagesPerRun: 40},
		SummaryInput:  workflows.DailySummaryInput{OpsEmail: "ops@example.com"},
		CleanupInput: workflows.CleanupInput{
			AbandonedCheckoutAge: 24 * time.Hour, UnconfirmedUserAge: 30 * 24 * time.Hour,
			RecordRetention: 90 * 24 * time.Hour, BatchSize: 500,
		},
	}
}

// renamed gives the definitions IDs (and workflow ID prefixes) ending in suffix, so that a test
// has schedules of its own on the shared server.
func renamed(defs []schedules.Definition, suffix string) []schedules.Definition {
	out := make([]schedules.Definition, len(defs))
	for i, d := range defs {
		action := *d.Action
		d.ID += suffix
		action.ID += suffix
		d.Action = &action
		out[i] = d
	}
	return out
}

func ids(defs []schedules.Definition) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

// deleteAtEnd removes the schedules when t ends, so that a rerun in the same process
// (go test -count=2) finds the server as a first run does.
func deleteAtEnd(t *testing.T, defs []schedules.Definition) {
	t.Cleanup(func() {
		for _, d := range defs {
			if err := temporalClient.ScheduleClient().GetHandle(context.Background(), d.ID).Delete(context.Background()); err != nil {
				t.Errorf("delete schedule %s: %v", d.ID, err)
			}
		}
	})
}

func describe(t *testing.T, id string) *client.ScheduleDescription {
	t.Helper()
	desc, err := temporalClient.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background())
	if err != nil {
		t.Fatalf("describe schedule %s: %v", id, err)
	}
	return desc
}

// listed returns the IDs of the schedules on the server that satisfy keep, sorted, once the
// (eventually consistent) listing shows want; it fails if it never does.
func listed(t *testing.T, keep func(string) bool, want []string) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = nil
		it, err := temporalClient.ScheduleClient().List(context.Background(), client.ScheduleListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if keep(e.ID) {
				got = append(got, e.ID)
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) || time.Now().After(deadline) {
			return got
		}
	}
}

func results(t *testing.T, rs []schedules.Result) map[string]schedules.Result {
	t.Helper()
	m := map[string]schedules.Result{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// actionArg decodes the single argument of a described schedule's workflow action into out.
func actionArg(t *testing.T, desc *client.ScheduleDescription, out any) *client.ScheduleWorkflowAction {
	t.Helper()
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		t.Fatalf("action is %T, want a workflow action", desc.Schedule.Action)
	}
	if len(action.Args) != 1 {
		t.Fatalf("action has %d args, want 1", len(action.Args))
	}
	p, ok := action.Args[0].(*commonpb.Payload)
	if !ok {
		t.Fatalf("arg is %T, want a payload", action.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, out); err != nil {
		t.Fatal(err)
	}
	return action
}

// wantDaily fails unless every upcoming action of desc falls at hour:minute UTC.
func wantDaily(t *testing.T, desc *client.ScheduleDescription, hour, minute int) {
	t.Helper()
	if len(desc.Info.NextActionTimes) == 0 {
		t.Fatal("no upcoming actions")
	}
	for _, at := range desc.Info.NextActionTimes {
		at = at.UTC()
		if at.Hour() != hour || at.Minute() != minute || at.Second() != 0 {
			t.Fatalf("upcoming actions %v, want each at %02d:%02d UTC", desc.Info.NextActionTimes, hour, minute)
		}
	}
}

func TestSyncCreatesThenUpdatesInPlace(t *testing.T) {
	ctx := context.Background()
	s := testSettings()
	defs := schedules.Cartflow(s)
	deleteAtEnd(t, defs)
	if got, want := ids(defs), []string{workflows.CleanupScheduleID, workflows.DailySummaryScheduleID, workflows.ReconcileScheduleID,
		workflows.RenewalSweepScheduleID}; !slices.Equal(got, want) {
		t.Fatalf("Cartflow defines %v, want %v", got, want)
	}

	rs, err := schedules.Sync(ctx, temporalClient, defs, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if r := results(t, rs)[d.ID]; r.Action != schedules.Created || r.PauseChanged {
			t.Fatalf("first Sync of %s: %+v, want created", d.ID, r)
		}
	}

	wantTypes := map[string]string{
		workflows.RenewalSweepScheduleID: workflows.RenewalSweepWorkflowType,
		workflows.DailySummaryScheduleID: workflows.DailySummaryWorkflowType,
		workflows.CleanupScheduleID:      workflows.CleanupWorkflowType,
		workflows.ReconcileScheduleID:    workflows.ReconcileWorkflowType,
	}
	created := map[string]time.Time{}
	for _, d := range defs {
		desc := describe(t, d.ID)
		created[d.ID] = desc.Info.CreatedAt
		if desc.Schedule.Policy.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP || desc.Schedule.Policy.CatchupWindow != 20*time.Minute {
			t.Fatalf("%s policies %+v, want SKIP and a 20m catch-up window", d.ID, desc.Schedule.Policy)
		}
		if desc.Schedule.State.Paused || desc.Schedule.State.Note != d.Note || !strings.Contains(d.Note, ":") {
			t.Fatalf("%s state %+v, want running with the note %q", d.ID, desc.Schedule.State, d.Note)
		}
		action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		if !ok || action.Workflow != wantTypes[d.ID] || action.TaskQueue != testTaskQueue || action.ID != d.ID ||
			action.WorkflowRunTimeout <= 0 || action.WorkflowRunTimeout > 2*time.Hour {
			t.Fatalf("%s action %+v, want %s on %s with ID prefix %s and a bounded run timeout", d.ID, desc.Schedule.Action,
				wantTypes[d.ID], testTaskQueue, d.ID)
		}
	}

	// The spec and the arguments, as the server holds them.
	sweep := describe(t, workflows.RenewalSweepScheduleID)
	if iv := sweep.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != time.Hour {
		t.Fatalf("sweep intervals %+v, want every hour by default", iv)
	}
	var sweepIn workflows.RenewalSweepInput
	actionArg(t, sweep, &sweepIn)
	if sweepIn.BatchSize != 250 || sweepIn.MaxPagesPerRun != 40 {
		t.Fatalf("sweep input %+v", sweepIn)
	}
	summary := describe(t, workflows.DailySummaryScheduleID)
	wantDaily(t, summary, 6, 0)
	var summaryIn workflows.DailySummaryInput
	actionArg(t, summary, &summaryIn)
	if summaryIn.OpsEmail != "ops@example.com" {
		t.Fatalf("summary input %+v", summaryIn)
	}
	cleanup := describe(t, workflows.CleanupScheduleID)
	wantDaily(t, cleanup, 3, 30)
	var cleanupIn workflows.CleanupInput
	actionArg(t, cleanup, &cleanupIn)
	if cleanupIn != s.CleanupInput {
		t.Fatalf("cleanup input %+v, want %+v", cleanupIn, s.CleanupInput)
	}

	if iv := describe(t, workflows.ReconcileScheduleID).Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != time.Hour {
		t.Fatalf("reconciliation intervals %+v, want every hour by default", iv)
	}

	// A restart with new settings updates the same schedules in place.
	s.RenewalSweepInterval = 2 * time.Hour
	s.Paused = true
	s.CleanupCron = "15 2 * * *"
	s.CleanupInput.BatchSize = 100
	defs = schedules.Cartflow(s)
	rs, err = schedules.Sync(ctx, temporalClient, defs, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if r := results(t, rs)[d.ID]; r.Action != schedules.Updated || !r.PauseChanged {
			t.Fatalf("second Sync of %s: %+v, want updated and paused", d.ID, r)
		}
		desc := describe(t, d.ID)
		if !desc.Schedule.State.Paused || !strings.Contains(desc.Schedule.State.Note, d.Note) {
			t.Fatalf("%s state %+v, want paused with a note naming the job", d.ID, desc.Schedule.State)
		}
		if !desc.Info.CreatedAt.Equal(created[d.ID]) {
			t.Fatalf("%s created at %v, then %v: it was replaced, not updated", d.ID, created[d.ID], desc.Info.CreatedAt)
		}
	}
	if iv := describe(t, workflows.RenewalSweepScheduleID).Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != 2*time.Hour {
		t.Fatalf("sweep intervals after the update %+v, want every 2h", iv)
	}
	cleanup = describe(t, workflows.CleanupScheduleID)
	wantDaily(t, cleanup, 2, 15)
	actionArg(t, cleanup, &cleanupIn)
	if cleanupIn.BatchSize != 100 {
		t.Fatalf("cleanup input after the update %+v", cleanupIn)
	}
	want := ids(defs)
	if got := listed(t, func(id string) bool { return strings.HasPrefix(id, "cartflow-") && !strings.Contains(id, "-test-") }, want); !slices.Equal(got, want) {
		t.Fatalf("schedules on the server %v, want exactly %v", got, want)
	}

	// Already paused as configured: nothing to change, and an operator's note stays.
	h := temporalClient.ScheduleClient().GetHandle(ctx, workflows.CleanupScheduleID)
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "paused by ops: investigating"}); err != nil {
		t.Fatal(err)
	}
	rs, err = schedules.Sync(ctx, temporalClient, defs, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if r := results(t, rs)[workflows.CleanupScheduleID]; r.Action != schedules.Updated || r.PauseChanged {
		t.Fatalf("Sync of an already paused schedule: %+v", r)
	}
	if st := describe(t, workflows.CleanupScheduleID).Schedule.State; !st.Paused || st.Note != "paused by ops: investigating" {
		t.Fatalf("cleanup state %+v, want the operator's pause and note kept", st)
	}

	// The configuration wins over a pause made by hand once a worker starts configured otherwise.
	s.Paused = false
	rs, err = schedules.Sync(ctx, temporalClient, schedules.Cartflow(s), quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range schedules.Cartflow(s) {
		if r := results(t, rs)[d.ID]; !r.PauseChanged {
			t.Fatalf("unpausing Sync of %s: %+v", d.ID, r)
		}
		if st := describe(t, d.ID).Schedule.State; st.Paused || st.Note != d.Note {
			t.Fatalf("%s state %+v, want running with its note", d.ID, st)
		}
	}
}

// Two workers starting at once both sync every schedule: one creates, the other updates.
func TestSyncConcurrentStarts(t *testing.T) {
	t.Parallel()
	defs := renamed(schedules.Cartflow(testSettings()), "-test-race")
	deleteAtEnd(t, defs)
	var wg sync.WaitGroup
	var rs [2][]schedules.Result
	var errs [2]error
	start := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			<-start
			rs[i], errs[i] = schedules.Sync(context.Background(), temporalClient, defs, quiet)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Sync #%d: %v", i+1, err)
		}
	}
	for _, d := range defs {
		a, b := results(t, rs[0])[d.ID].Action, results(t, rs[1])[d.ID].Action
		if got := []string{a, b}; !slices.Contains(got, schedules.Created) || !slices.Contains(got, schedules.Updated) {
			t.Fatalf("%s: the two Syncs did %v, want one create and one update", d.ID, got)
		}
		if desc := describe(t, d.ID); desc.Schedule.State.Paused || desc.Schedule.Policy.CatchupWindow != 20*time.Minute {
			t.Fatalf("%s after the race: state %+v policy %+v", d.ID, desc.Schedule.State, desc.Schedule.Policy)
		}
	}
	want := ids(defs)
	if got := listed(t, func(id string) bool { return strings.HasSuffix(id, "-test-race") }, want); !slices.Equal(got, want) {
		t.Fatalf("schedules on the server %v, want exactly %v", got, want)
	}
}

// A paused schedule still runs when asked by hand, and a second manual run does not wait for
// the first (ALLOW_ALL). No worker serves the task queue: a started run is what counts.
func TestTriggerStartsARun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testSettings()
	s.Paused = true
	defs := renamed(schedules.Cartflow(s), "-test-trigger")
	deleteAtEnd(t, defs)
	if _, err := schedules.Sync(ctx, temporalClient, defs, quiet); err != nil {
		t.Fatal(err)
	}
	id := workflows.CleanupScheduleID + "-test-trigger"

	if err := schedules.Trigger(ctx, temporalClient, id); err != nil {
		t.Fatal(err)
	}
	first := waitStarted(t, id, 1)[0]
	if !strings.HasPrefix(first, id+"-") {
		t.Fatalf("started workflow %s, want the ID prefix %s-", first, id)
	}
	wf, err := temporalClient.DescribeWorkflowExecution(ctx, first, "")
	if err != nil {
		t.Fatal(err)
	}
	info := wf.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.CleanupWorkflowType || info.GetTaskQueue() != testTaskQueue ||
		info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("started workflow: type %s, task queue %s, status %s", info.GetType().GetName(), info.GetTaskQueue(), info.GetStatus())
	}
	var in workflows.CleanupInput
	ev, err := temporalClient.GetWorkflowHistory(ctx, first, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	started := ev.GetWorkflowExecutionStartedEventAttributes()
	if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	if in != s.CleanupInput || started.GetWorkflowRunTimeout().AsDuration() <= 0 {
		t.Fatalf("run input %+v, run timeout %v; want %+v and a bounded run", in, started.GetWorkflowRunTimeout(), s.CleanupInput)
	}

	// The scheduled workflow ID carries the time to the second; a second trigger a second
	// later gets its own run while the first is still running.
	time.Sleep(1100 * time.Millisecond)
	if err := schedules.Trigger(ctx, temporalClient, id); err != nil {
		t.Fatal(err)
	}
	started2 := waitStarted(t, id, 2)
	if started2[0] != first || started2[1] == first {
		t.Fatalf("runs %v, want %s and a second one", started2, first)
	}
	// Both run at once: the first never ends, as no worker serves it, and the second was not skipped.
	for _, wfID := range started2 {
		wf, err := temporalClient.DescribeWorkflowExecution(ctx, wfID, "")
		if err != nil || wf.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("workflow %s: %v, %v; want running", wfID, wf.GetWorkflowExecutionInfo().GetStatus(), err)
		}
	}
	if n := describe(t, id).Info.NumActionsSkippedOverlap; n != 0 {
		t.Fatalf("%d manual runs skipped for overlap, want none", n)
	}

	if err := schedules.Trigger(ctx, temporalClient, "cartflow-no-such-schedule"); err == nil {
		t.Fatal("triggering a schedule that does not exist succeeded")
	}
}

// waitStarted waits until the schedule's recent actions show n started workflows, and returns
// their IDs, oldest first. (Runs started under ALLOW_ALL are not tracked as RunningWorkflows.)
func waitStarted(t *testing.T, id string, n int) []string {
	t.Helper()
	var started []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		started = nil
		for _, a := range describe(t, id).Info.RecentActions {
			if a.StartWorkflowResult != nil {
				started = append(started, a.StartWorkflowResult.WorkflowID)
			}
		}
		if len(started) > n {
			t.Fatalf("schedule %s started %v, want %d runs", id, started, n)
		}
		if len(started) == n {
			return started
		}
	}
	t.Fatalf("schedule %s started %v after 15s, want %d runs", id, started, n)
	return nil
}
