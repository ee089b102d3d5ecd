package activities

import (
	"context"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// The observe step. Each activity does its business first and then calls one observe function
// with the outcome, which records both the Prometheus counters and the Mixpanel event for it.
// Both are best-effort and never change the activity's result: an observe function returns
// nothing.

// observeCharge records a charge: the provider's answer for the charge counter, a refusal that
// ends a checkout for the checkout counter, and for Mixpanel the payment's outcome once it has
// one (a charge waiting for the customer to authenticate has none yet).
func (a *Activities) observeCharge(ctx context.Context, in ChargeInput, call providerCall[billing.ChargeResult], err error) {
	if !call.asked {
		return
	}
	a.Metrics.Charge(in.Provider, chargeOutcome(call.res, call.err))
	if billing.IsFinal(call.err) && !in.KeepOrderOpen {
		a.Metrics.CheckoutOutcome(domain.OrderFailed)
	}
	if err == nil && call.res.Action != nil {
		return
	}
	a.trackPayment(ctx, in.OrderID, in.IdempotencyKey, in.OffSession, err)
}

// observeAuthentication sends the outcome of a payment that waited for authentication once the
// provider has settled it: succeeded, or refused. Any other error (a retry to come, or the
// UnknownProvider of a provider without authentication, which no provider answered) is not one
// of ProviderRefusals, and trackPayment sends nothing for it.
func (a *Activities) observeAuthentication(ctx context.Context, in AuthenticationInput, res AuthenticationResult, err error) {
	if err == nil && res.Status != AuthenticationSucceeded {
		return
	}
	a.trackPayment(ctx, in.OrderID, in.ChargeKey, false, err)
}

// observeExpiry counts an order that expired waiting for authentication. A payment that
// succeeded before the cancel was observed by VerifyAuthentication.
func (a *Activities) observeExpiry(res AuthenticationResult, err error) {
	if err == nil && res.Status == AuthenticationExpired {
		a.Metrics.CheckoutOutcome(domain.OrderExpired)
	}
}

// observeRefund records a refund: the provider's answer for the refund counter, a refund that
// returned a failed purchase's money for the checkout counter, and refund_issued once the
// ledger has it.
func (a *Activities) observeRefund(ctx context.Context, in RefundInput, call providerCall[billing.RefundResult], err error) {
	if !call.asked {
		return
	}
	a.Metrics.Refund(in.Provider, chargeOutcome(billing.ChargeResult{}, call.err))
	if call.err == nil && in.Reason.Code != "" && !call.res.NothingCharged {
		a.Metrics.CheckoutOutcome(domain.OrderRefunded)
	}
	if err == nil {
		a.trackRefund(ctx, in, call.res)
	}
}

// observeOrderCreated sends checkout_started for an order that was priced.
func (a *Activities) observeOrderCreated(ctx context.Context, in CreateOrderInput, o store.Order, s OrderSummary, err error) {
	if err != nil || s.Failure != nil {
		return
	}
	a.trackCheckoutStarted(ctx, in, o.CreatedAt, s)
}

// observeOrderFailed counts a checkout's failed order; a renewal's is counted by its renewal.
func (a *Activities) observeOrderFailed(in OrderFailure, err error) {
	if err == nil && isCheckout(in.Caller) {
		a.Metrics.CheckoutOutcome(domain.OrderFailed)
	}
}

// observeOrderCompleted counts a checkout's completed order and sends checkout_completed; a
// renewal's order records neither.
func (a *Activities) observeOrderCompleted(ctx context.Context, in CompleteOrderInput, err error) {
	if err != nil || !isCheckout(in.Caller) {
		return
	}
	a.Metrics.CheckoutOutcome(domain.OrderCompleted)
	a.trackCheckoutCompleted(ctx, in.OrderID)
}

// renewalOutcomes are the renewal counter's outcome labels of the subscription events that
// count one; a subscription's start counts none.
var renewalOutcomes = map[string]string{
	FunnelSubscriptionRenewed:  "renewed",
	FunnelSubscriptionPastDue:  "past_due",
	FunnelSubscriptionCanceled: "canceled",
}

// observeSubscription records a subscription change once the store has it: the renewal counter
// and the event name (see trackSubscription for period and at).
func (a *Activities) observeSubscription(ctx context.Context, name string, sub store.Subscription, err error, period, at time.Time) {
	if err != nil {
		return
	}
	a.trackSubscription(ctx, name, sub, period, at)
	if outcome, ok := renewalOutcomes[name]; ok {
		a.Metrics.Renewal(outcome)
	}
}

// observeRegistration sends user_registered for a registration that made a new account.
func (a *Activities) observeRegistration(ctx context.Context, u store.User, err error) {
	if err != nil {
		return
	}
	a.trackUserRegistered(ctx, u)
}
