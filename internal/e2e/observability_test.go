//go:build integration

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/analytics"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// collector stands in for Mixpanel's ingestion API and Sentry's envelope endpoint: it records
// what the worker and the BFF send, so that tests assert on what arrived.
type collector struct {
	mu        sync.Mutex
	events    []mixpanelEvent
	envelopes []string
}

type mixpanelEvent struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.URL.Path == "/track":
		var batch []mixpanelEvent
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, `{"status":0,"error":"bad batch"}`, http.StatusBadRequest)
			return
		}
		c.events = append(c.events, batch...)
		_, _ = io.WriteString(w, `{"status":1,"error":null}`)
	case strings.HasPrefix(r.URL.Path, "/api/1/envelope"):
		c.envelopes = append(c.envelopes, string(body))
		_, _ = io.WriteString(w, `{"id":"e2e"}`)
	default:
		http.NotFound(w, r)
	}
}

// eventsFor lists, in arrival order, the funnel events of the customer with this email: every
// event carries the email's hash as $device_id, and never the email.
func (c *collector) eventsFor(email string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, e := range c.events {
		if e.Properties["$device_id"] == analytics.EmailID(email) {
			names = append(names, e.Event)
		}
	}
	return names
}

func (c *collector) sentryEventsMentioning(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, env := range c.envelopes {
		if strings.Contains(env, s) {
			n++
		}
	}
	return n
}

// observed is the collector the e2e stack's worker and BFF report to.
var observed = &collector{}

// observabilityEnv points the stack's Mixpanel and Sentry at the collector, and its traces and
// Coralogix log shipping at the OTLP collector, all on one local server.
func observabilityEnv() (env []string, stop func()) {
	mux := http.NewServeMux()
	mux.Handle("/v1/", shipped)
	mux.Handle("/", observed)
	srv := httptest.NewServer(mux)
	dsn := "http://public@" + strings.TrimPrefix(srv.URL, "http://") + "/1"
	return append([]string{"MIXPANEL_TOKEN=e2e-project-token", "MIXPANEL_API_URL=" + srv.URL, "MIXPANEL_FLUSH_INTERVAL=200ms",
		"SENTRY_DSN=" + dsn, "SENTRY_ENVIRONMENT=e2e"}, otlpEnv(srv.URL)...), srv.Close
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
			observed.mu.Lock()
			for _, e := range observed.events {
				t.Logf("mixpanel: %s %v", e.Event, e.Properties)
			}
			observed.mu.Unlock()
		}
	}()
	waitFor(t, "the funnel events", 10*time.Second, func() bool {
		got = observed.eventsFor(email)
		return len(got) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive in the next flush
	if got = observed.eventsFor(email); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("funnel events %v, want %v", got, want)
	}
	// Nothing personal reaches Mixpanel: the customer is a hash until registered.
	observed.mu.Lock()
	for _, e := range observed.events {
		if strings.Contains(strings.ToLower(e.Properties["distinct_id"].(string)), "@") {
			t.Errorf("an email reached Mixpanel: %v", e.Properties)
		}
	}
	observed.mu.Unlock()
	if n := observed.sentryEventsMentioning("checkout-" + key); n != 0 {
		t.Fatalf("%d Sentry events for a checkout whose activity retried and then succeeded", n)
	}
}
