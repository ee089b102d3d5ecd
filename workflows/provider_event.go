package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// ProviderEvent handles one verified webhook event: it stores the event once and records it on
// its order (a refund made at the provider, a dispute), and passes a payment's outcome to the
// checkout that made the payment, which may be waiting for it (3-D Secure). A payment that
// succeeded for an order that failed or expired is an orphan: it is recorded, reported to ops
// and refunded. A redelivered event finds itself stored and changes nothing.
func ProviderEvent(ctx workflow.Context, in domain.WebhookEvent) (activities.AppliedEvent, error) {
	var applied activities.AppliedEvent
	if err := workflow.ExecuteActivity(providerEventOptions(ctx), a.RecordProviderEvent, in).Get(ctx, &applied); err != nil {
		return applied, err
	}
	if applied.Duplicate {
		return applied, nil
	}
	outcome := in.Type == domain.EventPaymentSucceeded || in.Type == domain.EventPaymentFailed
	if outcome && applied.WorkflowID != "" {
		// The checkout may have finished already; then there is nobody to tell, which is fine.
		if err := workflow.SignalExternalWorkflow(ctx, applied.WorkflowID, "", SignalPaymentOutcome,
			PaymentOutcomeSignal{EventType: in.Type, PaymentRef: in.PaymentRef}).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("payment outcome not delivered: the checkout is not running", "workflow_id", applied.WorkflowID)
		}
	}
	// Runs recorded before orphan payments were looked for replay without the check.
	if in.Type == domain.EventPaymentSucceeded && in.PaymentRef != "" && applied.OrderID != "" &&
		workflow.GetVersion(ctx, "orphan-payments", workflow.DefaultVersion, 1) == 1 {
		return applied, refundIfOrphan(ctx, in, applied.OrderID)
	}
	return applied, nil
}

// refundIfOrphan refunds the event's payment when it took money for an order that failed or
// expired. The order's checkout is over by then, so nobody else will return the money; an
// order still being charged is left to its checkout (see activities/reconcile.go).
func refundIfOrphan(ctx workflow.Context, in domain.WebhookEvent, orderID string) error {
	var orphan *activities.OrphanPayment
	if err := workflow.ExecuteActivity(providerEventOptions(ctx), a.FindOrphanPayment, activities.OrphanCheck{
		Provider: in.Provider, PaymentRef: in.PaymentRef, OrderID: orderID, Amount: in.Amount, Currency: in.Currency,
	}).Get(ctx, &orphan); err != nil || orphan == nil {
		return err
	}
	_, err := refundOrphan(refundOptions(ctx), *orphan)
	return err
}
