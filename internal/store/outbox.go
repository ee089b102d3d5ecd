package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/store/db"
)

// Outbox topics: how the relay delivers a message's payload.
const (
	// OutboxEmail is an email for one event; the payload is an activities.EmailInput.
	OutboxEmail = "email"
)

// OutboxMessage is work to do once the transaction that enqueues it commits.
type OutboxMessage struct {
	Topic string
	// EventKey names the message: enqueuing one key twice keeps the first.
	EventKey string
	Payload  json.RawMessage
}

// ClaimedMessage is an outbox message leased to one relay for a while.
type ClaimedMessage struct {
	OutboxMessage
	ID int64
	// Attempts counts the claims so far, this one included.
	Attempts  int
	CreatedAt time.Time
}

func enqueue(ctx context.Context, q *db.Queries, msgs []OutboxMessage) error {
	for _, m := range msgs {
		if err := q.EnqueueOutbox(ctx, db.EnqueueOutboxParams{Topic: m.Topic, EventKey: m.EventKey, Payload: m.Payload}); err != nil {
			return fmt.Errorf("enqueue %s %s: %w", m.Topic, m.EventKey, err)
		}
	}
	return nil
}

// ClaimOutbox leases up to batch due messages for lease: until then no other claim returns them,
// and after it a message not yet deleted or retried is due again.
func (s *Store) ClaimOutbox(ctx context.Context, batch int, lease time.Duration) ([]ClaimedMessage, error) {
	rows, err := s.q.ClaimOutbox(ctx, db.ClaimOutboxParams{Batch: int32(batch), LeaseSeconds: lease.Seconds()})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	msgs := make([]ClaimedMessage, len(rows))
	for i, r := range rows {
		msgs[i] = ClaimedMessage{
			OutboxMessage: OutboxMessage{Topic: r.Topic, EventKey: r.EventKey, Payload: r.Payload},
			ID:            r.ID, Attempts: int(r.Attempts), CreatedAt: r.CreatedAt,
		}
	}
	return msgs, nil
}

// DeleteOutbox removes a message that was delivered, or that can never be.
func (s *Store) DeleteOutbox(ctx context.Context, id int64) error {
	if err := s.q.DeleteOutbox(ctx, id); err != nil {
		return fmt.Errorf("delete outbox message %d: %w", id, err)
	}
	return nil
}

// RetryOutbox makes a message due again after delay and records why its attempt failed.
func (s *Store) RetryOutbox(ctx context.Context, id int64, delay time.Duration, cause string) error {
	if err := s.q.RetryOutbox(ctx, db.RetryOutboxParams{ID: id, DelaySeconds: delay.Seconds(), LastError: cause}); err != nil {
		return fmt.Errorf("retry outbox message %d: %w", id, err)
	}
	return nil
}

// OutboxLen counts the messages not yet delivered.
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	return s.q.CountOutbox(ctx)
}
