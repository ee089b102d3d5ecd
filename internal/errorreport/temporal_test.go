package errorreport

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// chargeInput mimics cartflow's activity inputs: ids next to personal data and a payment token.
type chargeInput struct {
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
	Email   string `json:"email"`
	Token   string `json:"token"`
}

const (
	testWorkflowType = "TestCheckout"
	testWorkflowID   = "checkout-test-key-0001"
	testActivity     = "Charge"
)

// checkoutWorkflow runs the Charge activity with a retry policy written out, as cartflow does,
// and fails with the activity's error.
func checkoutWorkflow(ctx workflow.Context, in chargeInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{"CardDeclined"},
		},
	})
	return workflow.ExecuteActivity(ctx, testActivity, in).Get(ctx, nil)
}

// newWorkflowEnv returns a workflow test environment of the SDK whose worker has the reporter's interceptor.
func newWorkflowEnv(rep *Reporter) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rep.WorkerInterceptor()}})
	return env
}

// runCheckout runs checkoutWorkflow in the SDK's test environment with the reporter's
// interceptor and the given Charge activity, and returns the workflow's error.
func runCheckout(t *testing.T, rep *Reporter, charge func(context.Context, chargeInput) error) error {
	t.Helper()
	env := newWorkflowEnv(rep)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testWorkflowID})
	env.RegisterWorkflowWithOptions(checkoutWorkflow, workflow.RegisterOptions{Name: testWorkflowType})
	env.RegisterActivityWithOptions(charge, activity.RegisterOptions{Name: testActivity})
	env.ExecuteWorkflow(testWorkflowType, chargeInput{OrderID: "order-77", UserID: "user-42", Email: "ada@example.com", Token: "pm_card_visa"})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	return env.GetWorkflowError()
}

func TestActivityRetriedThenSuccessfulSendsNothing(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	var calls atomic.Int32
	err := runCheckout(t, rep, func(context.Context, chargeInput) error {
		if calls.Add(1) <= 2 {
			return errors.New("stripe: 503 service unavailable")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("activity ran %d times, want 3", calls.Load())
	}
	flush(t, rep)
	srv.wantNoRequests(t, "for a retried-then-successful activity")
}

func TestActivityNonRetryableFailureReportedOnce(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv, "CardDeclined")
	err := runCheckout(t, rep, func(context.Context, chargeInput) error {
		return temporal.NewNonRetryableApplicationError("ledger row for order-77 conflicts", "LedgerConflict", nil)
	})
	if err == nil {
		t.Fatal("workflow succeeded")
	}
	flush(t, rep)
	// The activity's report is the only one: the workflow failing with the same error is not a second.
	e := srv.oneEvent(t)
	for k, want := range map[string]string{
		TagWorkflowType: testWorkflowType, TagWorkflowID: testWorkflowID, TagActivity: testActivity,
		TagOrderID: "order-77", TagErrorType: "LedgerConflict", TagAttempt: "1",
	} {
		if e.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, e.Tags[k], want, e.Tags)
		}
	}
	if e.Tags[TagRunID] == "" {
		t.Errorf("no run id tag: %v", e.Tags)
	}
	if e.User["id"] != "user-42" || len(e.User) != 1 {
		t.Errorf("user %v, want the customer id only", e.User)
	}
	if len(e.Exception) == 0 || !strings.HasPrefix(e.Exception[0].Value, "ledger row for order-77 conflicts") {
		t.Errorf("exception %+v", e.Exception)
	}
}

func TestExpectedErrorTypeSendsNothing(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv, "CardDeclined", "PaymentRejected")
	err := runCheckout(t, rep, func(context.Context, chargeInput) error {
		return temporal.NewNonRetryableApplicationError("card_declined: generic_decline", "CardDeclined", nil)
	})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "CardDeclined" {
		t.Fatalf("workflow error %v, want the decline", err)
	}
	flush(t, rep)
	srv.wantNoRequests(t, "for a decline")
}

func TestWorkflowFailureReportedOnce(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	env := newWorkflowEnv(rep)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "refund-order-9-key"})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in chargeInput) error {
		// A timer first, so that the failure comes after a workflow task boundary.
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return err
		}
		return errors.New("refund total exceeds the capture")
	}, workflow.RegisterOptions{Name: "TestRefund"})
	env.ExecuteWorkflow("TestRefund", chargeInput{OrderID: "order-9", Email: "ada@example.com"})
	if env.GetWorkflowError() == nil {
		t.Fatal("workflow succeeded")
	}
	flush(t, rep)
	e := srv.oneEvent(t)
	if e.Tags[TagWorkflowType] != "TestRefund" || e.Tags[TagWorkflowID] != "refund-order-9-key" || e.Tags[TagOrderID] != "order-9" {
		t.Errorf("tags %v", e.Tags)
	}
	if _, ok := e.Tags[TagActivity]; ok {
		t.Errorf("workflow event tagged with an activity: %v", e.Tags)
	}
	if len(e.User) != 0 {
		t.Errorf("user %v on an input without a customer id", e.User)
	}
}

func TestContinueAsNewSendsNothing(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	env := newWorkflowEnv(rep)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, n int) error {
		return workflow.NewContinueAsNewError(ctx, "TestSweep", n+1)
	}, workflow.RegisterOptions{Name: "TestSweep"})
	env.ExecuteWorkflow("TestSweep", 0)
	if !workflow.IsContinueAsNewError(env.GetWorkflowError()) {
		t.Fatalf("workflow error %v, want continue-as-new", env.GetWorkflowError())
	}
	flush(t, rep)
	srv.wantNoRequests(t, "for a continue-as-new")
}

// TestNoDSNSendsNothing: with no DSN nothing is sent, even with SENTRY_DSN in the environment,
// which sentry.NewClient would otherwise read.
func TestNoDSNSendsNothing(t *testing.T) {
	srv := newSentryServer(t)
	t.Setenv("SENTRY_DSN", srv.DSN())
	rep, err := New(Config{Release: "cartflow@test", Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Enabled() {
		t.Fatal("reporter without a DSN is enabled")
	}
	if err := runCheckout(t, rep, func(context.Context, chargeInput) error {
		return temporal.NewNonRetryableApplicationError("boom", "LedgerConflict", nil)
	}); err == nil {
		t.Fatal("workflow succeeded")
	}
	var recovered any
	r := engine(rep, &recovered)
	r.ServeHTTP(httptest.NewRecorder(), panicRequest())
	if recovered == nil {
		t.Fatal("the panic did not pass through the disabled middleware")
	}
	rep.report(context.Background(), errors.New("direct"), nil, "")
	if !rep.Flush(time.Second) {
		t.Fatal("flush of a disabled reporter failed")
	}
	time.Sleep(200 * time.Millisecond) // anything sent in the background would have arrived
	srv.wantNoRequests(t, "without a DSN")
}

func TestFinalAttempt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	policy := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		MaximumAttempts: 5, NonRetryableErrorTypes: []string{"InvalidCustomer"}}
	retryable := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		info activity.Info
		err  error
		want bool
	}{
		{"retryable, attempts left", activity.Info{Attempt: 2, RetryPolicy: policy}, retryable, false},
		{"retryable, last attempt", activity.Info{Attempt: 5, RetryPolicy: policy}, retryable, true},
		{"non-retryable flag", activity.Info{Attempt: 1, RetryPolicy: policy},
			temporal.NewNonRetryableApplicationError("x", "LedgerConflict", nil), true},
		{"type in the policy's non-retryable list", activity.Info{Attempt: 1, RetryPolicy: policy},
			temporal.NewApplicationError("x", "InvalidCustomer"), true},
		{"unlimited attempts", activity.Info{Attempt: 40, RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second}}, retryable, false},
		{"next retry after schedule-to-close", activity.Info{Attempt: 3, RetryPolicy: policy, ScheduledTime: now.Add(-57 * time.Second),
			ScheduleToCloseTimeout: time.Minute}, retryable, true}, // next wait 4s, 3s left
		{"next retry before schedule-to-close", activity.Info{Attempt: 3, RetryPolicy: policy, ScheduledTime: now.Add(-50 * time.Second),
			ScheduleToCloseTimeout: time.Minute}, retryable, false}, // next wait 4s, 10s left
		{"explicit next retry delay past the deadline", activity.Info{Attempt: 1, RetryPolicy: policy, ScheduledTime: now,
			ScheduleToCloseTimeout: time.Minute},
			temporal.NewApplicationErrorWithOptions("x", "RateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: 2 * time.Minute}), true},
		{"no policy from the server, deadline far", activity.Info{Attempt: 9, ScheduledTime: now, ScheduleToCloseTimeout: time.Hour}, retryable, false},
		{"no policy from the server, deadline passed", activity.Info{Attempt: 9, ScheduledTime: now.Add(-time.Hour), ScheduleToCloseTimeout: time.Hour}, retryable, true},
	} {
		if got := finalAttempt(tc.info, tc.err, now); got != tc.want {
			t.Errorf("%s: finalAttempt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIDsOf(t *testing.T) {
	t.Parallel()
	got := idsOf([]any{chargeInput{OrderID: "order-1", UserID: "user-1", Email: "ada@example.com"}})
	if got != (inputIDs{orderID: "order-1", customerID: "user-1"}) {
		t.Errorf("idsOf = %+v", got)
	}
	if got := idsOf([]any{struct {
		OrderID    string
		CustomerID string
	}{"o-2", "c-2"}}); got != (inputIDs{orderID: "o-2", customerID: "c-2"}) {
		t.Errorf("idsOf without JSON tags = %+v", got)
	}
	for _, args := range [][]any{nil, {nil}, {42}, {"order_id"}, {map[string]any{"order_id": 7}}, {make(chan int)}} {
		if got := idsOf(args); got != (inputIDs{}) {
			t.Errorf("idsOf(%v) = %+v, want nothing", args, got)
		}
	}
}
