package workflows

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// cleanupStart is the test clock's start; the cleanup's AsOf comes from it.
var cleanupStart = time.Date(2025, 3, 10, 3, 30, 0, 0, time.UTC)

var cleanupAges = CleanupInput{
	AbandonedCheckoutAge: 24 * time.Hour,
	UnconfirmedUserAge:   30 * 24 * time.Hour,
	RecordRetention:      90 * 24 * time.Hour,
}

// fakeCleanupDB plays the store: it holds how many rows each task still has to remove, and
// records every batch asked of it.
type fakeCleanupDB struct {
	mu    sync.Mutex
	rows  map[string]int
	calls []activities.CleanupBatchInput
	// short, when set, makes every batch of the task come back this size however many rows
	// remain, as when live traffic holds the rest locked.
	short map[string]int
}

func (f *fakeCleanupDB) batch(_ context.Context, in activities.CleanupBatchInput) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	n := min(in.Limit, f.rows[in.Task])
	if s, ok := f.short[in.Task]; ok {
		n = min(n, s)
	}
	f.rows[in.Task] -= n
	return n, nil
}

// tasks returns the task of every batch asked for, in order.
func (f *fakeCleanupDB) tasks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Task
	}
	return out
}

// newCleanupEnv returns a test environment whose CleanupBatch is db's, each batch taking
// batchTime of workflow time.
func newCleanupEnv(t *testing.T, db *fakeCleanupDB, batchTime time.Duration) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(cleanupStart)
	env.RegisterWorkflowWithOptions(Cleanup, workflow.RegisterOptions{Name: CleanupWorkflowType})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.CleanupBatch, mock.Anything, mock.Anything).After(batchTime).Return(db.batch)
	return env
}

func cleanupResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) CleanupCounts {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var got CleanupCounts
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func queryCleanupProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) CleanupCounts {
	t.Helper()
	v, err := env.QueryWorkflow(QueryCleanupProgress)
	if err != nil {
		t.Fatalf("query %s: %v", QueryCleanupProgress, err)
	}
	var got CleanupCounts
	if err := v.Get(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func cleanupRepeat(task string, n int) []string { return slices.Repeat([]string{task}, n) }

func TestCleanupCountsAddUpAcrossBatches(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{
		activities.CleanupExpireCheckouts:        25, // 10 + 10 + 5
		activities.CleanupDeleteUnconfirmedUsers: 20, // 10 + 10 + an empty batch to find out it is done
		activities.CleanupPruneEmailRecords:      0,  // one empty batch
		activities.CleanupPruneWebhookEvents:     7,  // one short batch
		activities.CleanupPruneIdempotencyKeys:   4,  // one short batch
	}}
	env := newCleanupEnv(t, db, 0)
	in := cleanupAges
	in.BatchSize = 10
	env.ExecuteWorkflow(Cleanup, in)

	got := cleanupResult(t, env)
	want := CleanupCounts{ExpiredCheckouts: 25, DeletedUsers: 20, PrunedEmailRecords: 0, PrunedWebhookEvents: 7, PrunedIdempotencyKeys: 4, Batches: 11}
	if got != want {
		t.Fatalf("result %+v, want %+v", got, want)
	}
	if q := queryCleanupProgress(t, env); q != want {
		t.Fatalf("progress query %+v, want the result %+v", q, want)
	}
	wantTasks := slices.Concat(cleanupRepeat(activities.CleanupExpireCheckouts, 3), cleanupRepeat(activities.CleanupDeleteUnconfirmedUsers, 3),
		cleanupRepeat(activities.CleanupPruneEmailRecords, 1), cleanupRepeat(activities.CleanupPruneWebhookEvents, 1),
		cleanupRepeat(activities.CleanupPruneIdempotencyKeys, 1), cleanupRepeat(activities.CleanupPruneRateLimits, 1),
		cleanupRepeat(activities.CleanupPruneSessions, 1))
	if got := db.tasks(); !slices.Equal(got, wantTasks) {
		t.Fatalf("batches %v, want %v", got, wantTasks)
	}
	for _, c := range db.calls {
		if c.Limit != 10 {
			t.Fatalf("batch %+v: limit %d, want the batch size 10", c, c.Limit)
		}
	}
	if left := slices.Collect(maps.Values(db.rows)); slices.Max(left) != 0 {
		t.Fatalf("rows left %v", db.rows)
	}
}

// The cutoffs come from the start of the run, and every batch of a task uses the same one.
func TestCleanupAsOfIsTheStartTime(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{activities.CleanupExpireCheckouts: 1200, activities.CleanupPruneWebhookEvents: 3}}
	// Each batch takes a while, so that workflow time moves on between batches.
	env := newCleanupEnv(t, db, 10*time.Minute)
	env.ExecuteWorkflow(Cleanup, cleanupAges) // BatchSize zero: the default applies

	got := cleanupResult(t, env)
	if got.ExpiredCheckouts != 1200 || got.PrunedWebhookEvents != 3 || got.Batches != 3+1+1+1+1+1+1 {
		t.Fatalf("result %+v", got)
	}
	want := map[string]time.Time{
		activities.CleanupExpireCheckouts:        cleanupStart.Add(-24 * time.Hour),
		activities.CleanupDeleteUnconfirmedUsers: cleanupStart.Add(-30 * 24 * time.Hour),
		activities.CleanupPruneEmailRecords:      cleanupStart.Add(-90 * 24 * time.Hour),
		activities.CleanupPruneWebhookEvents:     cleanupStart.Add(-90 * 24 * time.Hour),
		activities.CleanupPruneIdempotencyKeys:   cleanupStart.Add(-90 * 24 * time.Hour),
		activities.CleanupPruneRateLimits:        cleanupStart.Add(-90 * 24 * time.Hour),
		activities.CleanupPruneSessions:          cleanupStart.Add(-90 * 24 * time.Hour),
	}
	for _, c := range db.calls {
		if !c.OlderThan.Equal(want[c.Task]) || c.Limit != DefaultCleanupBatchSize {
			t.Fatalf("batch %+v: want older_than %v and the default limit %d", c, want[c.Task], DefaultCleanupBatchSize)
		}
	}
}

// A short batch ends its task even when rows remain (they are locked by live traffic, say).
func TestCleanupStopsEachTaskAtAShortBatch(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{
		rows: map[string]int{
			activities.CleanupExpireCheckouts: 100, activities.CleanupDeleteUnconfirmedUsers: 100,
			activities.CleanupPruneEmailRecords: 100, activities.CleanupPruneWebhookEvents: 100,
		},
		short: map[string]int{activities.CleanupExpireCheckouts: 3, activities.CleanupPruneEmailRecords: 9},
	}
	env := newCleanupEnv(t, db, 0)
	in := cleanupAges
	in.BatchSize = 10
	env.ExecuteWorkflow(Cleanup, in)

	got := cleanupResult(t, env)
	want := CleanupCounts{ExpiredCheckouts: 3, DeletedUsers: 100, PrunedEmailRecords: 9, PrunedWebhookEvents: 100, Batches: 1 + 11 + 1 + 11 + 1 + 1 + 1}
	if got != want {
		t.Fatalf("result %+v, want %+v", got, want)
	}
	wantTasks := slices.Concat(cleanupRepeat(activities.CleanupExpireCheckouts, 1), cleanupRepeat(activities.CleanupDeleteUnconfirmedUsers, 11),
		cleanupRepeat(activities.CleanupPruneEmailRecords, 1), cleanupRepeat(activities.CleanupPruneWebhookEvents, 11),
		cleanupRepeat(activities.CleanupPruneIdempotencyKeys, 1), cleanupRepeat(activities.CleanupPruneRateLimits, 1),
		cleanupRepeat(activities.CleanupPruneSessions, 1))
	if got := db.tasks(); !slices.Equal(got, wantTasks) {
		t.Fatalf("batches %v, want %v", got, wantTasks)
	}
}

// A zero age would put the cutoff at now and reach live rows, so the task does not run at all.
func TestCleanupSkipsTasksWithoutAnAge(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{activities.CleanupExpireCheckouts: 5, activities.CleanupDeleteUnconfirmedUsers: 5}}
	env := newCleanupEnv(t, db, 0)
	env.ExecuteWorkflow(Cleanup, CleanupInput{UnconfirmedUserAge: time.Hour, BatchSize: 10})

	if got := cleanupResult(t, env); got != (CleanupCounts{DeletedUsers: 5, Batches: 1}) {
		t.Fatalf("result %+v", got)
	}
	if got := db.tasks(); !slices.Equal(got, []string{activities.CleanupDeleteUnconfirmedUsers}) {
		t.Fatalf("batches %v, want only the users task", got)
	}
}

// cleanupContinuedAsNew returns the input the run continued as new with, failing unless it did.
func cleanupContinuedAsNew(t *testing.T, env *testsuite.TestWorkflowEnvironment) CleanupInput {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := env.GetWorkflowError()
	if !workflow.IsContinueAsNewError(err) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("%T is not a *workflow.ContinueAsNewError", err)
	}
	if can.WorkflowType.Name != CleanupWorkflowType {
		t.Fatalf("continued as %q, want %q", can.WorkflowType.Name, CleanupWorkflowType)
	}
	var next CleanupInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	return next
}

func TestCleanupContinuesAsNewAfterMaxBatches(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{activities.CleanupExpireCheckouts: 12, activities.CleanupDeleteUnconfirmedUsers: 45}}
	env := newCleanupEnv(t, db, 0)
	in := cleanupAges
	in.BatchSize, in.MaxBatchesPerRun = 10, 3
	env.ExecuteWorkflow(Cleanup, in)

	// Expire: 10 + 2 (done). Users: 10 — and that is the third batch of this run.
	next := cleanupContinuedAsNew(t, env)
	want := in
	want.AsOf = cleanupStart
	want.ResumeTask = activities.CleanupDeleteUnconfirmedUsers
	want.Progress = CleanupCounts{ExpiredCheckouts: 12, DeletedUsers: 10, Batches: 3, ContinuedAsNew: 1}
	if !next.AsOf.Equal(want.AsOf) {
		t.Fatalf("AsOf carried as %v, want the first run's start %v", next.AsOf, want.AsOf)
	}
	next.AsOf = want.AsOf // compared above; Equal ignores the location that == would not
	if next != want {
		t.Fatalf("continued as new with\n %+v\nwant\n %+v", next, want)
	}
	if q := queryCleanupProgress(t, env); q != (CleanupCounts{ExpiredCheckouts: 12, DeletedUsers: 10, Batches: 3}) {
		t.Fatalf("progress query at the end of the first run %+v", q)
	}

	// The next run starts at the users task, with the carried cutoff, and adds to the progress.
	// Its clock is a day later, which must not move the cutoffs.
	env2 := newCleanupEnv(t, db, 0)
	env2.SetStartTime(cleanupStart.Add(24 * time.Hour))
	env2.ExecuteWorkflow(Cleanup, next)
	next2 := cleanupContinuedAsNew(t, env2)
	if next2.ResumeTask != activities.CleanupDeleteUnconfirmedUsers ||
		next2.Progress != (CleanupCounts{ExpiredCheckouts: 12, DeletedUsers: 40, Batches: 6, ContinuedAsNew: 2}) {
		t.Fatalf("second continue-as-new with %+v", next2)
	}
	// Users: 5 (done), emails, events: the third batch again; the Idempotency-Keys are left for a fourth run.
	env3 := newCleanupEnv(t, db, 0)
	env3.ExecuteWorkflow(Cleanup, next2)
	next3 := cleanupContinuedAsNew(t, env3)
	if next3.ResumeTask != activities.CleanupPruneIdempotencyKeys {
		t.Fatalf("third continue-as-new with %+v", next3)
	}
	env4 := newCleanupEnv(t, db, 0)
	env4.ExecuteWorkflow(Cleanup, next3)
	got := cleanupResult(t, env4)
	if want := (CleanupCounts{ExpiredCheckouts: 12, DeletedUsers: 45, Batches: 12, ContinuedAsNew: 3}); got != want {
		t.Fatalf("final result %+v, want %+v", got, want)
	}
	wantTasks := slices.Concat(cleanupRepeat(activities.CleanupExpireCheckouts, 2), cleanupRepeat(activities.CleanupDeleteUnconfirmedUsers, 5),
		cleanupRepeat(activities.CleanupPruneEmailRecords, 1), cleanupRepeat(activities.CleanupPruneWebhookEvents, 1),
		cleanupRepeat(activities.CleanupPruneIdempotencyKeys, 1), cleanupRepeat(activities.CleanupPruneRateLimits, 1),
		cleanupRepeat(activities.CleanupPruneSessions, 1))
	if got := db.tasks(); !slices.Equal(got, wantTasks) {
		t.Fatalf("batches over the chain %v, want %v", got, wantTasks)
	}
	for _, c := range db.calls {
		if c.Task == activities.CleanupDeleteUnconfirmedUsers && !c.OlderThan.Equal(cleanupStart.Add(-30*24*time.Hour)) {
			t.Fatalf("batch %+v: the cutoff moved with the later run's clock", c)
		}
	}
}

// Even one batch per run gets through every task: each run resumes where the last stopped.
func TestCleanupChainWithOneBatchPerRunFinishes(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{activities.CleanupExpireCheckouts: 4, activities.CleanupPruneWebhookEvents: 2}}
	in := cleanupAges
	in.BatchSize, in.MaxBatchesPerRun = 2, 1
	for run := 1; ; run++ {
		if run > 20 {
			t.Fatalf("still continuing as new after %d runs; calls %v", run-1, db.tasks())
		}
		env := newCleanupEnv(t, db, 0)
		env.ExecuteWorkflow(Cleanup, in)
		if err := env.GetWorkflowError(); workflow.IsContinueAsNewError(err) {
			in = cleanupContinuedAsNew(t, env)
			continue
		}
		got := cleanupResult(t, env)
		// Expire: 2, 2, 0. Users: 0. Emails: 0. Events: 2, 0. Keys: 0. Rate limits: 0. Sessions: 0. One batch per run: ten runs.
		if want := (CleanupCounts{ExpiredCheckouts: 4, PrunedWebhookEvents: 2, Batches: 10, ContinuedAsNew: 9}); got != want || run != 10 {
			t.Fatalf("after %d runs: %+v, want 10 runs and %+v", run, got, want)
		}
		return
	}
}

// The progress query answers while the cleanup runs, with the counts so far.
func TestCleanupProgressQueryWhileRunning(t *testing.T) {
	t.Parallel()
	db := &fakeCleanupDB{rows: map[string]int{activities.CleanupExpireCheckouts: 50}}
	env := newCleanupEnv(t, db, time.Minute)
	var mid CleanupCounts
	env.RegisterDelayedCallback(func() { mid = queryCleanupProgress(t, env) }, 150*time.Second)
	in := cleanupAges
	in.BatchSize = 10
	env.ExecuteWorkflow(Cleanup, in)

	if got := cleanupResult(t, env); got.ExpiredCheckouts != 50 {
		t.Fatalf("result %+v", got)
	}
	if want := (CleanupCounts{ExpiredCheckouts: 20, Batches: 2}); mid != want {
		t.Fatalf("progress after two and a half one-minute batches %+v, want %+v", mid, want)
	}
}

func TestCleanupFailsOnAFinalBatchError(t *testing.T) {
	t.Parallel()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Cleanup, workflow.RegisterOptions{Name: CleanupWorkflowType})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.CleanupBatch, mock.Anything, mock.Anything).Return(0,
		temporal.NewNonRetryableApplicationError("unknown cleanup task", activities.ErrTypeInvalidCleanupBatch, nil)).Once()
	env.ExecuteWorkflow(Cleanup, cleanupAges)
	env.AssertExpectations(t)

	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidCleanupBatch {
		t.Fatalf("workflow error %v, want the batch's %s", err, activities.ErrTypeInvalidCleanupBatch)
	}

	env = suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Cleanup, workflow.RegisterOptions{Name: CleanupWorkflowType})
	bad := cleanupAges
	bad.ResumeTask = "vacuum_everything"
	env.ExecuteWorkflow(Cleanup, bad)
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeInvalidCleanupInput {
		t.Fatalf("workflow error %v for an unknown resume task, want %s", err, ErrTypeInvalidCleanupInput)
	}
}
