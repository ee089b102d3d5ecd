package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

var succeededEvent = domain.WebhookEvent{Provider: "stripe", ID: "evt_o", Type: domain.EventPaymentSucceeded, PaymentRef: "pi_orphan",
	OrderID: "order-1", Amount: 6200, Currency: "usd"}

var webhookOrphan = activities.OrphanPayment{Provider: "stripe", PaymentRef: "pi_orphan", OrderID: "order-1", Amount: 6200,
	Currency: "usd", FoundBy: "webhook", RefundKey: "orphan/stripe/pi_orphan"}

// providerEventEnv runs ProviderEvent with RecordProviderEvent answering applied, the checkout
// signal accepted, and FindOrphanPayment answering orphan. It counts the refunds asked for.
func providerEventEnv(t *testing.T, applied activities.AppliedEvent, orphan *activities.OrphanPayment) (*testsuite.TestWorkflowEnvironment, *int, *int) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(ProviderEvent)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.RecordProviderEvent, mock.Anything, mock.Anything).Return(applied, nil).Once()
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalPaymentOutcome, mock.Anything).Return(nil).Maybe()
	checks, refunds := 0, 0
	env.OnActivity(a.FindOrphanPayment, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OrphanCheck) (*activities.OrphanPayment, error) {
		checks++
		if want := (activities.OrphanCheck{Provider: "stripe", PaymentRef: "pi_orphan", OrderID: applied.OrderID, Amount: 6200, Currency: "usd"}); in != want {
			t.Errorf("orphan check %+v, want %+v", in, want)
		}
		return orphan, nil
	}).Maybe()
	env.OnActivity(a.RefundOrphanPayment, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OrphanPayment) (activities.OrphanRefundResult, error) {
		refunds++
		if in != webhookOrphan {
			t.Errorf("refund of %+v, want %+v", in, webhookOrphan)
		}
		return activities.OrphanRefundResult{Refunded: true, RefundRef: "re_1", Amount: in.Amount}, nil
	}).Maybe()
	return env, &checks, &refunds
}

func TestPaymentSucceededForAFailedOrderIsRefunded(t *testing.T) {
	orphan := webhookOrphan
	env, checks, refunds := providerEventEnv(t, activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k"}, &orphan)
	env.ExecuteWorkflow(ProviderEvent, succeededEvent)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if *checks != 1 || *refunds != 1 {
		t.Fatalf("%d orphan checks and %d refunds, want 1 and 1", *checks, *refunds)
	}
}

func TestPaymentSucceededThatIsNoOrphanRefundsNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		applied    activities.AppliedEvent
		event      domain.WebhookEvent
		wantChecks int
	}{
		// The order's own charge, or an order still charging: the check says no orphan.
		"paid order": {activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k"}, succeededEvent, 1},
		// A redelivered event was checked the first time.
		"duplicate": {activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k", Duplicate: true}, succeededEvent, 0},
		// No order: left to the reconciliation, which sees what the provider refunded already.
		"unknown order": {activities.AppliedEvent{}, succeededEvent, 0},
		// A failed payment took no money.
		"payment failed": {activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k"},
			domain.WebhookEvent{Provider: "stripe", ID: "evt_f", Type: domain.EventPaymentFailed, PaymentRef: "pi_orphan", OrderID: "order-1"}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			env, checks, refunds := providerEventEnv(t, tc.applied, nil)
			env.ExecuteWorkflow(ProviderEvent, tc.event)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if *checks != tc.wantChecks || *refunds != 0 {
				t.Fatalf("%d orphan checks and %d refunds, want %d and 0", *checks, *refunds, tc.wantChecks)
			}
		})
	}
}

// reconcileEnv runs Reconcile over the providers, each answering found (or failing when
// absent from it), and refunds each orphan as refunds says (a refusal when false).
func reconcileEnv(t *testing.T, providers []string, found map[string]activities.ProviderReconciliation, refunds map[string]bool) (*testsuite.TestWorkflowEnvironment, *[]string) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Reconcile)
	env.RegisterActivity(&activities.Activities{})
	start := env.Now()
	env.OnActivity(a.ReconcilingProviders, mock.Anything).Return(providers, nil).Once()
	env.OnActivity(a.FindOrphanPayments, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ReconcileProviderInput) (activities.ProviderReconciliation, error) {
		if want := start.Add(-48 * time.Hour); !in.Since.Equal(want) {
			t.Errorf("%s reconciled since %s, want %s", in.Provider, in.Since, want)
		}
		f, ok := found[in.Provider]
		if !ok {
			return f, errors.New("provider down")
		}
		return f, nil
	})
	var refunded []string
	env.OnActivity(a.RefundOrphanPayment, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OrphanPayment) (activities.OrphanRefundResult, error) {
		refunded = append(refunded, in.PaymentRef)
		if !refunds[in.PaymentRef] {
			return activities.OrphanRefundResult{}, nil
		}
		return activities.OrphanRefundResult{Refunded: true, RefundRef: "re_" + in.PaymentRef, Amount: in.Amount}, nil
	})
	return env, &refunded
}

func orphan(provider, ref string) activities.OrphanPayment {
	return activities.OrphanPayment{Provider: provider, PaymentRef: ref, Amount: 100, Currency: "usd", FoundBy: "reconciliation",
		RefundKey: "orphan/" + provider + "/" + ref}
}

func TestReconcileRefundsEveryOrphanOfEveryProvider(t *testing.T) {
	env, refunded := reconcileEnv(t, []string{"braintree", "stripe"}, map[string]activities.ProviderReconciliation{
		"braintree": {Provider: "braintree", Checked: 3, Matched: 2, Found: 1, Orphans: []activities.OrphanPayment{orphan("braintree", "tx_1")}},
		// One orphan found now, one found by the webhook and not refunded yet; the provider refuses the second.
		"stripe": {Provider: "stripe", Checked: 10, Matched: 7, InFlight: 1, Found: 1,
			Orphans: []activities.OrphanPayment{orphan("stripe", "pi_1"), orphan("stripe", "pi_2")}},
	}, map[string]bool{"tx_1": true, "pi_1": true})
	env.ExecuteWorkflow(Reconcile, ReconcileInput{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum ReconcileSummary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.Checked != 13 || sum.OrphansFound != 2 || sum.Refunded != 2 || sum.RefundFailed != 1 || len(sum.Providers) != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if got := *refunded; len(got) != 3 || got[0] != "tx_1" || got[1] != "pi_1" || got[2] != "pi_2" {
		t.Fatalf("refunds asked for %v", got)
	}
}

func TestReconcileGoesOnPastAProviderThatCannotBeListed(t *testing.T) {
	env, refunded := reconcileEnv(t, []string{"braintree", "stripe"}, map[string]activities.ProviderReconciliation{
		"stripe": {Provider: "stripe", Checked: 1, Found: 1, Orphans: []activities.OrphanPayment{orphan("stripe", "pi_1")}},
	}, map[string]bool{"pi_1": true})
	env.ExecuteWorkflow(Reconcile, ReconcileInput{})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("a provider that could not be listed did not fail the run")
	}
	if got := *refunded; len(got) != 1 || got[0] != "pi_1" {
		t.Fatalf("refunds asked for %v, want pi_1 despite braintree being down", got)
	}
}

func TestReconcileWithoutReconcilersChecksNothing(t *testing.T) {
	env, refunded := reconcileEnv(t, nil, nil, nil)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum ReconcileSummary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.Checked != 0 || len(*refunded) != 0 {
		t.Fatalf("summary %+v, refunds %v", sum, *refunded)
	}
}
