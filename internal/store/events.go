package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO provider_events (provider, event_id, type, payload) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, e.Provider, e.ID, e.Type, payload)
		if err != nil {
			return fmt.Errorf("store provider event: %w", err)
		}
		out.Duplicate = tag.RowsAffected() == 0

		// The provider's payment reference is authoritative; an echoed order id is the fallback
		// for events about a payment whose reference the order has not recorded yet.
		err = tx.QueryRow(ctx, `SELECT id::text, workflow_id FROM orders WHERE provider = $1 AND provider_payment_ref = $2`,
			e.Provider, e.PaymentRef).Scan(&out.OrderID, &out.WorkflowID)
		if errors.Is(err, pgx.ErrNoRows) && uuidPattern.MatchString(e.OrderID) {
			err = tx.QueryRow(ctx, `SELECT id::text, workflow_id FROM orders WHERE id = $1::uuid AND provider = $2`,
				e.OrderID, e.Provider).Scan(&out.OrderID, &out.WorkflowID)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // an event about a payment cartflow does not know: stored, nothing to apply
		}
		if err != nil {
			return fmt.Errorf("find the order of a provider event: %w", err)
		}
		if out.Duplicate {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO order_events (order_id, provider, provider_event_id, type, amount, currency, reason)
			VALUES ($1, $2, $3, $4, nullif($5, 0), nullif($6, ''), nullif($7, '')) ON CONFLICT DO NOTHING`,
			out.OrderID, e.Provider, e.ID, e.Type, e.Amount, e.Currency, e.Reason); err != nil {
			return fmt.Errorf("record order event: %w", err)
		}
		return applyProviderEvent(ctx, tx, out.OrderID, e)
	})
	if err != nil {
		return AppliedEvent{}, fmt.Errorf("record %s event %s: %w", e.Provider, e.ID, err)
	}
	return out, nil
}

func applyProviderEvent(ctx context.Context, tx pgx.Tx, orderID string, e domain.WebhookEvent) error {
	switch e.Type {
	case domain.EventRefunded:
		// The provider reports the payment's refunded total; a refund cartflow made itself is
		// already counted, so only a larger total (a refund made at the provider) changes the order.
		var total, refunded int64
		var status string
		if err := tx.QueryRow(ctx, `SELECT total_amount, refunded_amount, status FROM orders WHERE id = $1 FOR UPDATE`,
			orderID).Scan(&total, &refunded, &status); err != nil {
			return err
		}
		if e.Amount <= refunded {
			return nil
		}
		amount := min(e.Amount, total) - refunded
		return recordRefund(ctx, tx, orderID, amount, nil)
	case domain.EventDisputeOpened:
		_, err := tx.Exec(ctx, `UPDATE orders SET dispute_status = coalesce(dispute_status, 'open'),
			disputed_amount = greatest(disputed_amount, $2), updated_at = now() WHERE id = $1`, orderID, e.Amount)
		return err
	case domain.EventDisputeClosed:
		outcome := e.Reason
		if outcome == "" {
			outcome = "closed"
		}
		_, err := tx.Exec(ctx, `UPDATE orders SET dispute_status = $2, updated_at = now() WHERE id = $1`, orderID, outcome)
		return err
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

// OrderEvents lists the provider events recorded on an order, oldest first.
func (s *Store) OrderEvents(ctx context.Context, orderID string) ([]OrderEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, provider_event_id, type, coalesce(amount, 0), coalesce(currency, ''),
		coalesce(reason, ''), at FROM order_events WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("query order events: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[OrderEvent])
}

// RecordProviderOutcome counts one provider call's technical outcome in the current minute, for
// the card processors' circuit breaker. ok is false only for technical failures (timeouts, 5xx),
// never for declines, which say nothing about the processor's health.
func (s *Store) RecordProviderOutcome(ctx context.Context, provider string, ok bool) error {
	success, failure := 1, 0
	if !ok {
		success, failure = 0, 1
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO provider_health (provider, minute, successes, failures)
		VALUES ($1, date_trunc('minute', now()), $2, $3)
		ON CONFLICT (provider, minute) DO UPDATE SET successes = provider_health.successes + $2, failures = provider_health.failures + $3`,
		provider, success, failure)
	if err != nil {
		return fmt.Errorf("record provider outcome: %w", err)
	}
	return nil
}

// ProviderHealth sums a provider's technical outcomes since a time.
func (s *Store) ProviderHealth(ctx context.Context, provider string, since time.Time) (successes, failures int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce(sum(successes), 0), coalesce(sum(failures), 0) FROM provider_health
		WHERE provider = $1 AND minute >= date_trunc('minute', $2::timestamptz)`, provider, since).Scan(&successes, &failures)
	if err != nil {
		err = fmt.Errorf("read provider health: %w", err)
	}
	return successes, failures, err
}
