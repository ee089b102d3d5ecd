package errorreport

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

// visa is Stripe's test card number, built at run time so that no card number sits in the source.
var visa = strings.Repeat("4242", 4)

func TestScrubString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"stripe: invalid key sk_live_51Habcdef", "stripe: invalid key [redacted]"},
		{"key sk_test_4eC39HqLyjWDarjtT1zdp7dc", "key [redacted]"},
		{"pk_live_abc123 leaked", "[redacted] leaked"},
		{"webhook secret whsec_abc123", "webhook secret [redacted]"},
		{"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Authorization: [redacted]"},
		{"payment method pm_card_chargeDeclined declined", "payment method [redacted] declined"},
		{"token tok_visa", "token [redacted]"},
		{"nonce fake-valid-nonce and tokencc_bh_abc", "nonce [redacted] and [redacted]"},
		{"client secret pi_3Nabc_secret_XyZ", "client secret [redacted]"},
		{"card " + visa + " charged", "card [redacted] charged"},
		{"card " + strings.TrimSpace(strings.Repeat("4242 ", 4)), "card [redacted]"},
		{"card 4000-0000-0000-0002", "card [redacted]"},
		{"customer ada.lovelace+shop@example.co.uk", "customer [redacted]"},
		// What must survive: ids, amounts, short numbers, codes.
		{"order 9b2f0c4e-1d2a-4c55-9a51-0f8d3c2b1a00 amount 6200 usd", "order 9b2f0c4e-1d2a-4c55-9a51-0f8d3c2b1a00 amount 6200 usd"},
		{"checkout-key-12345678 attempt 3", "checkout-key-12345678 attempt 3"},
		{"decline_code insufficient_funds", "decline_code insufficient_funds"},
	} {
		if got := scrubString(tc.in); got != tc.want {
			t.Errorf("scrubString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubEvent(t *testing.T) {
	t.Parallel()
	e := &sentry.Event{
		Message: "charge failed for ada@example.com with pm_card_visa",
		User:    sentry.User{ID: "user-42", Email: "ada@example.com", IPAddress: "203.0.113.9", Name: "Ada Lovelace"},
		Request: &sentry.Request{
			URL: "http://localhost:8080/api/v1/orders/o1/refunds?token=pm_card_visa", Method: "POST",
			Data: `{"amount":100}`, QueryString: "token=pm_card_visa", Cookies: "session=abc",
			Headers: map[string]string{"Authorization": "Bearer staffkey0123456789", "Idempotency-Key": "k-0123456789",
				"Paypal-Auth-Algo": "SHA256withRSA", "Accept": "application/json"},
			Env: map[string]string{"REMOTE_ADDR": "203.0.113.9"},
		},
		Exception: []sentry.Exception{{Type: "*errors.errorString", Value: "card " + visa + " declined"}},
		Tags:      map[string]string{"workflow_id": "checkout-ada@example.com"},
		Extra: map[string]any{"customer_email": "ada@example.com", "note": "paid with tok_visa",
			"nested": map[string]any{"list": []any{"4" + strings.Repeat("0", 14) + "2"}}},
		Breadcrumbs: []*sentry.Breadcrumb{{Message: "sent receipt to ada@example.com", Data: map[string]any{"api_key": "x"}}},
	}
	got := scrubEvent(e, &sentry.EventHint{})
	if got == nil {
		t.Fatal("event dropped")
	}
	if u := got.User; u.ID != "user-42" || u.Email != "" || u.IPAddress != "" || u.Name != "" || u.Username != "" || len(u.Data) != 0 {
		t.Errorf("user: %+v, want the customer id only", got.User)
	}
	if _, ok := got.Request.Headers["Authorization"]; ok {
		t.Error("Authorization header kept")
	}
	if _, ok := got.Request.Headers["Idempotency-Key"]; ok {
		t.Error("Idempotency-Key header kept")
	}
	if _, ok := got.Request.Headers["Paypal-Auth-Algo"]; ok {
		t.Error("PayPal header kept")
	}
	if got.Request.Headers["Accept"] != "application/json" {
		t.Error("harmless header dropped")
	}
	if got.Request.Data != "" || got.Request.QueryString != "" || got.Request.Cookies != "" || got.Request.Env != nil {
		t.Errorf("request: %+v", got.Request)
	}
	if got.Request.URL != "http://localhost:8080/api/v1/orders/o1/refunds" {
		t.Errorf("URL %q", got.Request.URL)
	}
	if got.Message != "charge failed for [redacted] with [redacted]" {
		t.Errorf("message %q", got.Message)
	}
	if got.Exception[0].Value != "card [redacted] declined" {
		t.Errorf("exception %q", got.Exception[0].Value)
	}
	if got.Tags["workflow_id"] != Redacted {
		t.Errorf("tag %q", got.Tags["workflow_id"])
	}
	if got.Extra["customer_email"] != Redacted || got.Extra["note"] != "paid with [redacted]" {
		t.Errorf("extra %v", got.Extra)
	}
	if l := got.Extra["nested"].(map[string]any)["list"].([]any); l[0] != Redacted {
		t.Errorf("nested extra %v", l)
	}
	if b := got.Breadcrumbs[0]; b.Message != "sent receipt to [redacted]" || b.Data["api_key"] != Redacted {
		t.Errorf("breadcrumb %+v", b)
	}
}

// TestScrubbedOnTheWire sends an error full of secrets through a real client to the local
// endpoint and looks for them in what arrived.
func TestScrubbedOnTheWire(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	err := errors.New("stripe: card " + visa + " (pm_card_visa) of ada@example.com refused; Authorization: Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc")
	rep.report(context.Background(), err, map[string]string{TagOrderID: "order-1"}, "user-42")
	flush(t, rep)
	e := srv.oneEvent(t)
	if v := e.Exception[0].Value; v != "stripe: card [redacted] ([redacted]) of [redacted] refused; Authorization: [redacted]" {
		t.Errorf("exception value %q", v)
	}
	if e.User["id"] != "user-42" || len(e.User) != 1 {
		t.Errorf("user %v", e.User)
	}
	_, raw := srv.Requests()
	for _, leak := range []string{visa, "pm_card_visa", "ada@example.com", "sk_test_"} {
		if strings.Contains(raw, leak) {
			t.Errorf("%q reached Sentry", leak)
		}
	}
}

// recordingTransport keeps the events a client hands it instead of sending them.
type recordingTransport struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (r *recordingTransport) Flush(time.Duration) bool              { return true }
func (r *recordingTransport) FlushWithContext(context.Context) bool { return true }
func (r *recordingTransport) Configure(sentry.ClientOptions)        {}
func (r *recordingTransport) Close()                                {}
func (r *recordingTransport) SendEvent(e *sentry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// TestConfigTransport: a configured Transport receives the events, already scrubbed.
func TestConfigTransport(t *testing.T) {
	t.Parallel()
	tr := &recordingTransport{}
	rep, err := New(Config{DSN: "http://public@127.0.0.1:9/1", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	rep.report(context.Background(), errors.New("charge for ada@example.com failed"), map[string]string{TagOrderID: "o-1"}, "")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.events) != 1 {
		t.Fatalf("want 1 event, got %d", len(tr.events))
	}
	if e := tr.events[0]; e.Exception[0].Value != "charge for [redacted] failed" || e.Tags[TagOrderID] != "o-1" {
		t.Errorf("event: %q %v", e.Exception[0].Value, e.Tags)
	}
}
