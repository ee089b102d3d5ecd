package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// ProviderEvent handles one verified webhook event: it stores the event once and records it on
// its order (a refund made at the provider, a dispute), and passes a payment's outcome to the
// checkout that made the payment, which may be waiting for it (3-D Secure). A redelivered event
// finds itself stored and changes nothing.
func ProviderEvent(ctx workflow.Context, in domain.WebhookEvent) (activities.AppliedEvent, error) {
	var applied activities.AppliedEvent
	if err := workflow.ExecuteActivity(providerEventOptions(ctx), a.RecordProviderEvent, in).Get(ctx, &applied); err != nil {
		return applied, err
	}
	outcome := in.Type == domain.EventPaymentSucceeded || in.Type == domain.EventPaymentFailed
	if applied.Duplicate || !outcome || applied.WorkflowID == "" {
		return applied, nil
	}
	// The checkout may have finished already; then there is nobody to tell, which is fine.
	if err := workflow.SignalExternalWorkflow(ctx, applied.WorkflowID, "", SignalPaymentOutcome,
		PaymentOutcomeSignal{EventType: in.Type, PaymentRef: in.PaymentRef}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("payment outcome not delivered: the checkout is not running", "workflow_id", applied.WorkflowID)
	}
	return applied, nil
}
