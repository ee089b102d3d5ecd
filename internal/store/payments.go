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
	// SubscriptionID, for a renewal charge, is the subscription it bills: BeginCharge re-reads its
	// status under a row lock and refuses a canceled one.
	SubscriptionID string
}

// PaymentOutcome is what the provider answered for an attempt.
type PaymentOutcome struct {
	Status      domain.PaymentStatus
	ProviderRef string
	// Failure is the provider's reason for a failed attempt, as the ledger keeps it.
	Failure *domain.Failure
	// CustomerFailure, when set, is what the order (and so the customer) shows of a failed
	// charge instead of Failure: a decline whose real reason must not be disclosed (a stolen card).
	CustomerFailure *domain.Failure
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
// moves the order to charging; for a charge it applies BeginCharge's rules.
func (s *Store) BeginPayment(ctx context.Context, a PaymentAttempt) error {
	if a.Kind == domain.PaymentCharge {
		_, err := s.BeginCharge(ctx, a)
		return err
	}
	return s.inTx(ctx, func(q *db.Queries) error {
		if err := q.RecordPaymentAttempt(ctx, attemptParams(a)); err != nil {
			return fmt.Errorf("record %s attempt: %w", a.Kind, err)
		}
		return nil
	})
}

// ErrAlreadyPaid means a charge under a new key was refused because its order is paid already,
// or has gone beyond paid (completed, refunded): an order is charged once.
var ErrAlreadyPaid = errors.New("the order is paid already")

// ErrNotRenewable means a renewal charge was refused because its subscription, read under a row
// lock, can no longer be renewed: it was canceled.
var ErrNotRenewable = errors.New("the subscription cannot be renewed")

// BeginCharge records a charge attempt in the ledger before the provider is called, and returns
// the attempt's ledger row. The ledger comes first, so the caller must read the row before it
// asks the provider:
//   - a row already succeeded is the charge's recorded result: nothing is recorded anew, and the
//     provider must not be asked again (the provider may have forgotten the key by now);
//   - a row that holds a ProviderRef names the payment an earlier attempt made, which the provider
//     completes instead of making another.
//
// A first attempt (no row for the key yet) is refused, and nothing recorded, with ErrAlreadyPaid
// when the order is paid or beyond, and, for a renewal (SubscriptionID set), with ErrNotRenewable
// when the subscription is canceled: its status is re-read under a row lock in this transaction,
// so a cancel either commits first and is seen here, or waits for this attempt to be recorded.
// A retry of an attempt already recorded is never refused this way, because an earlier try may
// have moved money whose outcome must still be resolved. An order that cleanup expired as
// abandoned is never charged.
func (s *Store) BeginCharge(ctx context.Context, a PaymentAttempt) (Payment, error) {
	a.Kind = domain.PaymentCharge
	var row Payment
	err := s.inTx(ctx, func(q *db.Queries) error {
		var subStatus domain.SubscriptionStatus
		if a.SubscriptionID != "" {
			sub, err := q.LockSubscription(ctx, a.SubscriptionID)
			if err != nil {
				return readFailed(err, "subscription "+a.SubscriptionID)
			}
			subStatus = sub.Status
		}
		order, err := q.LockOrder(ctx, a.OrderID)
		if err != nil {
			return readFailed(err, "order "+a.OrderID)
		}
		prior, err := q.PaymentByKey(ctx, a.IdempotencyKey)
		switch {
		case err == nil && prior.Status == domain.PaymentSucceeded:
			row = paymentFrom(prior)
			return nil
		case errors.Is(err, pgx.ErrNoRows):
			if err := chargeable(a, order.Status, subStatus); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("read payment %s: %w", a.IdempotencyKey, err)
		}
		if err := q.RecordPaymentAttempt(ctx, attemptParams(a)); err != nil {
			return fmt.Errorf("record charge attempt: %w", err)
		}
		rows, err := q.MarkOrderCharging(ctx, a.OrderID)
		if err := moved(a.OrderID, domain.OrderCharging, rows, err); err != nil && !errors.Is(err, ErrTransition) {
			return err
		}
		// MarkOrderCharging refused: a retry after the outcome was already recorded, and the order
		// has moved on, which is fine, unless cleanup expired it as abandoned.
		if order.Status == domain.OrderExpired {
			return fmt.Errorf("charge order %s: it expired as abandoned: %w", a.OrderID, ErrTransition)
		}
		recorded, err := q.PaymentByKey(ctx, a.IdempotencyKey)
		if err != nil {
			return fmt.Errorf("read payment %s: %w", a.IdempotencyKey, err)
		}
		row = paymentFrom(recorded)
		return nil
	})
	return row, err
}

// chargeable checks a first charge attempt of an order in status order, for a renewal of a
// subscription in status sub (empty for a checkout).
func chargeable(a PaymentAttempt, order domain.OrderStatus, sub domain.SubscriptionStatus) error {
	switch order {
	case domain.OrderPaid, domain.OrderCompleted, domain.OrderRefunded, domain.OrderPartiallyRefunded:
		return fmt.Errorf("charge order %s under %s: it is %s: %w", a.OrderID, a.IdempotencyKey, order, ErrAlreadyPaid)
	case domain.OrderExpired:
		return fmt.Errorf("charge order %s: it expired as abandoned: %w", a.OrderID, ErrTransition)
	}
	switch sub {
	case "", domain.SubscriptionTrialing, domain.SubscriptionActive, domain.SubscriptionPastDue:
		return nil
	}
	return fmt.Errorf("renew subscription %s: it is %s: %w", a.SubscriptionID, sub, ErrNotRenewable)
}

// ErrOtherPayment means a charge's ledger row already names another provider payment than the
// one being recorded for it: one key is one payment.
var ErrOtherPayment = errors.New("the charge already records another provider payment")

// RecordProviderPayment records on a charge's ledger row the provider payment made for it, as
// soon as the provider made it and before any money can move on it (billing.ChargeRequest.Created),
// so that a retry completes that payment instead of making another, whatever the provider's
// search shows. Recording the same payment twice is fine; another payment is ErrOtherPayment.
func (s *Store) RecordProviderPayment(ctx context.Context, idempotencyKey, providerRef string) error {
	if providerRef == "" {
		return fmt.Errorf("record the provider payment of %s: no payment given", idempotencyKey)
	}
	_, err := s.q.RecordProviderPayment(ctx, db.RecordProviderPaymentParams{IdempotencyKey: idempotencyKey, ProviderRef: providerRef})
	if !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return fmt.Errorf("record the provider payment of %s: %w", idempotencyKey, err)
		}
		return nil
	}
	p, err := s.q.PaymentByKey(ctx, idempotencyKey)
	if err != nil {
		return fmt.Errorf("record the provider payment of %s: %w", idempotencyKey, readFailed(err, "its charge"))
	}
	return fmt.Errorf("record %s for %s, which records %s: %w", providerRef, idempotencyKey, deref(p.ProviderRef), ErrOtherPayment)
}

// PaymentByKey returns the ledger row of the attempt sent under idempotencyKey, or ErrNotFound.
func (s *Store) PaymentByKey(ctx context.Context, idempotencyKey string) (Payment, error) {
	p, err := s.q.PaymentByKey(ctx, idempotencyKey)
	if err != nil {
		return Payment{}, readFailed(err, "payment "+idempotencyKey)
	}
	return paymentFrom(p), nil
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
			if out.CustomerFailure != nil {
				f = *out.CustomerFailure
			}
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
