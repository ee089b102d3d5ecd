package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers every cartflow workflow under its contract name, so that the names the
// BFF and the schedules use and the names the worker serves cannot drift apart.
func Register(r worker.WorkflowRegistry) {
	for name, fn := range map[string]any{
		CheckoutWorkflowType:           Checkout,
		RenewalWorkflowType:            Renewal,
		RenewalSweepWorkflowType:       RenewalSweep,
		SubscriptionChangeWorkflowType: SubscriptionChange,
		DailySummaryWorkflowType:       DailySummary,
		CleanupWorkflowType:            Cleanup,
		ProviderEventWorkflowType:      ProviderEvent,
		RefundWorkflowType:             Refund,
		ReconcileWorkflowType:          Reconcile,
		SignInLinkWorkflowType:         SignInLink,
	} {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}
