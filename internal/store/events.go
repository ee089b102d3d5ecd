package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
	"github.com/jackc/pgx/v5"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// AppliedEvent says what recording a provider event did.
type AppliedEvent struct {
	// OrderID and WorkflowID name the order the event is about and the workflow that made it;
	// empty when no order matches.
	OrderID    string
	WorkflowID string
	// Duplicate is true when this event was recorded before; nothing changed this time.
	Duplicate bool
}

// RecordProviderEvent stores a verified webhook event once (provider_events, keyed by the
// provider's event id) and records it on its order (order_events), applying what it says: a
// refund made at the provider raises the refunded amount, a dispute sets the order's dispute
// state. Delivering the same event again changes nothing; events that arrive out of order
// never move the order backwards (a refund total only grows, a closed dispute stays closed).
func (s *Store) RecordProviderEvent(ctx context.Context, e domain.WebhookEvent) (AppliedEvent, error) {
	payload := e.Payload
	if !json.Valid(payload) {
		// Not every provider posts JSON (Braintree posts a form); such a body is kept verbatim as a JSON string.
		payload, _ = json.Marshal(map[string]string{"raw": string(payload)})
	}
	var out AppliedEvent
	err := s.inTx(ctx, func(q *db.Queries) error {
		rows, err := q.InsertProviderEvent(ctx, db.InsertProviderEventParams{
			Provider: e.Provider, EventID: e.ID, Type: string(e.Type), Payload: payload,
		})
		if err != nil {
			return fmt.Errorf("store provider event: %w", err)
		}
		out.Duplicate = rows == 0

		// The provider's payment reference is authoritative; an echoed order id is the fallback
		// for events about a payment whose reference the order has not recorded yet.
		o, err := q.OrderByPaymentRef(ctx, db.OrderByPaymentRefParams{Provider: e.Provider, PaymentRef: e.PaymentRef})
		if errors.Is(err, pgx.ErrNoRows) && uuidPattern.MatchString(e.OrderID) {
			o, err = q.OrderByIDAndProvider(ctx, db.OrderByIDAndProviderParams{ID: e.OrderID, Provider: e.Provider})
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // an event about a payment cartflow does not know: stored, nothing to apply
		}
		if err != nil {
			return fmt.Errorf("find the order of a provider event: %w", err)
		}
		out.OrderID, out.WorkflowID = o.ID, o.WorkflowID
		if out.Duplicate {
			return nil
		}
		if err := q.InsertOrderEvent(ctx, db.InsertOrderEventParams{
			OrderID: o.ID, Provider: e.Provider, ProviderEventID: e.ID, Type: string(e.Type),
			Amount: e.Amount, Currency: e.Currency, Reason: e.Reason,
		}); err != nil {
			return fmt.Errorf("record order event: %w", err)
		}
		return applyProviderEvent(ctx, q, o.ID, e)
	})
	if err != nil {
		return AppliedEvent{}, fmt.Errorf("record %s event %s: %w", e.Provider, e.ID, err)
	}
	return out, nil
}

func applyProviderEvent(ctx context.Context, q *db.Queries, orderID string, e domain.WebhookEvent) error {
	switch e.Type {
	case domain.EventRefunded:
		// The provider reports the payment's refunded total; a refund cartflow made itself is
		// already counted, so only a larger total (a refund made at the provider) changes the order.
		o, err := q.LockOrder(ctx, orderID)
		if err != nil {
			return err
		}
		if e.Amount <= o.RefundedAmount {
			return nil
		}
		amount := min(e.Amount, o.TotalAmount) - o.RefundedAmount
		return recordRefund(ctx, q, orderID, amount, nil)
	case domain.EventDisputeOpened:
		return q.OpenOrderDispute(ctx, db.OpenOrderDisputeParams{ID: orderID, Amount: e.Amount})
	case domain.EventDisputeClosed:
		outcome := e.Reason
		if outcome == "" {
			outcome = "closed"
		}
		return q.CloseOrderDispute(ctx, db.CloseOrderDisputeParams{ID: orderID, Outcome: outcome})
	}
	// Payment outcomes are the checkout workflow's to act on; the order keeps the record.
	return nil
}

// OrderEvent is one provider event recorded on an order.
type OrderEvent struct {
	Provider string    `json:"provider"`
	EventID  string    `json:"event_id"`
	Type     string    `json:"type"`
	Amount   int64     `json:"amount,omitempty"`
	Currency string    `json:"currency,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

func orderEventFrom(r db.OrderEvent) OrderEvent {
	return OrderEvent{
		Provider: r.Provider, EventID: r.ProviderEventID, Type: r.Type, Amount: deref(r.Amount),
		Currency: deref(r.Currency), Reason: deref(r.Reason), At: r.At,
	}
}

// OrderEvents lists the provider events recorded on an order, oldest first.
func (s *Store) OrderEvents(ctx context.Context, orderID string) ([]OrderEvent, error) {
	rows, err := s.q.OrderEvents(ctx, orderID)
	if err != nil {
		return nil, fmt.Errorf("query order events: %w", err)
	}
	return convert(rows, orderEventFrom), nil
}

// RecordProviderOutcome counts one provider call's technical outcome in the current minute, for
// the card processors' circuit breaker. ok is false only for technical failures (timeouts, 5xx),
// never for declines, which say nothing about the processor's health.
func (s *Store) RecordProviderOutcome(ctx context.Context, provider string, ok bool) error {
	outcome := db.CountProviderOutcomeParams{Provider: provider, Successes: 1}
	if !ok {
		outcome.Successes, outcome.Failures = 0, 1
	}
	if err := s.q.CountProviderOutcome(ctx, outcome); err != nil {
		return fmt.Errorf("record provider outcome: %w", err)
	}
	return nil
}

// ProviderHealth sums a provider's technical outcomes since a time.
func (s *Store) ProviderHealth(ctx context.Context, provider string, since time.Time) (successes, failures int, err error) {
	h, err := s.q.ProviderHealth(ctx, db.ProviderHealthParams{Provider: provider, Since: since})
	if err != nil {
		return 0, 0, fmt.Errorf("read provider health: %w", err)
	}
	return int(h.Successes), int(h.Failures), nil
}
