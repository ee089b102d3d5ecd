package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// DefaultReconcileWindow is how far back the reconciliation compares each provider's payments
// with the ledger, when its input names no window.
const DefaultReconcileWindow = 48 * time.Hour

// ReconcileInput is the reconciliation's input; the zero value reconciles the last
// DefaultReconcileWindow up to the run's start.
type ReconcileInput struct {
	// Window is how far back from AsOf payments are compared.
	Window time.Duration `json:"window,omitempty"`
	// AsOf is the end of the window; zero means the run's start.
	AsOf time.Time `json:"as_of,omitempty"`
}

// ReconcileSummary is what the reconciliation found, per provider and in total.
type ReconcileSummary struct {
	Since time.Time `json:"since"`
	// Checked counts the payments that took money; OrphansFound the orphans this run recorded;
	// Refunded the orphans it refunded (found now or by an earlier run); RefundFailed those
	// whose refund the provider refused, which ops must return by hand.
	Checked      int `json:"checked"`
	OrphansFound int `json:"orphans_found"`
	Refunded     int `json:"refunded"`
	RefundFailed int `json:"refund_failed"`
	// Providers are the per-provider counts, in provider order.
	Providers []activities.ProviderReconciliation `json:"providers"`
}

// Reconcile is the job the reconciliation Schedule starts: it compares each provider's payments
// that took money within the window with the ledger, and refunds and reports every orphan
// payment among them (see activities/reconcile.go for what is one). Providers whose gateway
// cannot list its payments are skipped. A provider that cannot be listed, or an orphan whose
// refund keeps failing, does not stop the others: the run reports every provider it could,
// then fails so that ops see it, and the next run tries again. Finding and refunding are
// idempotent per provider payment, so runs that overlap or repeat never refund twice.
func Reconcile(ctx workflow.Context, in ReconcileInput) (ReconcileSummary, error) {
	if in.AsOf.IsZero() {
		in.AsOf = workflow.Now(ctx)
	}
	if in.Window <= 0 {
		in.Window = DefaultReconcileWindow
	}
	sum := ReconcileSummary{Since: in.AsOf.Add(-in.Window)}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ReconcileSummary, error) { return sum, nil }); err != nil {
		return sum, err
	}
	var providers []string
	if err := workflow.ExecuteLocalActivity(reconcileSetupOptions(ctx), a.ReconcilingProviders).Get(ctx, &providers); err != nil {
		return sum, err
	}
	var errs []error
	for _, provider := range providers {
		var found activities.ProviderReconciliation
		err := workflow.ExecuteActivity(reconcileOptions(ctx), a.FindOrphanPayments,
			activities.ReconcileProviderInput{Provider: provider, Since: sum.Since}).Get(ctx, &found)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", provider, err))
			continue
		}
		sum.Providers = append(sum.Providers, found)
		sum.Checked += found.Checked
		sum.OrphansFound += found.Found
		for _, orphan := range found.Orphans {
			res, err := refundOrphan(reconcileRefundOptions(ctx), orphan)
			switch {
			case err != nil:
				errs = append(errs, err)
			case res.Refunded:
				sum.Refunded++
			default:
				sum.RefundFailed++
			}
		}
	}
	workflow.GetLogger(ctx).Info("payments reconciled", "since", sum.Since, "providers", len(providers),
		"checked", sum.Checked, "orphans_found", sum.OrphansFound, "refunded", sum.Refunded,
		"refund_failed", sum.RefundFailed, "errors", len(errs))
	if len(errs) > 0 {
		return sum, errors.Join(errs...)
	}
	return sum, nil
}

// refundOrphan refunds an orphan payment, on the given activity options.
func refundOrphan(ctx workflow.Context, orphan activities.OrphanPayment) (activities.OrphanRefundResult, error) {
	var res activities.OrphanRefundResult
	if err := workflow.ExecuteActivity(ctx, a.RefundOrphanPayment, orphan).Get(ctx, &res); err != nil {
		return res, fmt.Errorf("refund orphan payment %s %s: %w", orphan.Provider, orphan.PaymentRef, err)
	}
	return res, nil
}
