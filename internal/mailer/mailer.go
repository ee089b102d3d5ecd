// Package mailer sends cartflow's customer and ops emails over SMTP (Mailpit in development
// and tests) and renders them from typed templates.
//
// Send tells apart the two ways a send can fail, because the caller keeps an email to at most
// one delivery: an error the server cannot have accepted the message after (IsNotSent: safe to
// try again) and one after the message body was handed over (outcome unknown: never resend).
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"time"
)

// DefaultTimeout bounds one Send, dial to QUIT, when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config is how to reach the SMTP server and whom mail comes from.
type Config struct {
	// Addr is the SMTP server's host:port.
	Addr string
	// From is the sender, e.g. "cartflow <shop@example.com>".
	From string
	// Username and Password authenticate with AUTH PLAIN; no authentication when Username is empty.
	Username, Password string
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
}

// Mailer sends messages over SMTP, one connection per message.
type Mailer struct {
	cfg Config
}

// New returns a Mailer for cfg. It does not connect: each Send dials the server.
func New(cfg Config) *Mailer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Mailer{cfg: cfg}
}

// Message is one email to one recipient.
type Message struct {
	// To is the recipient, an address with an optional display name ("Ada <ada@example.com>").
	To      string
	Subject string
	// Text is the plain-text body; HTML, when set, is the alternative the mail client prefers.
	Text string
	HTML string
	// MessageID is the Message-ID header without its angle brackets; empty makes a random one.
	// A stable ID per event lets receiving systems drop a duplicate.
	MessageID string
}

// ErrNotSent marks errors after which the server cannot have accepted the message: it can be
// sent again without risking a duplicate.
var ErrNotSent = errors.New("message not sent")

// ErrInvalidMessage marks a message or configuration that no retry can send (a bad address, a
// header with a line break). Such errors are also ErrNotSent.
var ErrInvalidMessage = errors.New("invalid message")

// ErrOutcomeUnknown marks errors after the message body was handed to the server: it may have
// been accepted for delivery, so sending it again risks a duplicate.
var ErrOutcomeUnknown = errors.New("message outcome unknown")

// IsNotSent reports whether err says the server cannot have accepted the message (the dial
// failed, MAIL or RCPT was rejected, or the connection broke before the body was complete).
func IsNotSent(err error) bool { return errors.Is(err, ErrNotSent) }

// sendError is a failed SMTP step, classified by whether the message can have been accepted.
type sendError struct {
	step  string
	class error // ErrNotSent or ErrOutcomeUnknown
	err   error
}

func (e *sendError) Error() string { return fmt.Sprintf("smtp %s: %v (%v)", e.step, e.err, e.class) }

func (e *sendError) Unwrap() []error { return []error{e.class, e.err} }

func notSent(step string, err error) error {
	return &sendError{step: step, class: ErrNotSent, err: err}
}

func invalid(format string, args ...any) error {
	return &sendError{step: "message", class: ErrNotSent, err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)}
}

// Send delivers msg to the server in one SMTP session: EHLO, STARTTLS when the server offers
// it, AUTH PLAIN when a username is configured, MAIL, RCPT, DATA. It returns nil once the
// server has accepted the message. The whole session is bounded by ctx and Config.Timeout.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	from, err := mail.ParseAddress(m.cfg.From)
	if err != nil {
		return invalid("sender %q: %v", m.cfg.From, err)
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		// The address is not quoted back: it is customer data.
		return invalid("recipient address: %v", err)
	}
	raw, err := buildMessage(from, to, msg, time.Now())
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(m.cfg.Addr)
	if err != nil {
		return invalid("server address %q: %v", m.cfg.Addr, err)
	}

	deadline := time.Now().Add(m.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dialCtx, "tcp", m.cfg.Addr)
	if err != nil {
		return notSent("dial", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return notSent("dial", err)
	}
	// Cancelling ctx must interrupt a read or write in progress, not only the dial.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return notSent("greeting", err)
	}
	defer c.Close()
	if err := m.session(c, host, from.Address, to.Address, raw); err != nil {
		return err
	}
	// The message is accepted; a failed QUIT changes nothing about that.
	_ = c.Quit()
	return nil
}

// session runs the SMTP commands after the greeting.
func (m *Mailer) session(c *smtp.Client, host, from, to string, raw []byte) error {
	if err := c.Hello("localhost"); err != nil {
		return notSent("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		// Once offered, TLS is required: falling back to plain text would expose the credentials.
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return notSent("STARTTLS", err)
		}
	}
	if m.cfg.Username != "" {
		// net/smtp's PLAIN refuses to send credentials unencrypted except to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, host)); err != nil {
			return notSent("AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return notSent("MAIL", err)
	}
	if err := c.Rcpt(to); err != nil {
		return notSent("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return notSent("DATA", err)
	}
	// Until the final "." the server has only a partial message, which it must discard.
	if _, err := w.Write(raw); err != nil {
		return notSent("DATA body", err)
	}
	// Close sends the final "." and reads the server's verdict. If that exchange fails the
	// message may already be queued, so the outcome is unknown.
	if err := w.Close(); err != nil {
		return &sendError{step: "end of DATA", class: ErrOutcomeUnknown, err: err}
	}
	return nil
}
