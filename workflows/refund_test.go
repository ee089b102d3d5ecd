package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// ledger stands in for the order and its refunds, refusing what the store refuses.
type ledger struct {
	order   activities.OrderView
	refunds []activities.RefundInput
}

func (l *ledger) env(t *testing.T, key string) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: RefundWorkflowID("order-1", key)})
	env.RegisterWorkflow(Refund)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.LoadOrder, mock.Anything, "order-1").Return(func(context.Context, string) (activities.OrderView, error) {
		return l.order, nil
	})
	env.OnActivity(a.Refund, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RefundInput) (activities.RefundResult, error) {
		if !in.Requested || in.PaymentRef != "pi_1" || in.IdempotencyKey != RefundWorkflowID("order-1", key)+"/refund" {
			t.Errorf("refund input %+v", in)
		}
		if l.order.RefundedAmount+in.Amount > l.order.Amount {
			return activities.RefundResult{}, temporal.NewNonRetryableApplicationError("over", activities.ErrTypeRefundRejected, nil,
				domain.Failure{Code: "refund_exceeds_captured", Message: "the refund would return more than was captured"})
		}
		l.refunds = append(l.refunds, in)
		l.order.RefundedAmount += in.Amount
		l.order.Status = "partially_refunded"
		if l.order.RefundedAmount == l.order.Amount {
			l.order.Status = "refunded"
		}
		return activities.RefundResult{ProviderRef: "re_" + key, Amount: in.Amount}, nil
	})
	return env
}

func (l *ledger) refund(t *testing.T, key string, amount int64) RefundOutcome {
	t.Helper()
	env := l.env(t, key)
	env.ExecuteWorkflow(Refund, RefundRequest{OrderID: "order-1", Amount: amount})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out RefundOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPartialThenFullRefundThenOverRefundRefused(t *testing.T) {
	l := &ledger{order: activities.OrderView{OrderID: "order-1", Status: "completed", Provider: "stripe", PaymentRef: "pi_1", Amount: 6200, Currency: "usd"}}

	if out := l.refund(t, "k1", 2000); out.Status != RefundSucceeded || out.Amount != 2000 || out.OrderStatus != "partially_refunded" || out.RefundedTotal != 2000 {
		t.Fatalf("partial refund %+v", out)
	}
	// No amount: whatever remains.
	if out := l.refund(t, "k2", 0); out.Status != RefundSucceeded || out.Amount != 4200 || out.OrderStatus != "refunded" || out.RefundedTotal != 6200 {
		t.Fatalf("full refund %+v", out)
	}
	if out := l.refund(t, "k3", 100); out.Status != RefundRefused || out.FailureCode != "refund_exceeds_captured" {
		t.Fatalf("over-refund %+v", out)
	}
	if len(l.refunds) != 2 {
		t.Fatalf("%d refunds reached the provider", len(l.refunds))
	}
}

func TestDisputeIsRecordedAndNotSignalled(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(ProviderEvent)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.RecordProviderEvent, mock.Anything, domain.WebhookEvent{
		Provider: "stripe", ID: "evt_d", Type: "dispute.opened", PaymentRef: "pi_1", Amount: 6200, Currency: "usd", Reason: "fraudulent",
		Payload: []byte(`{}`),
	}).Return(activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k"}, nil).Once()
	env.ExecuteWorkflow(ProviderEvent, domain.WebhookEvent{Provider: "stripe", ID: "evt_d", Type: "dispute.opened", PaymentRef: "pi_1",
		Amount: 6200, Currency: "usd", Reason: "fraudulent", Payload: []byte(`{}`)})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	env.AssertExpectations(t)
	// No OnSignalExternalWorkflow mock: a signal would have failed the run.
}

func TestPaymentOutcomeEventSignalsTheCheckoutOnce(t *testing.T) {
	for _, duplicate := range []bool{false, true} {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(ProviderEvent)
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.RecordProviderEvent, mock.Anything, mock.Anything).
			Return(activities.AppliedEvent{OrderID: "order-1", WorkflowID: "checkout-k", Duplicate: duplicate}, nil).Once()
		env.OnActivity(a.FindOrphanPayment, mock.Anything, mock.Anything).Return((*activities.OrphanPayment)(nil), nil).Maybe()
		signals := 0
		env.OnSignalExternalWorkflow(mock.Anything, "checkout-k", "", SignalPaymentOutcome,
			PaymentOutcomeSignal{EventType: "payment.succeeded", PaymentRef: "pi_1"}).Return(func(_, _, _, _ string, _ any) error {
			signals++
			return nil
		}).Maybe()
		env.ExecuteWorkflow(ProviderEvent, domain.WebhookEvent{Provider: "stripe", ID: "evt_s", Type: "payment.succeeded", PaymentRef: "pi_1"})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 1, true: 0}[duplicate]; signals != want {
			t.Fatalf("duplicate=%v: %d signals, want %d", duplicate, signals, want)
		}
	}
}
