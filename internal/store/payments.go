package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Payment kinds in the ledger.
const (
	PaymentCharge = "charge"
	PaymentRefund = "refund"
)

// Payment statuses in the ledger.
const (
	PaymentPending   = "pending"
	PaymentSucceeded = "succeeded"
	PaymentFailed    = "failed"
)

// PaymentAttempt is a charge or refund about to be sent to a provider.
type PaymentAttempt struct {
	OrderID        string
	Kind           string
	Provider       string
	IdempotencyKey string
	Amount         int64
	Currency       string
}

// PaymentOutcome is what the provider answered for an attempt.
type PaymentOutcome struct {
	Status      string
	ProviderRef string
	// Failure is the provider's reason for a failed attempt.
	Failure *Failure
	// OrderReason, for a refund, records why the order was refunded.
	OrderReason *Failure
	// KeepOrderOpen leaves the order charging when a charge fails, because another attempt with a
	// new key will follow: a renewal in dunning.
	KeepOrderOpen bool
}

// Payment is one ledger row.
type Payment struct {
	OrderID        string
	Kind           string
	Provider       string
	IdempotencyKey string
	Amount         int64
	Currency       string
	Status         string
	ProviderRef    string
	FailureCode    string
	DeclineCode    string
	Attempts       int
}

// BeginPayment records an attempt in the ledger before the provider is called. A retry of the
// same attempt (same idempotency key) counts another try on the same row. Beginning a charge
// moves the order to charging.
func (s *Store) BeginPayment(ctx context.Context, a PaymentAttempt) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending')
			ON CONFLICT (idempotency_key) DO UPDATE SET attempts = payments.attempts + 1, updated_at = now()`,
			a.OrderID, a.Kind, a.Provider, a.IdempotencyKey, a.Amount, a.Currency); err != nil {
			return fmt.Errorf("record %s attempt: %w", a.Kind, err)
		}
		if a.Kind != PaymentCharge {
			return nil
		}
		err := moveOrder(ctx, tx, a.OrderID, StatusCharging, "")
		if !errors.Is(err, ErrTransition) {
			return err
		}
		// A retry after the outcome was already recorded: the order has moved on, which is fine,
		// unless cleanup expired it as abandoned, which must never be charged.
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, a.OrderID).Scan(&status); err != nil {
			return fmt.Errorf("read order %s: %w", a.OrderID, err)
		}
		if status == "expired" {
			return fmt.Errorf("charge order %s: it expired as abandoned: %w", a.OrderID, ErrTransition)
		}
		return nil
	})
}

// SettlePayment records the provider's answer for an attempt and moves the order to match: a
// charge that succeeded makes it paid, one that failed makes it failed, a refund makes it
// refunded. Settling an attempt twice changes nothing the second time.
func (s *Store) SettlePayment(ctx context.Context, idempotencyKey string, out PaymentOutcome) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var code, decline *string
		if out.Failure != nil {
			code, decline = &out.Failure.Code, nilIfEmpty(out.Failure.DeclineCode)
		}
		var orderID, kind string
		var amount int64
		err := tx.QueryRow(ctx, `
			UPDATE payments SET status = $2, provider_ref = nullif($3, ''), failure_code = $4, decline_code = $5, updated_at = now()
			WHERE idempotency_key = $1 AND status = 'pending'
			RETURNING order_id::text, kind, amount`,
			idempotencyKey, out.Status, out.ProviderRef, code, decline).Scan(&orderID, &kind, &amount)
		if errors.Is(err, pgx.ErrNoRows) {
			var status string
			if err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE idempotency_key = $1`, idempotencyKey).Scan(&status); err != nil {
				return fmt.Errorf("settle payment %s: %w", idempotencyKey, err)
			}
			if status != out.Status {
				return fmt.Errorf("settle payment %s as %s: already %s", idempotencyKey, out.Status, status)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("settle payment %s: %w", idempotencyKey, err)
		}

		switch {
		case kind == PaymentCharge && out.Status == PaymentSucceeded:
			return moveOrder(ctx, tx, orderID, StatusPaid, `, provider_payment_ref = $3`, out.ProviderRef)
		case kind == PaymentCharge && out.Status == PaymentFailed && out.KeepOrderOpen:
			return nil
		case kind == PaymentCharge && out.Status == PaymentFailed:
			f := failureOrUnknown(out.Failure)
			return moveOrder(ctx, tx, orderID, StatusFailed, `, failure_code = $3, failure_message = $4, decline_code = $5`,
				f.Code, f.Message, nilIfEmpty(f.DeclineCode))
		case kind == PaymentRefund && out.Status == PaymentSucceeded:
			f := failureOrUnknown(out.OrderReason)
			return moveOrder(ctx, tx, orderID, StatusRefunded,
				`, refunded_amount = refunded_amount + $3, failure_code = $4, failure_message = $5`, amount, f.Code, f.Message)
		}
		return nil
	})
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func failureOrUnknown(f *Failure) Failure {
	if f == nil {
		return Failure{Code: "unknown", Message: "the payment did not go through"}
	}
	return *f
}

// PaymentsForOrder lists an order's ledger rows, oldest first.
func (s *Store) PaymentsForOrder(ctx context.Context, orderID string) ([]Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT order_id::text, kind, provider, idempotency_key, amount, currency, status,
		coalesce(provider_ref, ''), coalesce(failure_code, ''), coalesce(decline_code, ''), attempts FROM payments WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("query payments: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Payment])
}
