package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/jackc/pgx/v5"
)

// PaymentAttempt is a charge or refund about to be sent to a provider.
type PaymentAttempt struct {
	OrderID        string
	Kind           domain.PaymentKind
	Provider       string
	IdempotencyKey string
	Amount         int64
	Currency       string
}

// PaymentOutcome is what the provider answered for an attempt.
type PaymentOutcome struct {
	Status      domain.PaymentStatus
	ProviderRef string
	// Failure is the provider's reason for a failed attempt.
	Failure *domain.Failure
	// OrderReason, for a refund, records why the order was refunded.
	OrderReason *domain.Failure
	// KeepOrderOpen leaves the order charging when a charge fails, because another attempt with a
	// new key will follow: a renewal in dunning.
	KeepOrderOpen bool
	// Expire makes a failed charge expire the order instead of failing it: the customer never
	// finished authenticating, so the checkout was abandoned rather than declined.
	Expire bool
}

// Payment is one ledger row.
type Payment struct {
	OrderID        string
	Kind           domain.PaymentKind
	Provider       string
	IdempotencyKey string
	Amount         int64
	Currency       string
	Status         domain.PaymentStatus
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
		if a.Kind != domain.PaymentCharge {
			return nil
		}
		err := moveOrder(ctx, tx, a.OrderID, domain.OrderCharging, "")
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
		var orderID string
		var kind domain.PaymentKind
		var amount int64
		err := tx.QueryRow(ctx, `
			UPDATE payments SET status = $2, provider_ref = nullif($3, ''), failure_code = $4, decline_code = $5, updated_at = now()
			WHERE idempotency_key = $1 AND status = 'pending'
			RETURNING order_id::text, kind, amount`,
			idempotencyKey, out.Status, out.ProviderRef, code, decline).Scan(&orderID, &kind, &amount)
		if errors.Is(err, pgx.ErrNoRows) {
			var status domain.PaymentStatus
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
		case kind == domain.PaymentCharge && out.Status == domain.PaymentSucceeded:
			return moveOrder(ctx, tx, orderID, domain.OrderPaid, `, provider_payment_ref = $3`, out.ProviderRef)
		case kind == domain.PaymentCharge && out.Status == domain.PaymentFailed && out.KeepOrderOpen:
			return nil
		case kind == domain.PaymentCharge && out.Status == domain.PaymentFailed && out.Expire:
			f := failureOrUnknown(out.Failure)
			return moveOrder(ctx, tx, orderID, domain.OrderExpired, `, failure_code = $3, failure_message = $4`, f.Code, f.Message)
		case kind == domain.PaymentCharge && out.Status == domain.PaymentFailed:
			f := failureOrUnknown(out.Failure)
			return moveOrder(ctx, tx, orderID, domain.OrderFailed, `, failure_code = $3, failure_message = $4, decline_code = $5`,
				f.Code, f.Message, nilIfEmpty(f.DeclineCode))
		case kind == domain.PaymentRefund && out.Status == domain.PaymentSucceeded:
			return recordRefund(ctx, tx, orderID, amount, out.OrderReason)
		}
		return nil
	})
}

// recordRefund adds a refund that succeeded to the order: refunded once all of it came back,
// partially refunded before that. reason, when set, says why on the order (a compensation);
// a refund staff asked for leaves the order's failure fields alone.
func recordRefund(ctx context.Context, tx pgx.Tx, orderID string, amount int64, reason *domain.Failure) error {
	var total, refunded int64
	if err := tx.QueryRow(ctx, `SELECT total_amount, refunded_amount FROM orders WHERE id = $1 FOR UPDATE`, orderID).Scan(&total, &refunded); err != nil {
		return fmt.Errorf("read order %s: %w", orderID, err)
	}
	to := domain.OrderRefunded
	if refunded+amount < total {
		to = domain.OrderPartiallyRefunded
	}
	if reason == nil {
		return moveOrder(ctx, tx, orderID, to, `, refunded_amount = refunded_amount + $3`, amount)
	}
	return moveOrder(ctx, tx, orderID, to, `, refunded_amount = refunded_amount + $3, failure_code = $4, failure_message = $5`,
		amount, reason.Code, reason.Message)
}

// ErrOverRefund means a refund would return more than the order's payment captured.
var ErrOverRefund = errors.New("the refund would exceed what was captured")

// BeginRefund records a refund attempt in the ledger after checking, with the order locked,
// that it and every other refund that succeeded or is still in flight stay within what was
// captured. A retry of the same attempt (same key) counts another try on its row. It returns
// ErrOverRefund, and records nothing, when the amount does not fit; ErrTransition when the
// order was never paid.
func (s *Store) BeginRefund(ctx context.Context, a PaymentAttempt) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var status domain.OrderStatus
		var total int64
		if err := tx.QueryRow(ctx, `SELECT status, total_amount FROM orders WHERE id = $1 FOR UPDATE`, a.OrderID).Scan(&status, &total); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return fmt.Errorf("read order %s: %w", a.OrderID, err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payments WHERE idempotency_key = $1)`, a.IdempotencyKey).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			switch status {
			case domain.OrderPaid, domain.OrderCompleted, domain.OrderPartiallyRefunded:
			default:
				return fmt.Errorf("refund order %s in status %s: %w", a.OrderID, status, ErrTransition)
			}
			var committed int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM payments
				WHERE order_id = $1 AND kind = 'refund' AND status IN ('pending', 'succeeded')`, a.OrderID).Scan(&committed); err != nil {
				return fmt.Errorf("sum refunds: %w", err)
			}
			if a.Amount <= 0 || committed+a.Amount > total {
				return fmt.Errorf("refund %d of order %s with %d of %d already refunded or in flight: %w", a.Amount, a.OrderID, committed, total, ErrOverRefund)
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status)
			VALUES ($1, 'refund', $2, $3, $4, $5, 'pending')
			ON CONFLICT (idempotency_key) DO UPDATE SET attempts = payments.attempts + 1, updated_at = now()`,
			a.OrderID, a.Provider, a.IdempotencyKey, a.Amount, a.Currency)
		return err
	})
}

// MarkRequiresAction records that a charge waits for the customer to authenticate: the ledger
// row keeps its pending status and learns the provider's payment, and the order says so.
func (s *Store) MarkRequiresAction(ctx context.Context, idempotencyKey, providerRef string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var orderID string
		if err := tx.QueryRow(ctx, `UPDATE payments SET provider_ref = $2, updated_at = now()
			WHERE idempotency_key = $1 AND status = 'pending' RETURNING order_id::text`, idempotencyKey, providerRef).Scan(&orderID); err != nil {
			return fmt.Errorf("mark %s as waiting for authentication: %w", idempotencyKey, err)
		}
		return moveOrder(ctx, tx, orderID, domain.OrderRequiresAction, `, provider_payment_ref = $3`, providerRef)
	})
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func failureOrUnknown(f *domain.Failure) domain.Failure {
	if f == nil {
		return domain.Failure{Code: "unknown", Message: "the payment did not go through"}
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
