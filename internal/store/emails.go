package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/store/db"
	"github.com/jackc/pgx/v5"
)

// Email statuses. An email moves pending → sending → sent, or back to pending when the mailer
// is sure the server did not take it, or to failed when nobody can know whether it did. Each
// move is one query in queries/emails.sql whose WHERE lists the statuses it may start from.
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
// an event after a possible delivery.
func (s *Store) ClaimEmail(ctx context.Context, c EmailClaim) (bool, error) {
	_, err := s.q.ClaimEmail(ctx, db.ClaimEmailParams{EventKey: c.EventKey, Kind: c.Kind, Recipient: c.Recipient, Subject: c.Subject})
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
	rows, err := s.q.MarkEmailSent(ctx, eventKey)
	return s.emailMoved(ctx, eventKey, EmailSent, rows, err)
}

// ReleaseEmail returns a claimed email to pending because the mailer is certain the server did
// not accept it, so that a later attempt may claim and send it. Repeating it is a no-op.
func (s *Store) ReleaseEmail(ctx context.Context, eventKey string) error {
	rows, err := s.q.ReleaseEmail(ctx, eventKey)
	return s.emailMoved(ctx, eventKey, EmailPending, rows, err)
}

// MarkEmailFailed records that sending ended with an unknown outcome: the server may have
// accepted the email, so it is never sent again. Repeating it is a no-op.
func (s *Store) MarkEmailFailed(ctx context.Context, eventKey string) error {
	rows, err := s.q.MarkEmailFailed(ctx, eventKey)
	return s.emailMoved(ctx, eventKey, EmailFailed, rows, err)
}

// emailMoved turns the outcome of an email move to status to into the store's error:
// ErrNotFound for an unknown key and ErrEmailState for an email in a status the move does not
// start from.
func (s *Store) emailMoved(ctx context.Context, eventKey, to string, rows int64, err error) error {
	if err != nil {
		return fmt.Errorf("mark email %s %s: %w", eventKey, to, err)
	}
	if rows == 1 {
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
	r, err := s.q.EmailByKey(ctx, eventKey)
	if err != nil {
		return Email{}, readFailed(err, "email "+eventKey)
	}
	return Email(r), nil // the emails row has exactly these columns
}
