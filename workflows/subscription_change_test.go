package workflows

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

const changeWFID = "subscription-change-sub-1-key-1"

// newChangeEnv runs SubscriptionChange against a subscription in status, recording the signals
// sent to its renewal.
func newChangeEnv(t *testing.T, status domain.SubscriptionStatus, signals *[]string) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: changeWFID})
	env.RegisterWorkflow(SubscriptionChange)
	env.RegisterActivity(&activities.Activities{})
	sub := activities.Subscription{ID: "sub-1", Status: status, Email: "ann@example.com", Name: "Ann", PlanName: "Plus",
		Provider: "stripe", CustomerRef: "cus_1", CurrentPeriodEnd: periodEnd}
	env.OnActivity(a.LoadSubscription, mock.Anything, "sub-1").Return(sub, nil)
	env.OnSignalExternalWorkflow(mock.Anything, RenewalWorkflowID("sub-1", periodEnd), "", mock.Anything, mock.Anything).Return(
		func(_, _, _, name string, _ any) error {
			*signals = append(*signals, name)
			return nil
		}).Maybe()
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func changeResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) SubscriptionChangeResult {
	t.Helper()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SubscriptionChangeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCancelNowEndsTheSubscriptionAndStopsTheRenewal(t *testing.T) {
	var signals []string
	env := newChangeEnv(t, domain.SubscriptionPastDue, &signals)
	env.OnActivity(a.CancelSubscription, mock.Anything, activities.SubscriptionChange{SubscriptionID: "sub-1", Reason: "canceled by the customer"}).
		Return(activities.Subscription{ID: "sub-1", Status: domain.SubscriptionCanceled, Email: "ann@example.com"}, nil).Once()
	env.OnActivity(a.SendEmail, mock.Anything, mock.MatchedBy(func(in activities.EmailInput) bool {
		return in.EventKey == "cancellation/"+changeWFID && in.Cancellation != nil && in.Cancellation.Immediate
	})).Return(activities.EmailResult{Sent: true}, nil).Once()

	env.ExecuteWorkflow(SubscriptionChange, SubscriptionChangeInput{SubscriptionID: "sub-1", Action: ChangeCancelNow})

	if res := changeResult(t, env); res.Status != domain.SubscriptionCanceled || res.FailureCode != "" {
		t.Fatalf("result %+v", res)
	}
	if len(signals) != 1 || signals[0] != SignalSubscriptionChanged {
		t.Fatalf("signals %v", signals)
	}
}

func TestCancelAtPeriodEndDuringDunningCancelsNow(t *testing.T) {
	var signals []string
	env := newChangeEnv(t, domain.SubscriptionPastDue, &signals)
	env.OnActivity(a.CancelSubscription, mock.Anything, mock.Anything).
		Return(activities.Subscription{ID: "sub-1", Status: domain.SubscriptionCanceled}, nil).Once()
	env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).Return(activities.EmailResult{Sent: true}, nil).Once()

	env.ExecuteWorkflow(SubscriptionChange, SubscriptionChangeInput{SubscriptionID: "sub-1", Action: ChangeCancelAtPeriodEnd})

	if res := changeResult(t, env); res.Status != domain.SubscriptionCanceled {
		t.Fatalf("result %+v", res)
	}
}

func TestCancelAtPeriodEndAndResumeOnlyFlagTheSubscription(t *testing.T) {
	for _, action := range []string{ChangeCancelAtPeriodEnd, ChangeResume} {
		t.Run(action, func(t *testing.T) {
			var signals []string
			env := newChangeEnv(t, domain.SubscriptionActive, &signals)
			env.OnActivity(a.SetCancelAtPeriodEnd, mock.Anything, activities.CancelAtPeriodEndInput{SubscriptionID: "sub-1", Cancel: action == ChangeCancelAtPeriodEnd}).
				Return(activities.Subscription{ID: "sub-1", Status: domain.SubscriptionActive, CancelAtPeriodEnd: action == ChangeCancelAtPeriodEnd}, nil).Once()
			if action == ChangeCancelAtPeriodEnd {
				env.OnActivity(a.SendEmail, mock.Anything, mock.MatchedBy(func(in activities.EmailInput) bool {
					return in.Cancellation != nil && !in.Cancellation.Immediate
				})).Return(activities.EmailResult{Sent: true}, nil).Once()
			}

			env.ExecuteWorkflow(SubscriptionChange, SubscriptionChangeInput{SubscriptionID: "sub-1", Action: action})

			if res := changeResult(t, env); res.Status != domain.SubscriptionActive || res.FailureCode != "" {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestNewPaymentMethodIsSavedAndWakesTheRenewal(t *testing.T) {
	var signals []string
	env := newChangeEnv(t, domain.SubscriptionPastDue, &signals)
	env.OnActivity(a.SavePaymentMethod, mock.Anything, activities.SavePaymentMethodInput{
		SubscriptionID: "sub-1", Provider: "stripe", Token: "pm_card_visa", CustomerRef: "cus_1", Email: "ann@example.com",
		Name: "Ann", IdempotencyKey: changeWFID + "/save-payment-method",
	}).Return(activities.SavedPaymentMethod{CustomerRef: "cus_1", PaymentMethodRef: "pm_new"}, nil).Once()

	env.ExecuteWorkflow(SubscriptionChange, SubscriptionChangeInput{
		SubscriptionID: "sub-1", Action: ChangePaymentMethod, Payment: Payment{Provider: "stripe", Token: "pm_card_visa"},
	})

	if res := changeResult(t, env); res.FailureCode != "" {
		t.Fatalf("result %+v", res)
	}
	if len(signals) != 1 || signals[0] != SignalPaymentMethodUpdated {
		t.Fatalf("signals %v", signals)
	}
}

func TestChangesOfACanceledSubscriptionAreRefused(t *testing.T) {
	for _, action := range []string{ChangeCancelAtPeriodEnd, ChangeResume, ChangePaymentMethod} {
		t.Run(action, func(t *testing.T) {
			var signals []string
			env := newChangeEnv(t, domain.SubscriptionCanceled, &signals)
			env.ExecuteWorkflow(SubscriptionChange, SubscriptionChangeInput{SubscriptionID: "sub-1", Action: action})
			if res := changeResult(t, env); res.FailureCode != "subscription_canceled" || len(signals) != 0 {
				t.Fatalf("result %+v, signals %v", res, signals)
			}
		})
	}
}
