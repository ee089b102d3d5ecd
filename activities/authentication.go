package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// Outcomes of a payment that waited for customer authentication.
const (
	AuthenticationSucceeded = "succeeded"
	AuthenticationPending   = "requires_action"
	AuthenticationExpired   = "expired"
)

// AuthenticationInput names a charge that waits for the customer to authenticate.
type AuthenticationInput struct {
	OrderID    string `json:"order_id"`
	Provider   string `json:"provider"`
	PaymentRef string `json:"payment_ref"`
	// ChargeKey is the charge's idempotency key, which names its ledger row.
	ChargeKey string `json:"charge_key"`
}

// AuthenticationResult is where an authenticating payment stands.
type AuthenticationResult struct {
	// Status is one of the Authentication* constants.
	Status string `json:"status"`
}

// VerifyAuthentication asks the provider where a payment that waited for authentication stands,
// whoever said it was done (the storefront or a webhook): the provider's word is the only one
// that settles it. A payment that succeeded is recorded and the order is paid; one whose
// authentication failed is a final decline and the order fails; one still waiting changes nothing.
func (a *Activities) VerifyAuthentication(ctx context.Context, in AuthenticationInput) (AuthenticationResult, error) {
	res, err := a.verifyAuthentication(ctx, in)
	a.observeAuthentication(ctx, in, res, err)
	return res, err
}

func (a *Activities) verifyAuthentication(ctx context.Context, in AuthenticationInput) (AuthenticationResult, error) {
	gw, err := a.authenticating(in.Provider)
	if err != nil {
		return AuthenticationResult{}, err
	}
	res, err := gw.PaymentOutcome(ctx, in.PaymentRef)
	log := a.logger(ctx).With("order_id", in.OrderID, "provider", in.Provider, "provider_ref", in.PaymentRef)
	if err != nil {
		return AuthenticationResult{}, a.failed(ctx, log, in.ChargeKey, err, "", false)
	}
	if res.Action != nil {
		return AuthenticationResult{Status: AuthenticationPending}, nil
	}
	if err := a.Store.SettlePayment(ctx, in.ChargeKey, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: res.ProviderRef}); err != nil {
		return AuthenticationResult{}, err
	}
	log.InfoContext(ctx, "authenticated payment succeeded")
	return AuthenticationResult{Status: AuthenticationSucceeded}, nil
}

// authenticationTimeout is what an order that expired waiting for authentication says.
var authenticationTimeout = domain.Failure{Code: "authentication_timeout",
	Message: "the payment was not authenticated in time and has been canceled; nothing was charged"}

// ExpireAuthentication cancels a payment whose customer did not authenticate in time, and the
// order expires. If the payment succeeded just before the cancel reached the provider, it is
// recorded as paid instead and the checkout goes on.
func (a *Activities) ExpireAuthentication(ctx context.Context, in AuthenticationInput) (AuthenticationResult, error) {
	res, err := a.expireAuthentication(ctx, in)
	a.observeExpiry(res, err)
	return res, err
}

func (a *Activities) expireAuthentication(ctx context.Context, in AuthenticationInput) (AuthenticationResult, error) {
	gw, err := a.authenticating(in.Provider)
	if err != nil {
		return AuthenticationResult{}, err
	}
	err = gw.CancelPayment(ctx, in.PaymentRef, in.ChargeKey+"/cancel")
	if errors.Is(err, billing.ErrAlreadySucceeded) {
		return a.VerifyAuthentication(ctx, in)
	}
	if err != nil {
		return AuthenticationResult{}, err
	}
	if err := a.Store.SettlePayment(ctx, in.ChargeKey, store.PaymentOutcome{Status: domain.PaymentFailed, Expire: true,
		Failure: &authenticationTimeout}); err != nil {
		return AuthenticationResult{}, err
	}
	a.logger(ctx).InfoContext(ctx, "payment canceled after the authentication timeout", "order_id", in.OrderID)
	return AuthenticationResult{Status: AuthenticationExpired}, nil
}

func (a *Activities) authenticating(provider string) (billing.AuthenticatingGateway, error) {
	gw, err := a.gateway(provider)
	if err != nil {
		return nil, err
	}
	auth, ok := gw.(billing.AuthenticatingGateway)
	if !ok {
		err := fmt.Errorf("provider %q has no customer authentication", provider)
		return nil, final(err.Error(), ErrTypeUnknownProvider, err, domain.Failure{Code: "unknown_provider", Message: err.Error()})
	}
	return auth, nil
}

// RecordProviderEvent stores a webhook event once and applies it to its order.
func (a *Activities) RecordProviderEvent(ctx context.Context, in domain.WebhookEvent) (AppliedEvent, error) {
	applied, err := a.Store.RecordProviderEvent(ctx, in)
	if err == nil {
		a.logger(ctx).InfoContext(ctx, "provider event recorded", "provider", in.Provider, "event_id", in.ID, "type", in.Type,
			"order_id", applied.OrderID, "duplicate", applied.Duplicate)
	}
	return appliedEventOf(applied), err
}
