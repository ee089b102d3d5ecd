// Package errorreport sends cartflow's unexpected errors to Sentry: panics in the BFF's handlers
// (Gin middleware) and final activity failures and workflow failures in the worker (a Temporal
// worker interceptor). Every event goes through a scrubber first, so no secret, token, card
// number, email address or request body leaves the process; the only personal datum kept is
// the customer id. Without a DSN every method is a no-op and nothing is sent.
package errorreport

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/getsentry/sentry-go"
)

// Config configures the Reporter.
type Config struct {
	// DSN is the Sentry project's DSN; empty turns error reporting off. It is never logged.
	DSN string
	// Release and Environment tag every event (the deployed version, production or staging).
	Release     string
	Environment string
	// Logger receives the Reporter's own messages; nil discards them.
	Logger *slog.Logger
	// Transport replaces the default HTTP transport; tests use it. Nil means HTTP to the DSN.
	Transport sentry.Transport
	// ExpectedErrorTypes lists Temporal application error types that are business outcomes
	// (a declined card, a rejected refund), not faults: failures of these types are never reported.
	ExpectedErrorTypes []string
}

// Reporter sends scrubbed error events to Sentry; built without a DSN, it sends nothing.
type Reporter struct {
	// client and hub are nil when reporting is off. The hub is cartflow's own, never the sentry
	// package's global one, so that nothing else in the process can send through it by accident.
	client   *sentry.Client
	hub      *sentry.Hub
	expected map[string]bool
	log      *slog.Logger
}

// New builds a Reporter. With an empty DSN it returns a Reporter that reports nothing; it does
// not fall back to SENTRY_DSN, which sentry.NewClient would otherwise read from the environment.
func New(cfg Config) (*Reporter, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reporter{log: log, expected: map[string]bool{}}
	for _, t := range cfg.ExpectedErrorTypes {
		r.expected[t] = true
	}
	if cfg.DSN == "" {
		log.Info("error reporting off: no Sentry DSN")
		return r, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         cfg.DSN,
		Release:     cfg.Release,
		Environment: cfg.Environment,
		Transport:   cfg.Transport,
		// Never attach headers, cookies or the client's IP address; the scrubber is the second line.
		SendDefaultPII: false,
		BeforeSend:     scrubEvent,
	})
	if err != nil {
		// The error text may quote the DSN, which holds the project's key.
		return nil, errors.New("errorreport: the Sentry DSN is invalid")
	}
	r.client = client
	r.hub = sentry.NewHub(client, sentry.NewScope())
	log.Info("error reporting on", "release", cfg.Release, "environment", cfg.Environment)
	return r, nil
}

// Enabled reports whether events are sent, that is whether a DSN was configured.
func (r *Reporter) Enabled() bool { return r != nil && r.client != nil }

// Flush waits up to timeout for queued events to be sent, and reports whether they all were.
// Call it before the process exits: events are sent in the background.
func (r *Reporter) Flush(timeout time.Duration) bool {
	if !r.Enabled() {
		return true
	}
	return r.client.Flush(timeout)
}

// report sends err with the given tags and customer id (empty for none) on a scope of its own,
// so that concurrent reports never share tags.
func (r *Reporter) report(ctx context.Context, err error, tags map[string]string, customerID string) {
	if !r.Enabled() {
		return
	}
	scope := sentry.NewScope()
	scope.SetLevel(sentry.LevelError)
	for k, v := range tags {
		if v != "" {
			scope.SetTag(k, v)
		}
	}
	if customerID != "" {
		scope.SetUser(sentry.User{ID: customerID})
	}
	id := r.client.CaptureException(err, &sentry.EventHint{OriginalException: err, Context: ctx}, scope)
	if id != nil {
		r.log.Debug("error reported to sentry", "event_id", string(*id), "workflow_type", tags[TagWorkflowType], "activity", tags[TagActivity])
	}
}
