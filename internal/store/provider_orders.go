package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cartflow/cartflow/internal/store/db"
)

// ProviderOrder is a provider order cartflow created server-side for the buyer to approve (a
// PayPal order), bound to a cart reference that the order carries as its custom_id.
type ProviderOrder struct {
	Provider        string
	ProviderOrderID string
	CartRef         string
	// Amount, in minor units of Currency, is the cart's price when the order was created.
	Amount   int64
	Currency string
}

// Errors of ClaimProviderOrder: each is a final refusal of the charge.
var (
	// ErrProviderOrderUnknown is a provider order cartflow never created: the buyer's browser
	// can create one with any amount, so it is never charged.
	ErrProviderOrderUnknown = errors.New("the provider order was not created by cartflow")
	// ErrProviderOrderClaimed is a provider order that another order charges already.
	ErrProviderOrderClaimed = errors.New("the provider order pays for another order")
	// ErrProviderOrderAmount is a provider order created for another amount or currency.
	ErrProviderOrderAmount = errors.New("the provider order was created for another amount")
)

// ErrPaymentRefTaken is a provider payment that the ledger already records for another
// order: two orders can never name the same provider charge.
var ErrPaymentRefTaken = errors.New("the provider payment is already recorded for another order")

// BindProviderOrder records a provider order cartflow created. Recording the same provider
// order again returns it as first recorded, so a repeated request can compare it with its own.
func (s *Store) BindProviderOrder(ctx context.Context, o ProviderOrder) (ProviderOrder, error) {
	r, err := s.q.BindProviderOrder(ctx, db.BindProviderOrderParams{
		Provider: o.Provider, ProviderOrderID: o.ProviderOrderID, CartRef: o.CartRef, Amount: o.Amount, Currency: o.Currency,
	})
	if err != nil {
		return ProviderOrder{}, fmt.Errorf("bind %s order %s: %w", o.Provider, o.ProviderOrderID, err)
	}
	return ProviderOrder{Provider: r.Provider, ProviderOrderID: r.ProviderOrderID, CartRef: r.CartRef, Amount: r.Amount, Currency: r.Currency}, nil
}

// ClaimProviderOrder gives the provider order to orderID, which charges amount of currency with
// it, and returns its cart reference. Claiming it again for the same order (a retry) succeeds.
// It returns ErrProviderOrderUnknown, ErrProviderOrderClaimed or ErrProviderOrderAmount when
// the order may not charge it.
func (s *Store) ClaimProviderOrder(ctx context.Context, provider, providerOrderID, orderID string, amount int64, currency string) (string, error) {
	r, err := s.q.ClaimProviderOrder(ctx, db.ClaimProviderOrderParams{
		OrderID: orderID, Provider: provider, ProviderOrderID: providerOrderID, Amount: amount, Currency: currency,
	})
	switch {
	case errors.Is(notFound(err), ErrNotFound):
		return "", fmt.Errorf("%s order %s: %w", provider, providerOrderID, ErrProviderOrderUnknown)
	case err != nil:
		return "", fmt.Errorf("claim %s order %s: %w", provider, providerOrderID, err)
	case r.Claimed:
		return r.CartRef, nil
	case r.Amount != amount || r.Currency != currency:
		return "", fmt.Errorf("%s order %s is for %d %s, not %d %s: %w", provider, providerOrderID, r.Amount, r.Currency, amount, currency, ErrProviderOrderAmount)
	}
	return "", fmt.Errorf("%s order %s: %w", provider, providerOrderID, ErrProviderOrderClaimed)
}

// paymentRefIndexes are the unique indexes by which no two orders, and no two charges in the
// ledger, name the same provider payment (migration 004).
var paymentRefIndexes = map[string]bool{"orders_provider_payment_ref_key": true, "payments_charge_provider_ref_key": true}

// paymentRefTaken turns a write refused by one of paymentRefIndexes into ErrPaymentRefTaken,
// and returns any other error as it is.
func paymentRefTaken(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && paymentRefIndexes[pgErr.ConstraintName] {
		return fmt.Errorf("%w: %s", ErrPaymentRefTaken, pgErr.ConstraintName)
	}
	return err
}
