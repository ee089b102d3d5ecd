package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
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

// Payment is one ledger row: the attempt, and what came of it.
type Payment struct {
	PaymentAttempt
	Status      domain.PaymentStatus
	ProviderRef string
	FailureCode string
	DeclineCode string
	Attempts    int
}

func paymentFrom(r db.Payment) Payment {
	return Payment{
		PaymentAttempt: PaymentAttempt{
			OrderID: r.OrderID, Kind: r.Kind, Provider: r.Provider, IdempotencyKey: r.IdempotencyKey,
			Amount: r.Amount, Currency: r.Currency,
		},
		Status: r.Status, ProviderRef: deref(r.ProviderRef), FailureCode: deref(r.FailureCode),
		DeclineCode: deref(r.DeclineCode), Attempts: int(r.Attempts),
	}
}

func attemptParams(a PaymentAttempt) db.RecordPaymentAttemptParams {
	return db.RecordPaymentAttemptParams{
		OrderID: a.OrderID, Kind: a.Kind, Provider: a.Provider, IdempotencyKey: a.IdempotencyKey,
		Amount: a.Amount, Currency: a.Currency,
	}
}

// BeginPayment records an attempt in the ledger before the provider is called. A retry of the
// same attempt (same idempotency key) counts another try on the same row. Beginning a charge
// moves the order to charging.
func (s *Store) BeginPayment(ctx context.Context, a PaymentAttempt) error {
	return s.inTx(ctx, func(q *db.Queries) error {
		if err := q.RecordPaymentAttempt(ctx, attemptParams(a)); err != nil {
			return fmt.Errorf("record %s attempt: %w", a.Kind, err)
		}
		if a.Kind != domain.PaymentCharge {
			return nil
		}
		rows, err := q.MarkOrderCharging(ctx, a.OrderID)
		if err := moved(a.OrderID, domain.OrderCharging, rows, err); !errors.Is(err, ErrTransition) {
			return err
		}
		// A retry after the outcome was already recorded: the order has moved on, which is fine,
		// unless cleanup expired it as abandoned, which must never be charged.
		status, err := q.OrderStatus(ctx, a.OrderID)
		if err != nil {
			return fmt.Errorf("read order %s: %w", a.OrderID, err)
		}
		if status == domain.OrderExpired {
			return fmt.Errorf("charge order %s: it expired as abandoned: %w", a.OrderID, ErrTransition)
		}
		return nil
	})
}

// SettlePayment records the provider's answer for an attempt and moves the order to match: a
// charge that succeeded makes it paid, one that failed makes it failed, a refund makes it
// refunded. Settling an attempt twice changes nothing the second time. A charge whose provider
// payment another order holds already is ErrPaymentRefTaken.
func (s *Store) SettlePayment(ctx context.Context, idempotencyKey string, out PaymentOutcome) error {
	return paymentRefTaken(s.inTx(ctx, func(q *db.Queries) error {
		settle := db.SettlePaymentParams{IdempotencyKey: idempotencyKey, Status: out.Status, ProviderRef: out.ProviderRef}
		if out.Failure != nil {
			settle.FailureCode, settle.DeclineCode = &out.Failure.Code, &out.Failure.DeclineCode
		}
		p, err := q.SettlePayment(ctx, settle)
		if errors.Is(err, pgx.ErrNoRows) {
			status, err := q.PaymentStatus(ctx, idempotencyKey)
			if err != nil {
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

		charge, refund := p.Kind == domain.PaymentCharge, p.Kind == domain.PaymentRefund
		succeeded, failed := out.Status == domain.PaymentSucceeded, out.Status == domain.PaymentFailed
		switch {
		case charge && succeeded:
			rows, err := q.MarkOrderPaid(ctx, db.MarkOrderPaidParams{ID: p.OrderID, ProviderPaymentRef: out.ProviderRef})
			return moved(p.OrderID, domain.OrderPaid, rows, err)
		case charge && failed && out.KeepOrderOpen:
			return nil
		case charge && failed && out.Expire:
			f := failureOrUnknown(out.Failure)
			rows, err := q.ExpireOrder(ctx, db.ExpireOrderParams{ID: p.OrderID, FailureCode: f.Code, FailureMessage: f.Message})
			return moved(p.OrderID, domain.OrderExpired, rows, err)
		case charge && failed:
			f := failureOrUnknown(out.Failure)
			rows, err := q.FailOrderCharge(ctx, db.FailOrderChargeParams{
				ID: p.OrderID, FailureCode: f.Code, FailureMessage: f.Message, DeclineCode: f.DeclineCode,
			})
			return moved(p.OrderID, domain.OrderFailed, rows, err)
		case refund && succeeded:
			return recordRefund(ctx, q, p.OrderID, p.Amount, out.OrderReason)
		}
		return nil
	}))
}

// recordRefund adds a refund that succeeded to the order: refunded once all of it came back,
// partially refunded before that. reason, when set, says why on the order (a compensation);
// a refund staff asked for leaves the order's failure fields alone.
func recordRefund(ctx context.Context, q *db.Queries, orderID string, amount int64, reason *domain.Failure) error {
	o, err := q.LockOrder(ctx, orderID)
	if err != nil {
		return fmt.Errorf("read order %s: %w", orderID, err)
	}
	var code, message *string
	if reason != nil {
		code, message = &reason.Code, &reason.Message
	}
	if o.RefundedAmount+amount < o.TotalAmount {
		rows, err := q.PartiallyRefundOrder(ctx, db.PartiallyRefundOrderParams{
			ID: orderID, Amount: amount, FailureCode: code, FailureMessage: message,
		})
		return moved(orderID, domain.OrderPartiallyRefunded, rows, err)
	}
	rows, err := q.RefundOrder(ctx, db.RefundOrderParams{ID: orderID, Amount: amount, FailureCode: code, FailureMessage: message})
	return moved(orderID, domain.OrderRefunded, rows, err)
}

// ErrOverRefund means a refund would return more than the order's payment captured.
var ErrOverRefund = errors.New("the refund would exceed what was captured")

// BeginRefund records a refund attempt in the ledger after checking, with the order locked,
// that it and every other refund that succeeded or is still in flight stay within what was
// captured. A retry of the same attempt (same key) counts another try on its row. It returns
// ErrOverRefund, and records nothing, when the amount does not fit; ErrTransition when the
// order was never paid.
func (s *Store) BeginRefund(ctx context.Context, a PaymentAttempt) error {
	return s.inTx(ctx, func(q *db.Queries) error {
		o, err := q.LockOrder(ctx, a.OrderID)
		if err != nil {
			return readFailed(err, "order "+a.OrderID)
		}
		exists, err := q.PaymentExists(ctx, a.IdempotencyKey)
		if err != nil {
			return err
		}
		if !exists {
			switch o.Status {
			case domain.OrderPaid, domain.OrderCompleted, domain.OrderPartiallyRefunded:
			default:
				return fmt.Errorf("refund order %s in status %s: %w", a.OrderID, o.Status, ErrTransition)
			}
			committed, err := q.CommittedRefunds(ctx, a.OrderID)
			if err != nil {
				return fmt.Errorf("sum refunds: %w", err)
			}
			if a.Amount <= 0 || committed+a.Amount > o.TotalAmount {
				return fmt.Errorf("refund %d of order %s with %d of %d already refunded or in flight: %w",
					a.Amount, a.OrderID, committed, o.TotalAmount, ErrOverRefund)
			}
		}
		a.Kind = domain.PaymentRefund
		return q.RecordPaymentAttempt(ctx, attemptParams(a))
	})
}

// MarkRequiresAction records that a charge waits for the customer to authenticate: the ledger
// row keeps its pending status and learns the provider's payment, and the order says so.
func (s *Store) MarkRequiresAction(ctx context.Context, idempotencyKey, providerRef string) error {
	return s.inTx(ctx, func(q *db.Queries) error {
		orderID, err := q.AwaitPaymentAction(ctx, db.AwaitPaymentActionParams{IdempotencyKey: idempotencyKey, ProviderRef: providerRef})
		if err != nil {
			return fmt.Errorf("mark %s as waiting for authentication: %w", idempotencyKey, err)
		}
		rows, err := q.MarkOrderRequiresAction(ctx, db.MarkOrderRequiresActionParams{ID: orderID, ProviderPaymentRef: providerRef})
		return moved(orderID, domain.OrderRequiresAction, rows, err)
	})
}

func failureOrUnknown(f *domain.Failure) domain.Failure {
	if f == nil {
		return domain.Failure{Code: "unknown", Message: "the payment did not go through"}
	}
	return *f
}

// PaymentsForOrder lists an order's ledger rows, oldest first.
func (s *Store) PaymentsForOrder(ctx context.Context, orderID string) ([]Payment, error) {
	rows, err := s.q.OrderPayments(ctx, orderID)
	if err != nil {
		return nil, fmt.Errorf("query payments: %w", err)
	}
	return convert(rows, paymentFrom), nil
}
