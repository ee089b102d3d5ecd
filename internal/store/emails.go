package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Email statuses. An email moves pending → sending → sent, or back to pending when the mailer
// is sure the server did not take it, or to failed when nobody can know whether it did.
const (
	EmailPending = "pending"
	EmailSending = "sending"
	EmailSent    = "sent"
	EmailFailed  = "failed"
)

// ErrEmailState means an email is not in a status the requested change can start from.
var ErrEmailState = errors.New("email status does not allow this change")

// EmailClaim is an email about to be sent for one event.
type EmailClaim struct {
	// EventKey names the event; one event gets at most one email.
	EventKey  string
	Kind      string
	Recipient string
	Subject   string
}

// Email is one emails row.
type Email struct {
	ID        int64
	EventKey  string
	Kind      string
	Recipient string
	Subject   string
	Status    string
	CreatedAt time.Time
	SentAt    *time.Time
}

// ClaimEmail reserves the right to send the email for c.EventKey and reports whether this call
// got it. It inserts the row as sending, or moves a pending row (released by an attempt that
// certainly did not send) to sending. A row that is sending, sent or failed is never claimed
// again, so however often activities retry, at most one of them talks to the SMTP server for
// an event after a possible delivery. The single statement makes concurrent claims safe: the
// conflicting insert waits for the other transaction and rechecks the status it committed.
func (s *Store) ClaimEmail(ctx context.Context, c EmailClaim) (bool, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO emails (event_key, kind, recipient, subject, status) VALUES ($1, $2, $3, $4, 'sending')
		ON CONFLICT (event_key) DO UPDATE
			SET status = 'sending', kind = EXCLUDED.kind, recipient = EXCLUDED.recipient, subject = EXCLUDED.subject
			WHERE emails.status = 'pending'
		RETURNING id`, c.EventKey, c.Kind, c.Recipient, c.Subject).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim email %s: %w", c.EventKey, err)
	}
	return true, nil
}

// MarkEmailSent records that the server accepted the email. Repeating it is a no-op.
func (s *Store) MarkEmailSent(ctx context.Context, eventKey string) error {
	return s.moveEmail(ctx, eventKey, EmailSent, []string{EmailSending, EmailSent}, `, sent_at = coalesce(sent_at, now())`)
}

// ReleaseEmail returns a claimed email to pending because the mailer is certain the server did
// not accept it, so that a later attempt may claim and send it. Repeating it is a no-op.
func (s *Store) ReleaseEmail(ctx context.Context, eventKey string) error {
	return s.moveEmail(ctx, eventKey, EmailPending, []string{EmailSending, EmailPending}, ``)
}

// MarkEmailFailed records that sending ended with an unknown outcome: the server may have
// accepted the email, so it is never sent again. Repeating it is a no-op.
func (s *Store) MarkEmailFailed(ctx context.Context, eventKey string) error {
	return s.moveEmail(ctx, eventKey, EmailFailed, []string{EmailSending, EmailFailed}, ``)
}

// moveEmail sets the email's status to `to` if it is in one of from, with set appended to the
// SET list. It returns ErrNotFound for an unknown key and ErrEmailState for another status.
func (s *Store) moveEmail(ctx context.Context, eventKey, to string, from []string, set string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE emails SET status = $2`+set+` WHERE event_key = $1 AND status = ANY($3)`, eventKey, to, from)
	if err != nil {
		return fmt.Errorf("mark email %s %s: %w", eventKey, to, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	e, err := s.EmailByKey(ctx, eventKey)
	if err != nil {
		return fmt.Errorf("mark email %s %s: %w", eventKey, to, err)
	}
	return fmt.Errorf("mark email %s %s: it is %s: %w", eventKey, to, e.Status, ErrEmailState)
}

// EmailByKey returns the email for an event, or ErrNotFound.
func (s *Store) EmailByKey(ctx context.Context, eventKey string) (Email, error) {
	var e Email
	err := s.pool.QueryRow(ctx, `SELECT id, event_key, kind, recipient, subject, status, created_at, sent_at
		FROM emails WHERE event_key = $1`, eventKey).
		Scan(&e.ID, &e.EventKey, &e.Kind, &e.Recipient, &e.Subject, &e.Status, &e.CreatedAt, &e.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("read email %s: %w", eventKey, err)
	}
	return e, nil
}
