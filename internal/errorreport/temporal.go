package errorreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Tags set on worker events.
const (
	TagWorkflowType = "workflow_type"
	TagWorkflowID   = "workflow_id"
	TagRunID        = "run_id"
	TagActivity     = "activity"
	TagAttempt      = "attempt"
	TagOrderID      = "order_id"
	TagErrorType    = "error_type"
)

// WorkerInterceptor returns the Temporal worker interceptor that reports an activity failure
// once, on its final attempt, and every workflow failure. Register it in worker.Options.Interceptors.
// Without a DSN it intercepts nothing.
func (r *Reporter) WorkerInterceptor() interceptor.WorkerInterceptor {
	if !r.Enabled() {
		return &interceptor.WorkerInterceptorBase{}
	}
	return &workerInterceptor{r: r}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	r *Reporter
}

// InterceptActivity wraps every activity execution, local activities included.
func (w *workerInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &activityInbound{r: w.r}
	a.Next = next
	return a
}

// InterceptWorkflow wraps every workflow execution.
func (w *workerInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &workflowInbound{r: w.r}
	i.Next = next
	return i
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	r *Reporter
}

// ExecuteActivity runs the activity and reports its error when Temporal will not retry it. A
// panic is reported by the same rule and then re-panicked, so the SDK still turns it into a
// failed attempt.
func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	defer func() {
		if p := recover(); p != nil {
			a.report(ctx, in, fmt.Errorf("activity panicked: %v", p))
			panic(p)
		}
	}()
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err != nil {
		a.report(ctx, in, err)
	}
	return res, err
}

func (a *activityInbound) report(ctx context.Context, in *interceptor.ExecuteActivityInput, err error) {
	info := activity.GetInfo(ctx)
	if !a.r.reportable(err) || !finalAttempt(info, err, time.Now()) {
		return
	}
	tags := map[string]string{
		TagActivity:   info.ActivityType.Name,
		TagAttempt:    strconv.Itoa(int(info.Attempt)),
		TagWorkflowID: info.WorkflowExecution.ID,
		TagRunID:      info.WorkflowExecution.RunID,
		TagErrorType:  errorType(err),
	}
	if info.WorkflowType != nil {
		tags[TagWorkflowType] = info.WorkflowType.Name
	}
	ids := idsOf(in.Args)
	tags[TagOrderID] = ids.orderID
	a.r.report(ctx, err, tags, ids.customerID)
}

type workflowInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	r *Reporter
}

// ExecuteWorkflow runs the workflow and reports the error it fails with. Reporting is a side
// effect outside the workflow's history: it creates no command, so it cannot break
// determinism, and it is skipped while replaying, so a failure is reported by the worker that
// saw it happen and not again by every worker that later rebuilds the run.
func (w *workflowInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := w.Next.ExecuteWorkflow(ctx, in)
	if err == nil || workflow.IsReplaying(ctx) || workflow.IsContinueAsNewError(err) || alreadyReported(err) ||
		!w.r.reportable(err) {
		return res, err
	}
	info := workflow.GetInfo(ctx)
	ids := idsOf(in.Args)
	w.r.report(context.Background(), err, map[string]string{
		TagWorkflowType: info.WorkflowType.Name,
		TagWorkflowID:   info.WorkflowExecution.ID,
		TagRunID:        info.WorkflowExecution.RunID,
		TagOrderID:      ids.orderID,
		TagErrorType:    errorType(err),
	}, ids.customerID)
	return res, err
}

// reportable reports whether err is a fault rather than a business outcome or a cancellation.
func (r *Reporter) reportable(err error) bool {
	if temporal.IsCanceledError(err) || errors.Is(err, context.Canceled) {
		return false
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if r.expected[appErr.Type()] || appErr.Category() == temporal.ApplicationErrorCategoryBenign {
			return false
		}
	}
	return true
}

// alreadyReported reports whether a workflow's error is an activity's or a child workflow's own
// failure, which the activity interceptor (on the final attempt) or the child's workflow
// interceptor reported already: reporting it again would make two events of one failure.
// Timeouts are not in this set, because no interceptor sees an attempt that never returned.
func alreadyReported(err error) bool {
	var actErr *temporal.ActivityError
	var childErr *temporal.ChildWorkflowExecutionError
	var cause error
	switch {
	case errors.As(err, &actErr):
		cause = actErr.Unwrap()
	case errors.As(err, &childErr):
		cause = childErr.Unwrap()
	default:
		return false
	}
	var appErr *temporal.ApplicationError
	var panicErr *temporal.PanicError
	return errors.As(cause, &appErr) || errors.As(cause, &panicErr)
}

// finalAttempt reports whether Temporal will not run the activity again after this attempt
// failed with err. The rule mirrors the SDK's and the server's retry decision:
//   - the error is non-retryable (flagged so, or its type is in the retry policy's list);
//   - the attempt is the last one the retry policy allows (MaximumAttempts > 0);
//   - the next attempt would start after the schedule-to-close deadline.
//
// When the server sent no retry policy (an old server, or the SDK's test environment), only the
// first and the last rule can apply, so a retryable error is reported only at the deadline.
func finalAttempt(info activity.Info, err error, now time.Time) bool {
	var appErr *temporal.ApplicationError
	hasAppErr := errors.As(err, &appErr)
	if hasAppErr && appErr.NonRetryable() {
		return true
	}
	p := info.RetryPolicy
	if p != nil {
		if hasAppErr && slices.Contains(p.NonRetryableErrorTypes, appErr.Type()) {
			return true
		}
		if p.MaximumAttempts > 0 && info.Attempt >= p.MaximumAttempts {
			return true
		}
	}
	if info.ScheduleToCloseTimeout > 0 && !info.ScheduledTime.IsZero() {
		// ScheduledTime is when the first attempt was scheduled, which is where the
		// schedule-to-close timeout counts from.
		deadline := info.ScheduledTime.Add(info.ScheduleToCloseTimeout)
		var delay time.Duration
		if hasAppErr {
			delay = appErr.NextRetryDelay()
		}
		if delay == 0 {
			delay = backoff(p, info.Attempt)
		}
		if !now.Add(delay).Before(deadline) {
			return true
		}
	}
	return false
}

// backoff is the wait before the attempt after attempt, as the retry policy computes it:
// InitialInterval × BackoffCoefficient^(attempt-1), capped at MaximumInterval. Temporal's
// defaults (1s, 2.0, 100 × InitialInterval) fill the unset fields.
func backoff(p *temporal.RetryPolicy, attempt int32) time.Duration {
	initial, coef, maxInterval := time.Second, 2.0, time.Duration(0)
	if p != nil {
		if p.InitialInterval > 0 {
			initial = p.InitialInterval
		}
		if p.BackoffCoefficient >= 1 {
			coef = p.BackoffCoefficient
		}
		maxInterval = p.MaximumInterval
	}
	if maxInterval <= 0 {
		maxInterval = 100 * initial
	}
	d := float64(initial) * math.Pow(coef, float64(max(attempt, 1)-1))
	if d > float64(maxInterval) || math.IsInf(d, 0) || math.IsNaN(d) {
		return maxInterval
	}
	return time.Duration(d)
}

// errorType is the application error type of err, for grouping and filtering in Sentry.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// inputIDs are the identifiers an event may carry from a workflow's or activity's input.
type inputIDs struct {
	orderID    string
	customerID string
}

// maxIDLength bounds what is taken for an id, so that a long free-text field is never sent.
const maxIDLength = 100

// idsOf reads the order id and the customer id from the first argument's JSON form, where
// cartflow's inputs name them order_id and user_id (or customer_id). Nothing else of the
// input is sent: it holds emails, names and payment tokens.
func idsOf(args []any) inputIDs {
	if len(args) == 0 || args[0] == nil {
		return inputIDs{}
	}
	b, err := json.Marshal(args[0])
	if err != nil {
		return inputIDs{}
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return inputIDs{}
	}
	return inputIDs{
		orderID:    firstString(fields, "order_id", "OrderID"),
		customerID: firstString(fields, "user_id", "UserID", "customer_id", "CustomerID"),
	}
}

// firstString returns the first of keys that holds a short non-empty string.
func firstString(fields map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		var s string
		if raw, ok := fields[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" && len(s) <= maxIDLength {
			return s
		}
	}
	return ""
}
