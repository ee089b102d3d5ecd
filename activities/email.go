package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/store"
)

// Email error types. Both are final: retrying cannot fix the input or the worker's set-up.
const (
	// ErrTypeInvalidEmail is an EmailInput that cannot make an email: not exactly one payload,
	// no event key, or a recipient that is not an address.
	ErrTypeInvalidEmail = "InvalidEmail"
	// ErrTypeMailerNotConfigured is a worker started without a mailer.
	ErrTypeMailerNotConfigured = "MailerNotConfigured"
)

// EmailInput is one email for one event.
type EmailInput struct {
	// EventKey names the event, e.g. "receipt/order/<order id>", "trial-ending/<sub>/<trial end RFC3339>".
	// One event gets at most one email, however often the activity runs.
	EventKey string
	// To is the recipient's address, optionally with a display name.
	To            string
	Receipt       *ReceiptEmail       `json:",omitempty"`
	TrialEnding   *TrialEndingEmail   `json:",omitempty"`
	PaymentFailed *PaymentFailedEmail `json:",omitempty"`
	Cancellation  *CancellationEmail  `json:",omitempty"`
	DailySummary  *DailySummaryEmail  `json:",omitempty"`
	// RenewalRefunded tells the customer a renewal charge was returned.
	RenewalRefunded *RenewalRefundedEmail `json:",omitempty"`
}

// EmailResult says whether this call sent the email.
type EmailResult struct {
	// Sent is true when this call handed the email to the SMTP server and it was accepted.
	Sent bool `json:"sent"`
	// AlreadyHandled is true when an earlier call had claimed the event: it sent the email, or
	// may have, so this one did nothing.
	AlreadyHandled bool `json:"already_handled"`
}

// payload returns the one email payload in, with the links into the storefront, or an error
// naming what is wrong.
func (in EmailInput) payload(links Links) (mailer.Data, error) {
	var set []mailer.Data
	if in.Receipt != nil {
		set = append(set, in.Receipt.mail(links))
	}
	if in.TrialEnding != nil {
		set = append(set, in.TrialEnding.mail(links))
	}
	if in.PaymentFailed != nil {
		set = append(set, in.PaymentFailed.mail(links))
	}
	if in.Cancellation != nil {
		set = append(set, in.Cancellation.mail())
	}
	if in.DailySummary != nil {
		set = append(set, in.DailySummary.mail())
	}
	if in.RenewalRefunded != nil {
		set = append(set, in.RenewalRefunded.mail())
	}
	if len(set) != 1 {
		return nil, fmt.Errorf("an email needs exactly one payload, got %d", len(set))
	}
	return set[0], nil
}

// SendEmail sends the email for one event at most once. It claims the event in the emails
// table, sends, and records the result:
//   - the server accepted it: marked sent, Sent=true;
//   - the mailer is sure the server did not take it (connection refused, recipient rejected):
//     the claim is released and the error returned, so that Temporal retries and a later
//     attempt may send it;
//   - the outcome is unknown (the connection broke after the whole message was handed over):
//     marked failed and never sent again, returning success with Sent=false, because a second
//     copy is worse than a lost notification;
//   - the event was already claimed by an earlier attempt: AlreadyHandled=true, nothing sent.
//
// A worker that dies between the claim and the result leaves the email claimed (sending), and
// so never sent again, for the same reason.
func (a *Activities) SendEmail(ctx context.Context, in EmailInput) (EmailResult, error) {
	data, err := in.payload(a.Links)
	if err != nil {
		return EmailResult{}, final(err.Error(), ErrTypeInvalidEmail, err, domain.Failure{Code: "invalid_email", Message: err.Error()})
	}
	return a.sendOnce(ctx, in.EventKey, in.To, data)
}

// sendOnce is SendEmail's claim, send and record, for an email already made: its event key,
// recipient and content.
func (a *Activities) sendOnce(ctx context.Context, eventKey, recipient string, data mailer.Data) (EmailResult, error) {
	var err error
	if strings.TrimSpace(eventKey) == "" {
		err = errors.New("an email needs an event key")
	}
	var to *mail.Address
	if err == nil {
		if to, err = mail.ParseAddress(recipient); err != nil {
			err = errors.New("the recipient is not an email address")
		}
	}
	if err != nil {
		return EmailResult{}, final(err.Error(), ErrTypeInvalidEmail, err, domain.Failure{Code: "invalid_email", Message: err.Error()})
	}
	if a.Mailer == nil {
		err := errors.New("the worker has no mailer")
		return EmailResult{}, final(err.Error(), ErrTypeMailerNotConfigured, err, domain.Failure{Code: "mailer_not_configured", Message: err.Error()})
	}
	content, err := mailer.Render(data)
	if err != nil {
		// Rendering is deterministic: the same input fails the same way every time.
		return EmailResult{}, final(err.Error(), ErrTypeInvalidEmail, err, domain.Failure{Code: "invalid_email", Message: "the email could not be rendered"})
	}

	log := a.logger(ctx).With("event_key", eventKey, "kind", content.Kind, "to", maskAddress(to.Address))
	claimed, err := a.Store.ClaimEmail(ctx, store.EmailClaim{EventKey: eventKey, Kind: content.Kind, Recipient: recipient, Subject: content.Subject})
	if err != nil {
		return EmailResult{}, err
	}
	if !claimed {
		log.InfoContext(ctx, "email already handled for this event")
		return EmailResult{AlreadyHandled: true}, nil
	}

	stop := a.heartbeat(ctx)
	err = a.Mailer.Send(ctx, mailer.Message{
		To: recipient, Subject: content.Subject, Text: content.Text, HTML: content.HTML, MessageID: messageID(eventKey),
	})
	stop()
	// The outcome must be recorded even when the activity's context has just ended.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case err == nil:
		if err := retryStore(recordCtx, func(ctx context.Context) error { return a.Store.MarkEmailSent(ctx, eventKey) }); err != nil {
			// The email went out; the row stays "sending", which still keeps it from going out twice.
			log.ErrorContext(ctx, "email sent but not recorded as sent", "error", redact(err, to.Address))
		} else {
			log.InfoContext(ctx, "email sent")
		}
		return EmailResult{Sent: true}, nil

	case mailer.IsNotSent(err):
		logErr := redact(err, to.Address)
		if rerr := retryStore(recordCtx, func(ctx context.Context) error { return a.Store.ReleaseEmail(ctx, eventKey) }); rerr != nil {
			// Still claimed: no later attempt will send it, which is the safe side.
			log.ErrorContext(ctx, "email not sent, and its claim could not be released", "error", logErr, "release_error", rerr)
		} else {
			log.WarnContext(ctx, "email not sent; a retry may send it", "error", logErr)
		}
		if errors.Is(err, mailer.ErrInvalidMessage) {
			return EmailResult{}, final("the email cannot be sent: "+logErr, ErrTypeInvalidEmail, errors.New(logErr),
				domain.Failure{Code: "invalid_email", Message: "the email cannot be sent"})
		}
		// Temporal records the error in the workflow history: the server's reply may quote the address.
		return EmailResult{}, fmt.Errorf("send email %s: %s", eventKey, logErr)

	default:
		if merr := retryStore(recordCtx, func(ctx context.Context) error { return a.Store.MarkEmailFailed(ctx, eventKey) }); merr != nil {
			log.ErrorContext(ctx, "email outcome unknown and not recorded", "error", redact(err, to.Address), "mark_error", merr)
		} else {
			log.ErrorContext(ctx, "email outcome unknown; it will not be sent again", "error", redact(err, to.Address))
		}
		return EmailResult{}, nil
	}
}

// retryStore runs a short store write a few times: it records an outcome only this attempt
// knows, so giving up on the first database hiccup would lose it.
func retryStore(ctx context.Context, f func(context.Context) error) error {
	var err error
	for i := range 3 {
		if err = f(ctx); err == nil || errors.Is(err, store.ErrEmailState) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// messageID derives the Message-ID from the event, so that a receiving system sees one message
// per event even if it were ever handed over twice.
func messageID(eventKey string) string {
	sum := sha256.Sum256([]byte(eventKey))
	return hex.EncodeToString(sum[:16]) + "@cartflow"
}

// maskAddress keeps an address recognizable in logs without writing it out: "a***@example.com".
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "***"
	}
	return addr[:1] + "***" + addr[at:]
}

// redact returns err's text with the recipient's address masked; SMTP servers often quote it.
func redact(err error, addr string) string {
	return strings.ReplaceAll(err.Error(), addr, maskAddress(addr))
}
