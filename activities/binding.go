package activities

import (
	"context"
	"errors"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/store"
)

// boundProviders are the providers whose payment token is an order that cartflow created
// server-side (POST /api/v1/paypal/orders) and bound to a cart: PayPal's order id.
var boundProviders = map[string]bool{billing.ProviderPayPal: true}

// claimCartRef gives the provider order in the charge's token to the charge's order, before the
// provider is called, and returns the cart reference the order must carry. A provider order
// cartflow never created (the buyer's browser can create one with any amount), one that pays for
// another order already, or one created for another amount is a final refusal, recorded in the
// ledger and on the order like a provider's: nothing is charged. Other providers have no binding.
func (a *Activities) claimCartRef(ctx context.Context, in ChargeInput) (string, error) {
	if !boundProviders[in.Provider] {
		return "", nil
	}
	ref, err := a.Store.ClaimProviderOrder(ctx, in.Provider, in.Token, in.OrderID, in.Amount, in.Currency)
	var refusal *billing.RejectedError
	switch {
	case errors.Is(err, store.ErrProviderOrderUnknown):
		refusal = &billing.RejectedError{Code: "paypal_order_unknown", Message: "this PayPal payment was not started by this shop; please pay again from the cart"}
	case errors.Is(err, store.ErrProviderOrderClaimed):
		refusal = &billing.RejectedError{Code: "payment_already_used", Message: "this PayPal payment was already used for another purchase; please start again in PayPal"}
	case errors.Is(err, store.ErrProviderOrderAmount):
		refusal = &billing.RejectedError{Code: "amount_mismatch", Message: "the PayPal payment does not match the order total"}
	case err != nil:
		// The database did not answer: retried, and nothing was sent to the provider.
		return "", err
	default:
		return ref, nil
	}
	log := a.logger(ctx).With("order_id", in.OrderID, "provider", in.Provider)
	return "", a.failed(ctx, log, in.IdempotencyKey, refusal, "", in.KeepOrderOpen)
}
