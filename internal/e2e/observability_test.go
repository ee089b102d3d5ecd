//go:build integration

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/sinks"
)

// reported is the local Mixpanel, Sentry and OTLP sink the e2e stack's worker and BFF report to.
var reported *sinks.Server

// observabilityEnv starts the sink and points the stack's Mixpanel, Sentry, traces and Coralogix
// log shipping at it.
func observabilityEnv() (env []string, stop func(), err error) {
	if reported, err = sinks.Start(sinks.Options{Name: "e2e"}); err != nil {
		return nil, nil, err
	}
	return reported.Env(), reported.Close, nil
}

func TestFunnelEventsArriveInOrderOnceEach(t *testing.T) {
	key := newKey(t)
	// The first charge attempt hits a Stripe 500: the activity retries, and its retry must
	// neither count twice in Mixpanel nor reach Sentry.
	// The test is not parallel, so no other checkout takes the fault.
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1, Status: http.StatusInternalServerError})
	email := strings.ToLower(key) + "@example.com"
	code, res := postJSON(t, key, validBody(email, "pm_card_visa"))
	if code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	res = waitStatus(t, res.CheckoutID, "completed", 30*time.Second)
	if _, attempt := activityRuns(history(t, "checkout-"+key), "Charge"); attempt < 2 {
		t.Fatalf("the charge completed on attempt %d; the fault did not force a retry", attempt)
	}
	want := []string{"checkout_started", "payment_succeeded", "user_registered", "checkout_completed"}
	var got []string
	defer func() {
		if t.Failed() {
			for _, e := range reported.Events() {
				t.Logf("mixpanel: %s %v", e.Event, e.Properties)
			}
		}
	}()
	waitFor(t, "the funnel events", 10*time.Second, func() bool {
		got = reported.EventsFor(email)
		return len(got) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive in the next flush
	if got = reported.EventsFor(email); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("funnel events %v, want %v", got, want)
	}
	// Nothing personal reaches Mixpanel: the customer is a hash until registered.
	for _, e := range reported.Events() {
		if strings.Contains(strings.ToLower(e.Properties["distinct_id"].(string)), "@") {
			t.Errorf("an email reached Mixpanel: %v", e.Properties)
		}
	}
	if n := reported.SentryEventsMentioning("checkout-" + key); n != 0 {
		t.Fatalf("%d Sentry events for a checkout whose activity retried and then succeeded", n)
	}
}
