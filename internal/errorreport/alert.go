package errorreport

import (
	"context"

	"github.com/getsentry/sentry-go"
)

// Tags set on ops alerts about money.
const (
	TagProvider    = "provider"
	TagProviderRef = "provider_ref"
	TagFoundBy     = "found_by"
	TagAlert       = "alert"
)

// Alert is something ops must know of that is not a fault in cartflow's code: a payment that took
// money without a paid order, say. Its message is fixed text, so that Sentry groups every alert
// of a kind into one issue; what tells one from another goes in Tags, which never hold personal data.
type Alert struct {
	// Kind names the alert, as the "alert" tag and the fingerprint: orphan_payment, say.
	Kind    string
	Message string
	// Urgent alerts need a person to act (money is held that cartflow could not return); the
	// others say what cartflow found and already set right. Sentry shows them as errors and
	// warnings.
	Urgent bool
	Tags   map[string]string
}

// Alert sends an ops alert to Sentry, scrubbed like every event; without a DSN it does nothing.
func (r *Reporter) Alert(ctx context.Context, a Alert) {
	if !r.Enabled() {
		return
	}
	scope := sentry.NewScope()
	scope.SetLevel(sentry.LevelWarning)
	if a.Urgent {
		scope.SetLevel(sentry.LevelError)
	}
	scope.SetTag(TagAlert, a.Kind)
	scope.SetFingerprint([]string{"cartflow-alert", a.Kind, a.Message})
	for k, v := range a.Tags {
		if v != "" {
			scope.SetTag(k, v)
		}
	}
	id := r.client.CaptureMessage(a.Message, &sentry.EventHint{Context: ctx}, scope)
	if id != nil {
		r.log.Debug("alert reported to sentry", "event_id", string(*id), "alert", a.Kind)
	}
}
