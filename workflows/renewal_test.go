package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

var (
	periodEnd   = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	testLadder  = DunningPolicy{RetryAfter: []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour, 168 * time.Hour}}
	renewalWFID = RenewalWorkflowID("sub-1", periodEnd)
)

func softDecline() error {
	return temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeCardDeclined, nil,
		domain.Failure{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."})
}

func hardDecline() error {
	return temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeCardDeclinedHard, nil,
		domain.Failure{Code: "card_declined", DeclineCode: "stolen_card", Message: "Your card was declined."})
}

// softDeclineFirst is a charge outcome: the first attempt is softly declined, the later ones succeed.
func softDeclineFirst(attempt int) error {
	if attempt == 1 {
		return softDecline()
	}
	return nil
}

// renewalHarness is a Renewal under test with a fake subscription that the mocked store
// activities keep up to date, and a record of every charge attempt and email.
type renewalHarness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu       sync.Mutex
	sub      activities.Subscription
	charges  []activities.ChargeInput
	chargeAt []time.Time
	emails   []string
	// outcome decides each charge attempt (1-based); nil succeeds.
	outcome func(attempt int) error
	// renewRefusal, when set, is how the subscription refuses to record the paid period.
	renewRefusal error
	refunds      []activities.RefundInput
	emailInputs  []activities.EmailInput
	failures     []activities.OrderFailure
}

func newRenewalHarness(t *testing.T, status domain.SubscriptionStatus) *renewalHarness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	h := &renewalHarness{t: t, env: suite.NewTestWorkflowEnvironment()}
	h.sub = activities.Subscription{
		ID: "sub-1", UserID: "user-1", Email: "ann@example.com", Name: "Ann Lee", PlanName: "cartflow Plus", Status: status,
		Provider: "stripe", CustomerRef: "cus_1", PaymentMethodRef: "pm_1", PriceAmount: 900, Currency: "usd",
		BillingInterval: "month", CurrentPeriodStart: periodEnd.AddDate(0, -1, 0), CurrentPeriodEnd: periodEnd,
	}
	env := h.env
	env.SetStartTime(periodEnd.Add(time.Minute))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: renewalWFID})
	env.RegisterWorkflow(Renewal)
	env.RegisterActivity(&activities.Activities{})

	env.OnActivity(a.LoadSubscription, mock.Anything, "sub-1").Return(func(_ context.Context, _ string) (activities.Subscription, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.sub, nil
	}).Maybe()
	env.OnActivity(a.CreateRenewalOrder, mock.Anything, activities.RenewalOrderInput{SubscriptionID: "sub-1", WorkflowID: renewalWFID}).
		Return(activities.OrderSummary{OrderID: "order-r", Status: "pending", Amount: 900, Currency: "usd"}, nil).Maybe()
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ChargeInput) (activities.ChargeResult, error) {
		h.mu.Lock()
		h.charges = append(h.charges, in)
		h.chargeAt = append(h.chargeAt, env.Now())
		n := len(h.charges)
		h.mu.Unlock()
		if h.outcome != nil {
			if err := h.outcome(n); err != nil {
				return activities.ChargeResult{}, err
			}
		}
		return activities.ChargeResult{ProviderRef: "pi_ok"}, nil
	}).Maybe()
	env.OnActivity(a.RenewSubscription, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SubscriptionChange) (activities.Subscription, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.renewRefusal != nil {
			return activities.Subscription{}, h.renewRefusal
		}
		if !in.PeriodEnd.Equal(periodEnd) {
			t.Errorf("renewed period %v, want %v", in.PeriodEnd, periodEnd)
		}
		h.sub.Status, h.sub.CurrentPeriodStart, h.sub.CurrentPeriodEnd, h.sub.DunningAttempts = domain.SubscriptionActive, periodEnd, periodEnd.AddDate(0, 1, 0), 0
		return h.sub, nil
	}).Maybe()
	env.OnActivity(a.MarkPastDue, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SubscriptionChange) (activities.Subscription, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.sub.Status, h.sub.DunningAttempts = domain.SubscriptionPastDue, in.Attempts
		return h.sub, nil
	}).Maybe()
	env.OnActivity(a.CancelSubscription, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SubscriptionChange) (activities.Subscription, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.sub.Status = domain.SubscriptionCanceled
		return h.sub, nil
	}).Maybe()
	env.OnActivity(a.CompleteOrder, mock.Anything, activities.CompleteOrderInput{Caller: activities.CallerRenewal, OrderID: "order-r", UserID: "user-1"}).Return(nil).Maybe()
	env.OnActivity(a.FailOrder, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OrderFailure) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.failures = append(h.failures, in)
		return nil
	}).Maybe()
	env.OnActivity(a.Refund, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RefundInput) (activities.RefundResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.refunds = append(h.refunds, in)
		return activities.RefundResult{ProviderRef: "re_1", Amount: in.Amount}, nil
	}).Maybe()
	env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.EmailInput) (activities.EmailResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.emails, h.emailInputs = append(h.emails, in.EventKey), append(h.emailInputs, in)
		return activities.EmailResult{Sent: true}, nil
	}).Maybe()
	return h
}

func (h *renewalHarness) run() RenewalResult {
	h.t.Helper()
	h.env.ExecuteWorkflow(Renewal, RenewalInput{SubscriptionID: "sub-1", PeriodEnd: periodEnd, Dunning: testLadder})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("renewal did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("renewal failed: %v", err)
	}
	var res RenewalResult
	if err := h.env.GetWorkflowResult(&res); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// attemptKeys returns the idempotency keys the charge attempts used.
func (h *renewalHarness) attemptKeys() []string {
	var keys []string
	for _, c := range h.charges {
		keys = append(keys, c.IdempotencyKey)
	}
	return keys
}

func TestRenewalChargesOffSessionAndExtendsThePeriod(t *testing.T) {
	// A trial that ends gets its first charge exactly like an active plan gets its renewal.
	for _, status := range []domain.SubscriptionStatus{domain.SubscriptionTrialing, domain.SubscriptionActive} {
		t.Run(string(status), func(t *testing.T) {
			h := newRenewalHarness(t, status)
			res := h.run()
			if res.Outcome != RenewalRenewed || res.OrderID != "order-r" || res.NewPeriodEnd == nil || !res.NewPeriodEnd.Equal(periodEnd.AddDate(0, 1, 0)) {
				t.Fatalf("result %+v", res)
			}
			if len(h.charges) != 1 {
				t.Fatalf("%d charges", len(h.charges))
			}
			c := h.charges[0]
			if !c.OffSession || !c.KeepOrderOpen || c.Token != "pm_1" || c.CustomerRef != "cus_1" || c.Amount != 900 ||
				c.Currency != "usd" || c.IdempotencyKey != renewalWFID+"/charge/1" || c.OrderID != "order-r" {
				t.Fatalf("charge %+v", c)
			}
			if h.sub.Status != domain.SubscriptionActive || !slices.Equal(h.emails, []string{"receipt/order/order-r"}) {
				t.Fatalf("after renewal: %s, emails %v", h.sub.Status, h.emails)
			}
		})
	}
}

func TestRenewalSoftDeclinesRunTheLadderThenCancel(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = func(int) error { return softDecline() }
	res := h.run()
	if res.Outcome != RenewalCanceled || res.Attempts != 5 || !strings.Contains(res.Reason, "insufficient_funds") {
		t.Fatalf("result %+v", res)
	}
	wantKeys := []string{renewalWFID + "/charge/1", renewalWFID + "/charge/2", renewalWFID + "/charge/3", renewalWFID + "/charge/4", renewalWFID + "/charge/5"}
	if !slices.Equal(h.attemptKeys(), wantKeys) {
		t.Fatalf("attempt keys %v", h.attemptKeys())
	}
	// Retries follow the ladder, counted from the first decline, on durable timers.
	first := h.chargeAt[0]
	for i, wait := range testLadder.RetryAfter {
		if got := h.chargeAt[i+1].Sub(first); got != wait {
			t.Fatalf("attempt %d came %v after the first, want %v", i+2, got, wait)
		}
	}
	if h.sub.Status != domain.SubscriptionCanceled {
		t.Fatalf("subscription %s", h.sub.Status)
	}
	wantEmails := []string{
		"payment-failed/" + renewalWFID + "/1", "payment-failed/" + renewalWFID + "/2", "payment-failed/" + renewalWFID + "/3",
		"payment-failed/" + renewalWFID + "/4", "payment-failed/" + renewalWFID + "/final",
	}
	if !slices.Equal(h.emails, wantEmails) {
		t.Fatalf("emails %v", h.emails)
	}
}

func TestRenewalRetriesAtOnceWithAFixedPaymentMethod(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = softDeclineFirst
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		h.sub.PaymentMethodRef = "pm_2"
		h.mu.Unlock()
		h.env.SignalWorkflow(SignalPaymentMethodUpdated, nil)
	}, 10*time.Hour)
	res := h.run()
	if res.Outcome != RenewalRenewed || len(h.charges) != 2 {
		t.Fatalf("result %+v after %d charges", res, len(h.charges))
	}
	if h.charges[1].Token != "pm_2" || h.charges[1].IdempotencyKey != renewalWFID+"/charge/2" {
		t.Fatalf("retry used %+v", h.charges[1])
	}
	if got := h.chargeAt[1].Sub(h.chargeAt[0]); got > 10*time.Hour+time.Minute {
		t.Fatalf("the retry waited %v instead of going at once", got)
	}
	if h.sub.Status != domain.SubscriptionActive {
		t.Fatalf("subscription %s", h.sub.Status)
	}
}

func TestRenewalHardDeclineIsNotRetried(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = func(int) error { return hardDecline() }
	res := h.run()
	if res.Outcome != RenewalCanceled || len(h.charges) != 1 || !strings.Contains(res.Reason, "stolen_card") {
		t.Fatalf("result %+v after %d charges", res, len(h.charges))
	}
	if h.sub.Status != domain.SubscriptionCanceled || h.sub.DunningAttempts != 0 {
		t.Fatalf("subscription %+v", h.sub)
	}
	if !slices.Equal(h.emails, []string{"payment-failed/" + renewalWFID + "/final"}) {
		t.Fatalf("emails %v", h.emails)
	}
}

func TestRenewalMalformedRequestFailsTheRunAndLeavesTheSubscription(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = func(int) error {
		return temporal.NewNonRetryableApplicationError("malformed", activities.ErrTypePaymentRequestInvalid, nil,
			domain.Failure{Code: "payment_request_invalid", Message: "the payment could not be completed"})
	}
	h.env.ExecuteWorkflow(Renewal, RenewalInput{SubscriptionID: "sub-1", PeriodEnd: periodEnd, Dunning: testLadder})
	var appErr *temporal.ApplicationError
	if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypePaymentRequestInvalid {
		t.Fatalf("renewal error %v, want the PaymentRequestInvalid failure for ops", err)
	}
	if len(h.charges) != 1 || h.sub.Status != domain.SubscriptionActive || h.sub.DunningAttempts != 0 || len(h.emails) != 0 {
		t.Fatalf("after cartflow's own bug: %d charges, subscription %+v, emails %v", len(h.charges), h.sub, h.emails)
	}
}

func TestRenewalCancelAtPeriodEndChargesNothing(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.sub.CancelAtPeriodEnd = true
	res := h.run()
	if res.Outcome != RenewalCanceled || len(h.charges) != 0 || h.sub.Status != domain.SubscriptionCanceled {
		t.Fatalf("result %+v, %d charges, subscription %s", res, len(h.charges), h.sub.Status)
	}
}

func TestRenewalSkipsAPeriodAlreadyRenewedOrACanceledSubscription(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.sub.CurrentPeriodEnd = periodEnd.AddDate(0, 1, 0)
	if res := h.run(); res.Outcome != RenewalSkipped || len(h.charges) != 0 {
		t.Fatalf("renewed period: %+v, %d charges", res, len(h.charges))
	}
	h = newRenewalHarness(t, domain.SubscriptionCanceled)
	if res := h.run(); res.Outcome != RenewalSkipped || len(h.charges) != 0 {
		t.Fatalf("canceled: %+v, %d charges", res, len(h.charges))
	}
}

func TestRenewalCancelDuringDunningStopsRetries(t *testing.T) {
	for _, action := range []string{ChangeCancelNow, ChangeCancelAtPeriodEnd} {
		t.Run(action, func(t *testing.T) {
			h := newRenewalHarness(t, domain.SubscriptionActive)
			h.outcome = func(int) error { return softDecline() }
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(SignalSubscriptionChanged, SubscriptionChangeSignal{Action: action})
			}, 5*time.Hour)
			res := h.run()
			if res.Outcome != RenewalCanceled || len(h.charges) != 1 || h.sub.Status != domain.SubscriptionCanceled {
				t.Fatalf("result %+v, %d charges, subscription %s", res, len(h.charges), h.sub.Status)
			}
		})
	}
}

func TestRenewalResumeDuringDunningKeepsTheLadder(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = softDeclineFirst
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalSubscriptionChanged, SubscriptionChangeSignal{Action: ChangeResume})
	}, 5*time.Hour)
	res := h.run()
	if res.Outcome != RenewalRenewed || len(h.charges) != 2 || h.chargeAt[1].Sub(h.chargeAt[0]) != 24*time.Hour {
		t.Fatalf("result %+v, %d charges at %v", res, len(h.charges), h.chargeAt)
	}
}

func TestRenewalStatusQueryShowsDunning(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = softDeclineFirst
	var during RenewalState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&during)
	}, 3*time.Hour)
	h.run()
	if during.Stage != RenewalDunning || during.Attempts != 1 || during.NextRetryAt == nil || during.LastDecline != "insufficient_funds" {
		t.Fatalf("state during dunning %+v", during)
	}
}

// A cancel that lands while the renewal is being charged makes the subscription refuse the
// period after the money moved: the charge is refunded under a key of the workflow's own, the
// customer is told, and the run ends without failing.
func TestRenewalRefusedAfterTheChargeIsRefunded(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.renewRefusal = temporal.NewNonRetryableApplicationError("canceled", activities.ErrTypeSubscriptionState, nil,
		domain.Failure{Code: "subscription_state", Message: "the subscription cannot make this change"})
	res := h.run()
	if res.Outcome != RenewalCanceled || !strings.Contains(res.Reason, "refunded") {
		t.Fatalf("result %+v", res)
	}
	if len(h.charges) != 1 || h.charges[0].SubscriptionID != "sub-1" {
		t.Fatalf("charges %+v, want one that names the subscription for its lock", h.charges)
	}
	if len(h.refunds) != 1 {
		t.Fatalf("%d refunds, want 1", len(h.refunds))
	}
	r := h.refunds[0]
	if r.PaymentRef != "pi_ok" || r.ChargeKey != renewalWFID+"/charge/1" || r.IdempotencyKey != renewalWFID+"/refund" ||
		r.Amount != 900 || r.OrderID != "order-r" || r.Reason.Code != "subscription_canceled" || r.Requested {
		t.Fatalf("refund %+v", r)
	}
	e := h.emailInputs
	if len(e) != 1 || e[0].RenewalRefunded == nil || e[0].To != "ann@example.com" ||
		e[0].EventKey != "renewal-refunded/"+renewalWFID || e[0].RenewalRefunded.Amount != 900 {
		t.Fatalf("emails %+v, want one renewal-refunded email to the customer", e)
	}
}

// A charge that the ledger refuses because the subscription was canceled since the renewal
// loaded it (read under a row lock) moves no money: the order fails, no dunning, no refund.
func TestRenewalCanceledBeforeTheChargeChargesNothing(t *testing.T) {
	h := newRenewalHarness(t, domain.SubscriptionActive)
	h.outcome = func(int) error {
		return temporal.NewNonRetryableApplicationError("canceled", activities.ErrTypeSubscriptionState, nil,
			domain.Failure{Code: "subscription_canceled", Message: "the subscription was canceled, so the renewal was not charged"})
	}
	res := h.run()
	if res.Outcome != RenewalCanceled || len(h.charges) != 1 || h.sub.Status != domain.SubscriptionCanceled {
		t.Fatalf("result %+v after %d charges, subscription %s", res, len(h.charges), h.sub.Status)
	}
	if len(h.failures) != 1 || h.failures[0].Failure.Code != "subscription_canceled" || len(h.emails) != 0 || len(h.refunds) != 0 {
		t.Fatalf("order failures %+v, emails %v, refunds %+v", h.failures, h.emails, h.refunds)
	}
}
