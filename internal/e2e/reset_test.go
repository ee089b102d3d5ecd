//go:build integration

package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/cartflow/cartflow/workflows"
)

// A completed checkout reset to its first workflow task runs again from the start, days later
// as far as the provider knows: Stripe has forgotten the charge's idempotency key. The ledger
// answers the charge, so the provider is not asked and nobody is charged twice.
func TestResetOfAPaidCheckoutAfterKeyExpiryChargesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := newKey(t)
	code, res := postJSON(t, key, validBody("reset-"+key+"@example.com", "pm_card_visa"))
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("checkout: %d %+v", code, res)
	}
	if pis := chargesFor(key); len(pis) != 1 || pis[0].AmountReceived != 6200 {
		t.Fatalf("before the reset the Stripe layer holds %+v, want one PaymentIntent of 6200", pis)
	}
	if n := dev.StripeProxy.ForgetIdempotencyKeys(); n == 0 {
		t.Fatal("the Stripe layer had no idempotency key to forget")
	}
	requestsBefore := providerRequests(key)

	workflowID := workflows.CheckoutWorkflowID(key)
	run := temporal.GetWorkflow(ctx, workflowID, "")
	firstTask := firstWorkflowTaskCompleted(ctx, t, workflowID, run.GetRunID())
	reset, err := temporal.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: run.GetRunID()},
		Reason:                    "e2e: reset a completed checkout after its provider keys expired",
		WorkflowTaskFinishEventId: firstTask,
		RequestId:                 "reset-" + key,
	})
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	var state workflows.CheckoutState
	if err := temporal.GetWorkflow(ctx, workflowID, reset.GetRunId()).Get(ctx, &state); err != nil {
		t.Fatalf("the reset run: %v", err)
	}
	if state.Status != "completed" {
		t.Fatalf("the reset run ended %+v, want completed", state)
	}

	if n := chargeActivities(ctx, t, workflowID, reset.GetRunId()); n != 1 {
		t.Fatalf("the reset run scheduled %d Charge activities, want 1: the charge must run again for the test to mean anything", n)
	}
	if pis := chargesFor(key); len(pis) != 1 || pis[0].AmountReceived != 6200 {
		t.Errorf("after the reset the Stripe layer holds %+v, want still one PaymentIntent of 6200", pis)
	}
	if n := providerRequests(key) - requestsBefore; n != 0 {
		t.Errorf("the reset run sent %d requests to Stripe, want none: the ledger answers", n)
	}
	rows := checkoutChargeRows(t, res.CheckoutID)
	rows.wantPaidWith(t, "stripe", workflowID+"/charge")
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'charge'`, res.OrderID); n != 1 {
		t.Errorf("%d charge rows in the ledger, want 1", n)
	}
}

// chargeActivities counts the Charge activities a run scheduled.
func chargeActivities(ctx context.Context, t *testing.T, workflowID, runID string) int {
	t.Helper()
	n := 0
	it := temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Charge" {
			n++
		}
	}
	return n
}

// firstWorkflowTaskCompleted is the event id `temporal workflow reset --type FirstWorkflowTask` resets to.
func firstWorkflowTaskCompleted(ctx context.Context, t *testing.T, workflowID, runID string) int64 {
	t.Helper()
	it := temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return e.GetEventId()
		}
	}
	t.Fatalf("workflow %s has no completed workflow task", workflowID)
	return 0
}
