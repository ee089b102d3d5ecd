package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/store"
)

// Outbox relay defaults, for a relay started with zero settings.
const (
	defaultOutboxBatch = 20
	// defaultOutboxLease outlasts one email's SMTP timeout with room to spare: a message must not
	// fall due again while its first delivery is still talking to the server.
	defaultOutboxLease = 2 * time.Minute
	defaultOutboxPoll  = 2 * time.Second
	// defaultOutboxGiveUp matches emailOptions' schedule-to-close: an email that could not go
	// out in an hour is given up, as the SendEmail activity gives it up.
	defaultOutboxGiveUp = time.Hour
)

// OutboxRelay delivers what transactions enqueued in the outbox (store.OutboxMessage): today the
// receipt email of a completed checkout, which CompleteOrder enqueues with the order's
// completion. Each worker runs one. Delivery is at least once per claim; SendEmail's claim on the
// event key makes the email itself go out at most once, so a relay that dies between sending and
// deleting, or two relays that race after a lease ran out, still send one email.
type OutboxRelay struct {
	Activities *Activities
	// Batch, Lease and Poll: how many messages one claim takes, how long it holds them, and how
	// often the relay looks when nobody wakes it.
	Batch int
	Lease time.Duration
	Poll  time.Duration
	// GiveUp is how long a message is retried before it is dropped (and logged as an error).
	GiveUp time.Duration

	wake chan struct{}
}

// NewOutboxRelay returns a relay for a's outbox and makes a wake it whenever an activity has
// just committed a message, so that a receipt goes out at once rather than at the next poll.
func NewOutboxRelay(a *Activities) *OutboxRelay {
	r := &OutboxRelay{Activities: a, Batch: defaultOutboxBatch, Lease: defaultOutboxLease, Poll: defaultOutboxPoll,
		GiveUp: defaultOutboxGiveUp, wake: make(chan struct{}, 1)}
	a.outboxWake = r.Wake
	return r
}

// Wake makes the relay look at the outbox now. It never blocks.
func (r *OutboxRelay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run delivers messages until ctx ends. Messages left by a relay that stopped, or that were
// committed by another worker, are found by the poll.
func (r *OutboxRelay) Run(ctx context.Context) {
	poll := time.NewTicker(r.Poll)
	defer poll.Stop()
	for {
		n, err := r.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			r.Activities.logger(ctx).WarnContext(ctx, "outbox not read", "error", err)
		}
		if err == nil && n == r.Batch {
			continue // there may be more due right now
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// DeliverDue claims one batch of due messages and delivers each, and returns how many it claimed.
func (r *OutboxRelay) DeliverDue(ctx context.Context) (int, error) {
	msgs, err := r.Activities.Store.ClaimOutbox(ctx, r.Batch, r.Lease)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		r.deliver(ctx, m)
	}
	return len(msgs), nil
}

// deliver hands one message over and then deletes it, or schedules its retry. A message whose
// bookkeeping fails stays leased and falls due again when the lease ends.
func (r *OutboxRelay) deliver(ctx context.Context, m store.ClaimedMessage) {
	log := r.Activities.logger(ctx).With("topic", m.Topic, "event_key", m.EventKey, "attempt", m.Attempts)
	err := r.handle(ctx, m)
	// The outcome is recorded even when ctx has just ended: it is known only now.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		err = r.Activities.Store.DeleteOutbox(recordCtx, m.ID)
	case errors.As(err, &appErr) && appErr.NonRetryable():
		log.ErrorContext(ctx, "outbox message cannot be delivered; dropped", "error", err)
		err = r.Activities.Store.DeleteOutbox(recordCtx, m.ID)
	case time.Since(m.CreatedAt) > r.GiveUp:
		log.ErrorContext(ctx, "outbox message not delivered in time; given up", "error", err)
		err = r.Activities.Store.DeleteOutbox(recordCtx, m.ID)
	default:
		log.WarnContext(ctx, "outbox message not delivered; it will be retried", "error", err)
		err = r.Activities.Store.RetryOutbox(recordCtx, m.ID, outboxBackoff(m.Attempts), err.Error())
	}
	if err != nil {
		log.WarnContext(ctx, "outbox message outcome not recorded; it falls due again after its lease", "error", err)
	}
}

// handle delivers one message by its topic. A topic this build does not know is final: the
// message came from a newer build, or from nowhere, and retrying cannot help.
func (r *OutboxRelay) handle(ctx context.Context, m store.ClaimedMessage) error {
	switch m.Topic {
	case store.OutboxEmail:
		var in EmailInput
		if err := json.Unmarshal(m.Payload, &in); err != nil {
			return temporal.NewNonRetryableApplicationError("the email message is not an EmailInput", ErrTypeInvalidEmail, err)
		}
		_, err := r.Activities.SendEmail(ctx, in)
		return err
	default:
		return temporal.NewNonRetryableApplicationError("unknown outbox topic "+m.Topic, "UnknownOutboxTopic", nil)
	}
}

// outboxBackoff is the wait before a message's next attempt: 1 s doubling to 5 minutes, as emailOptions retries.
func outboxBackoff(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// emailMessage makes the outbox message for an email, once it is sure the email can be made.
func emailMessage(in EmailInput, links Links) (store.OutboxMessage, error) {
	if _, err := in.payload(links); err != nil {
		return store.OutboxMessage{}, err
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	return store.OutboxMessage{Topic: store.OutboxEmail, EventKey: in.EventKey, Payload: payload}, nil
}
