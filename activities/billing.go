package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// ChargeInput is one charge of an order.
type ChargeInput struct {
	OrderID  string `json:"order_id"`
	Provider string `json:"provider"`
	// Token is the storefront's provider token.
	Token    string `json:"token"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// IdempotencyKey is derived from the workflow ID and the step.
	IdempotencyKey string `json:"idempotency_key"`
	Description    string `json:"description"`
	// CustomerRef is the provider customer holding the saved payment method in Token.
	CustomerRef string `json:"customer_ref,omitempty"`
	// OffSession marks a charge the customer is not present for: a renewal.
	OffSession bool `json:"off_session,omitempty"`
	// KeepOrderOpen leaves the order charging after a decline, because a renewal retries with a new key.
	KeepOrderOpen bool `json:"keep_order_open,omitempty"`
	// SubscriptionID, for a renewal, is the subscription billed: its status is re-read under a
	// row lock before the charge, and a canceled one is not charged.
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// Charge takes the payment through the order's provider and records the attempt and its outcome
// in the ledger and on the order. A decline or a rejected request is final and carries a domain.Failure
// as details; any other error is a technical failure, retried under the same idempotency key,
// and every retry looks the payment up before it charges.
func (a *Activities) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	call, err := a.charge(ctx, in)
	a.observeCharge(ctx, in, call, err)
	if err != nil {
		return ChargeResult{}, err
	}
	return chargeResultOf(call.res), nil
}

// providerCall is a payment provider's answer, kept for the observe step: asked is false when
// the activity failed before it asked the provider, and then there is no answer to count.
type providerCall[R any] struct {
	asked bool
	res   R
	err   error
}

// charge is Charge's business: the ledger, the provider call and the order. It returns the
// provider's answer and the activity's error. The ledger comes first: a charge it records as
// succeeded returns that result without asking the provider, whose memory of the key may have
// expired (Stripe forgets keys after 24 hours, and a workflow reset replays the charge long
// after); an order paid already is never charged under another key; and a provider payment an
// earlier attempt made is passed back to be completed, not made again.
func (a *Activities) charge(ctx context.Context, in ChargeInput) (providerCall[billing.ChargeResult], error) {
	gw, err := a.gateway(in.Provider)
	if err != nil {
		return providerCall[billing.ChargeResult]{}, err
	}
	row, err := a.Store.BeginCharge(ctx, store.PaymentAttempt{
		OrderID: in.OrderID, Kind: domain.PaymentCharge, Provider: in.Provider,
		IdempotencyKey: in.IdempotencyKey, Amount: in.Amount, Currency: in.Currency, SubscriptionID: in.SubscriptionID,
	})
	if err != nil {
		return providerCall[billing.ChargeResult]{}, chargeRefused(err)
	}
	log := a.logger(ctx).With("order_id", in.OrderID, "provider", in.Provider)
	if row.Status == domain.PaymentSucceeded {
		log.InfoContext(ctx, "charge already recorded as succeeded; the provider is not asked again", "provider_ref", row.ProviderRef)
		return providerCall[billing.ChargeResult]{res: billing.ChargeResult{ProviderRef: row.ProviderRef}}, nil
	}
	if row.Status == domain.PaymentFailed {
		// Refused before (a workflow reset replays the attempt): asking again under a key the
		// provider may have forgotten could take the money this attempt was refused.
		log.InfoContext(ctx, "charge already recorded as refused; the provider is not asked again", "code", row.FailureCode)
		return providerCall[billing.ChargeResult]{}, a.failed(ctx, log, in.IdempotencyKey, recordedRefusal(row), "", in.KeepOrderOpen)
	}

	// The heartbeat starts before the card check, itself a provider call: a provider slower than
	// the heartbeat timeout would otherwise time out every attempt before the charge began
	// (found by make chaos, slow-provider).
	stop := a.heartbeat(ctx)
	defer stop()

	// The card-testing defence, before anything is asked of the provider. A payment an earlier
	// attempt made (PaymentRef) is completed, never refused: money may have moved on it; and a
	// renewal charges the customer's saved card, which is no card tester's.
	var fingerprint string
	if row.ProviderRef == "" && !in.OffSession {
		if fingerprint, err = a.screenCard(ctx, in.Provider, in.Token); errors.Is(err, errTooManyDeclines) {
			return providerCall[billing.ChargeResult]{}, a.failed(ctx, log, in.IdempotencyKey, err, "", in.KeepOrderOpen)
		} else if err != nil {
			return providerCall[billing.ChargeResult]{}, err
		}
	}

	// The provider order a PayPal token names is this order's alone (activities/binding.go).
	cartRef, err := a.claimCartRef(ctx, in)
	if err != nil {
		return providerCall[billing.ChargeResult]{}, err
	}
	req := billing.ChargeRequest{
		IdempotencyKey: in.IdempotencyKey, Amount: in.Amount, Currency: in.Currency, Token: in.Token,
		OrderID: in.OrderID, Description: in.Description, Resume: activity.GetInfo(ctx).Attempt > 1,
		CustomerRef: in.CustomerRef, OffSession: in.OffSession, CartRef: cartRef,
		// The ledger is authoritative on which payment this key made; a provider search may lag.
		PaymentRef: row.ProviderRef,
		Created: func(ctx context.Context, paymentRef string) error {
			return a.Store.RecordProviderPayment(ctx, in.IdempotencyKey, paymentRef)
		},
	}
	res, err := gw.Charge(ctx, req)
	call := providerCall[billing.ChargeResult]{asked: true, res: res, err: err}
	a.recordHealth(ctx, in.Provider, err)
	a.recordDecline(ctx, in.Provider, fingerprint, err)
	if err != nil {
		return call, a.failed(ctx, log, in.IdempotencyKey, err, "", in.KeepOrderOpen)
	}
	if res.Action != nil && in.OffSession {
		// Nobody is there to authenticate an off-session charge: the bank's request is a decline.
		return call, a.failed(ctx, log, in.IdempotencyKey, &billing.DeclineError{
			Code: "authentication_required", DeclineCode: "authentication_required",
			Message: "your bank asks you to authenticate this payment; please update your payment method",
		}, "", in.KeepOrderOpen)
	}
	if res.Action != nil {
		// No money has moved: the customer must authenticate first, and the workflow waits for it.
		if err := a.Store.MarkRequiresAction(ctx, in.IdempotencyKey, res.ProviderRef); err != nil {
			return call, err
		}
		log.InfoContext(ctx, "charge waits for customer authentication", "provider_ref", res.ProviderRef, "action", res.Action.Type)
		return call, nil
	}
	err = a.Store.SettlePayment(ctx, in.IdempotencyKey, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: res.ProviderRef})
	if errors.Is(err, store.ErrPaymentRefTaken) {
		// Another order is paid with this very provider payment: no new money moved for this
		// one, and retrying could never make the payment this order's.
		log.ErrorContext(ctx, "provider payment already belongs to another order", "provider_ref", res.ProviderRef)
		return call, a.failed(ctx, log, in.IdempotencyKey, &billing.RejectedError{Code: "payment_already_used",
			Message: "this payment was already used for another purchase"}, "", in.KeepOrderOpen)
	}
	if err != nil {
		// The money moved; the retry finds the payment through the ledger's ref and records it then.
		return call, err
	}
	log.InfoContext(ctx, "charge succeeded", "provider_ref", res.ProviderRef)
	return call, nil
}

// chargeRefused makes the ledger's refusals of a charge attempt final: an order paid already,
// a subscription that can no longer be renewed, an order that cannot be charged. Nothing was
// asked of the provider.
func chargeRefused(err error) error {
	switch {
	case errors.Is(err, store.ErrAlreadyPaid):
		return final(err.Error(), ErrTypeOrderState, err, domain.Failure{Code: "order_already_paid", Message: "this order has been paid already"})
	case errors.Is(err, store.ErrNotRenewable):
		return final(err.Error(), ErrTypeSubscriptionState, err, domain.Failure{Code: "subscription_canceled",
			Message: "the subscription was canceled, so the renewal was not charged"})
	}
	return orderStateError(err)
}

// recordedRefusal rebuilds, from its ledger row, a refusal the provider gave this charge before,
// for the customer the way a fresh one is told: a row with a decline code, or a card error
// code, was a decline; anything else a rejection.
func recordedRefusal(p store.Payment) error {
	d := &billing.DeclineError{Code: p.FailureCode, DeclineCode: p.DeclineCode, Message: genericDeclineMessage}
	if p.DeclineCode != "" || p.FailureCode == "card_declined" || d.Hard() {
		return d
	}
	return &billing.RejectedError{Code: p.FailureCode, Message: "the payment was refused"}
}

// RefundInput is one refund of an order's charge.
type RefundInput struct {
	OrderID  string `json:"order_id"`
	Provider string `json:"provider"`
	// PaymentRef is the provider's payment, when the charge's outcome is known.
	PaymentRef string `json:"payment_ref,omitempty"`
	// ChargeKey is the charge's idempotency key, to find a payment whose outcome is unknown.
	ChargeKey string `json:"charge_key"`
	// ChargeToken is the storefront token the charge used, which some providers find a payment by.
	ChargeToken    string `json:"charge_token,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	// Reason is recorded on the order: why it was refunded. Empty for a refund staff asked for,
	// which leaves the order's failure fields alone.
	Reason domain.Failure `json:"reason"`
	// Requested marks a refund that staff asked for after the purchase: it may be partial, and
	// it is refused when it and every other refund would exceed what was captured.
	Requested bool `json:"requested,omitempty"`
}

// Refund returns an order's payment and records it in the ledger and on the order. When no
// payment succeeded (a charge whose outcome was unknown) it reports NothingCharged and the
// ledger shows the attempt as failed with code nothing_charged.
func (a *Activities) Refund(ctx context.Context, in RefundInput) (RefundResult, error) {
	call, err := a.refund(ctx, in)
	a.observeRefund(ctx, in, call, err)
	return refundResultOf(call.res), err
}

// refund is Refund's business: the ledger, the provider call and the order. It returns the
// provider's answer and the activity's error.
func (a *Activities) refund(ctx context.Context, in RefundInput) (providerCall[billing.RefundResult], error) {
	attempt := store.PaymentAttempt{
		OrderID: in.OrderID, Kind: domain.PaymentRefund, Provider: in.Provider,
		IdempotencyKey: in.IdempotencyKey, Amount: in.Amount, Currency: in.Currency,
	}
	var gw billing.Gateway
	var err error
	if in.Requested {
		// A refund staff asked for is checked against what was captured as it is recorded.
		if gw, err = a.gateway(in.Provider); err == nil {
			err = refundRefused(a.Store.BeginRefund(ctx, attempt))
		}
	} else {
		gw, err = a.begin(ctx, attempt)
	}
	if err != nil {
		return providerCall[billing.RefundResult]{}, err
	}
	paymentRef, err := a.chargedPayment(ctx, in)
	if err != nil {
		return providerCall[billing.RefundResult]{}, err
	}
	stop := a.heartbeat(ctx)
	res, err := gw.Refund(ctx, billing.RefundRequest{
		IdempotencyKey: in.IdempotencyKey, PaymentRef: paymentRef, ChargeKey: in.ChargeKey, ChargeToken: in.ChargeToken,
		Amount: in.Amount, Currency: in.Currency,
	})
	stop()
	call := providerCall[billing.RefundResult]{asked: true, res: res, err: err}
	log := a.logger(ctx).With("order_id", in.OrderID, "provider", in.Provider)
	if err != nil {
		return call, a.failed(ctx, log, in.IdempotencyKey, err, ErrTypeRefundRejected, false)
	}
	if res.NothingCharged {
		nothing := domain.Failure{Code: "nothing_charged", Message: "no successful payment was found to refund"}
		return call, a.Store.SettlePayment(ctx, in.IdempotencyKey, store.PaymentOutcome{Status: domain.PaymentFailed, Failure: &nothing})
	}
	var reason *domain.Failure
	if in.Reason.Code != "" {
		reason = &in.Reason
	}
	if err := a.Store.SettlePayment(ctx, in.IdempotencyKey, store.PaymentOutcome{
		Status: domain.PaymentSucceeded, ProviderRef: res.ProviderRef, OrderReason: reason,
	}); err != nil {
		return call, err
	}
	log.InfoContext(ctx, "refund succeeded", "provider_ref", res.ProviderRef, "amount", res.Amount)
	return call, nil
}

// chargedPayment is the provider payment a refund returns: the one the workflow knew, or, after
// a charge whose outcome was unknown, the one the charge's ledger row records (made by the
// provider before any money could move on it). The ledger is authoritative, so the gateway
// decides from that payment whether anything was charged; only without one does it fall back
// to looking the charge up by its key (or, for PayPal, through the charge's token).
func (a *Activities) chargedPayment(ctx context.Context, in RefundInput) (string, error) {
	if in.PaymentRef != "" || in.ChargeKey == "" {
		return in.PaymentRef, nil
	}
	charge, err := a.Store.PaymentByKey(ctx, in.ChargeKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return charge.ProviderRef, nil
}

// chargeOutcome names a provider call's outcome for the business counters.
func chargeOutcome(res billing.ChargeResult, err error) string {
	var d *billing.DeclineError
	var r *billing.RejectedError
	switch {
	case err == nil && res.Action != nil:
		return "requires_action"
	case err == nil:
		return "succeeded"
	case errors.As(err, &d):
		return "declined"
	case errors.As(err, &r):
		return "rejected"
	}
	return "error"
}

// recordHealth counts the provider call's technical outcome for the card processors' circuit
// breaker: only a technical failure (timeout, 5xx, network) counts against the provider; a
// decline or a refusal says nothing about its health. That includes a malformed request: the
// provider answered correctly, the fault is cartflow's, and opening the breaker would only stop
// the well-formed payments too. Counting is best-effort: it never fails the payment.
func (a *Activities) recordHealth(ctx context.Context, provider string, err error) {
	healthy := err == nil || billing.IsFinal(err)
	if herr := a.Store.RecordProviderOutcome(context.WithoutCancel(ctx), provider, healthy); herr != nil {
		a.logger(ctx).WarnContext(ctx, "provider health not recorded", "error", herr)
	}
}

// refundRefused makes a refund the ledger refuses final.
func refundRefused(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrOverRefund):
		return final(err.Error(), ErrTypeRefundRejected, err, domain.Failure{Code: "refund_exceeds_captured",
			Message: "the refund would return more than was captured"})
	case errors.Is(err, store.ErrTransition):
		return final(err.Error(), ErrTypeRefundRejected, err, domain.Failure{Code: "order_not_refundable", Message: "this order has no payment to refund"})
	case errors.Is(err, store.ErrNotFound):
		return final(err.Error(), ErrTypeRefundRejected, err, domain.Failure{Code: "order_not_found", Message: "no such order"})
	}
	return err
}

// gateway returns the provider's gateway; an unknown provider is final.
func (a *Activities) gateway(provider string) (billing.Gateway, error) {
	gw, ok := a.Gateways[provider]
	if !ok {
		err := fmt.Errorf("no gateway for provider %q", provider)
		return nil, final(err.Error(), ErrTypeUnknownProvider, err, domain.Failure{Code: "unknown_provider", Message: "this payment provider is not available"})
	}
	return gw, nil
}

// begin finds a refund's gateway and records the attempt in the ledger before the provider is called.
func (a *Activities) begin(ctx context.Context, attempt store.PaymentAttempt) (billing.Gateway, error) {
	gw, err := a.gateway(attempt.Provider)
	if err != nil {
		return nil, err
	}
	return gw, orderStateError(a.Store.BeginPayment(ctx, attempt))
}

// failed handles a provider error. A final one is recorded in the ledger and returned as a
// non-retryable error (of errType, or by its class when errType is empty); any other is
// returned as it is, for Temporal to retry under the same idempotency key. keepOrderOpen
// leaves the order charging after a refusal, for a renewal that will retry with a new key.
func (a *Activities) failed(ctx context.Context, log *slog.Logger, key string, err error, errType string, keepOrderOpen bool) error {
	failure, class, ok := finalPaymentFailure(err)
	if !ok {
		log.WarnContext(ctx, "provider call failed, will retry", "error", err)
		return err
	}
	if errType == "" {
		errType = class
	}
	outcome := store.PaymentOutcome{Status: domain.PaymentFailed, Failure: &failure, KeepOrderOpen: keepOrderOpen}
	var d *billing.DeclineError
	if errors.As(err, &d) {
		// The ledger, and so staff, keep the bank's real reason; the order shows the customer's.
		real := domain.Failure{Code: d.Code, DeclineCode: d.DeclineCode, Message: d.Message}
		if real != failure {
			outcome.Failure, outcome.CustomerFailure = &real, &failure
		}
	}
	if class == ErrTypePaymentRequestInvalid {
		// The failure hides the provider's code and message from the customer; the log keeps them.
		log.ErrorContext(ctx, "provider refused a malformed request", "type", errType, "error", err)
	} else {
		log.InfoContext(ctx, "provider refused", "code", outcome.Failure.Code, "decline_code", outcome.Failure.DeclineCode, "type", errType)
	}
	if serr := a.Store.SettlePayment(ctx, key, outcome); serr != nil {
		return serr
	}
	return final(failure.Message, errType, err, failure)
}

// finalPaymentFailure reports whether err is final and, if so, the failure the customer is told
// (on the order, and as the error's details) and the application error type to raise.
func finalPaymentFailure(err error) (domain.Failure, string, bool) {
	var d *billing.DeclineError
	if errors.As(err, &d) {
		errType := ErrTypeCardDeclined
		if d.Hard() {
			errType = ErrTypeCardDeclinedHard
		}
		// Hard or soft is the bank's real reason, whatever the customer is told.
		return customerDecline(d), errType, true
	}
	var r *billing.RejectedError
	if errors.As(err, &r) && r.Malformed {
		// The provider's message is written for developers and may name cartflow's parameters:
		// the customer gets a generic failure, and the team gets the provider's error as the
		// cause of a reported (not expected) error type.
		return invalidPaymentRequest, ErrTypePaymentRequestInvalid, true
	}
	if errors.As(err, &r) {
		return domain.Failure{Code: r.Code, Message: r.Message}, ErrTypePaymentRejected, true
	}
	return domain.Failure{}, "", false
}

// invalidPaymentRequest is what the customer is told about a payment request cartflow built wrong.
var invalidPaymentRequest = domain.Failure{Code: "payment_request_invalid", Message: "the payment could not be completed"}

// genericDeclineMessage is Stripe's message for a plain card_declined.
const genericDeclineMessage = "Your card was declined."

// undisclosedDeclines are the decline codes that Stripe's decline-code reference
// (https://docs.stripe.com/declines/codes) says not to report to the customer, presenting them
// as a generic decline instead: telling a fraudster that the card is known to be stolen helps
// only the fraudster. Other providers' declines are mapped onto the same codes.
var undisclosedDeclines = map[string]bool{
	"fraudulent":         true,
	"lost_card":          true,
	"merchant_blacklist": true,
	"pickup_card":        true,
	"restricted_card":    true,
	"security_violation": true,
	"stolen_card":        true,
}

// customerDecline is what the customer is told of a decline: a fraud-coded one is a plain
// card_declined with Stripe's generic message and decline code, exactly what an ordinary decline
// looks like; any other is the provider's own code and customer message.
func customerDecline(d *billing.DeclineError) domain.Failure {
	if undisclosedDeclines[d.Code] || undisclosedDeclines[d.DeclineCode] {
		return domain.Failure{Code: "card_declined", DeclineCode: "generic_decline", Message: genericDeclineMessage}
	}
	return domain.Failure{Code: d.Code, DeclineCode: d.DeclineCode, Message: d.Message}
}
