//go:build integration

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/workflows"
)

// The customer cancels while the renewal's charge is at Stripe: the charge went through, but the
// subscription refuses the new period. The money goes back and the customer is told, so a
// canceled subscription is never charged without a refund.
func TestCancelDuringARenewalChargeIsRefunded(t *testing.T) {
	email := "race-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subID, _ := subscribe(t, email, "pm_card_visa")
	session := signIn(t, email)
	// The renewal's PaymentIntent is made, and its answer held back, long enough to cancel.
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1, DelayAfterMS: 4000})
	t.Cleanup(dev.StripeProxy.ClearFaults)
	periodEnd := makeDue(t, subID)
	renewalID := workflows.RenewalWorkflowID(subID, periodEnd)
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	waitFor(t, "the renewal's charge to reach Stripe", 30*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM payments WHERE idempotency_key = $1`, renewalID+"/charge/1") == 1
	})

	code, raw := doJSON(t, http.MethodPost, "/api/v1/me/subscriptions/"+subID+"/cancel", newKey(t), `{"at_period_end": false}`, asCustomer(session)...)
	if code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, raw)
	}
	waitFor(t, "the renewal to end", 60*time.Second, func() bool {
		desc, err := temporal.DescribeWorkflowExecution(t.Context(), renewalID, "")
		return err == nil && desc.GetWorkflowExecutionInfo().GetStatus().String() != "Running"
	})

	if s, _, end := subscriptionStatus(t, subID); s != "canceled" || !end.Equal(periodEnd) {
		t.Fatalf("subscription %s ending %v, want canceled and not renewed past %v", s, end, periodEnd)
	}
	var kept int64
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.Metadata["cartflow_idempotency_key"] == renewalID+"/charge/1" {
			kept += pi.AmountReceived - pi.AmountRefunded
		}
	}
	if kept != 0 {
		t.Fatalf("Stripe keeps %d of the canceled subscription's renewal, want 0", kept)
	}
	charged := queryInt(t, `SELECT count(*) FROM payments WHERE idempotency_key = $1 AND status = 'succeeded'`, renewalID+"/charge/1")
	refunded := queryInt(t, `SELECT count(*) FROM payments WHERE idempotency_key = $1 AND kind = 'refund' AND status = 'succeeded'`, renewalID+"/refund")
	// The held answer makes the cancel land mid-charge: the money moved, then went back.
	if charged != 1 || refunded != 1 {
		t.Fatalf("ledger: %d succeeded charges and %d refunds for the renewal, want the charge and its refund", charged, refunded)
	}
	waitEmails(t, email, "refunded", 1)
}
