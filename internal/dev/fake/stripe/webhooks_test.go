//go:build integration

package stripe

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

const testWebhookSecret = "whsec_proxytests"

// receiver is a webhook endpoint that records what it was sent and fails the first fail requests.
type receiver struct {
	url  string
	mu   sync.Mutex
	fail int
	got  []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, fail int) *receiver {
	t.Helper()
	r := &receiver{fail: fail}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body})
		if len(r.got) <= r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/webhooks/stripe"
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitDone waits until every recorded delivery has finished, and returns them.
func (e *env) waitDone(t *testing.T, n int) []WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := e.proxy.WebhookDeliveries()
		done := len(ds) == n
		for _, d := range ds {
			done = done && d.Done
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook deliveries %+v, want %d finished", ds, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verified checks a received request the way a Stripe webhook endpoint does and returns its event.
func verified(t *testing.T, r received) stripe.Event {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	ev, err := webhook.ConstructEvent(r.body, r.header.Get("Stripe-Signature"), testWebhookSecret)
	if err != nil {
		t.Fatalf("the received event does not verify: %v", err)
	}
	return ev
}

func TestWebhookAfterAuthentication(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, 0)
	if err := e.proxy.SetWebhook(rcv.url, testWebhookSecret); err != nil {
		t.Fatal(err)
	}
	ok, failed := e.requiresAction(t, "pm_card_authenticationRequired"), e.requiresAction(t, "pm_card_threeDSecure2Required")
	if n := len(e.proxy.WebhookDeliveries()); n != 0 {
		t.Fatalf("%d events for payments that only wait, want none", n)
	}
	if err := e.proxy.Authenticate(ok.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.Authenticate(failed.ID, false); err != nil {
		t.Fatal(err)
	}
	ds := e.waitDone(t, 2)
	got := rcv.requests()
	if len(got) != 2 {
		t.Fatalf("the receiver got %d requests, want 2", len(got))
	}
	want := map[string]struct {
		typ    stripe.EventType
		status stripe.PaymentIntentStatus
	}{
		ok.ID:     {"payment_intent.succeeded", stripe.PaymentIntentStatusSucceeded},
		failed.ID: {"payment_intent.payment_failed", stripe.PaymentIntentStatusRequiresPaymentMethod},
	}
	for _, r := range got {
		ev := verified(t, r)
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			t.Fatal(err)
		}
		w, known := want[pi.ID]
		if !known || ev.Type != w.typ || pi.Status != w.status || ev.APIVersion != stripe.APIVersion ||
			!strings.HasPrefix(ev.ID, "evt_") || ev.Livemode || pi.Amount != 1800 || pi.Metadata["order_id"] != "o-3ds" {
			t.Fatalf("event %s %s about %s (%s)", ev.ID, ev.Type, pi.ID, pi.Status)
		}
		if pi.ID == failed.ID && (pi.LastPaymentError == nil || pi.LastPaymentError.Code != stripe.ErrorCodePaymentIntentAuthenticationFailure) {
			t.Fatalf("payment_failed event without the failure: %+v", pi.LastPaymentError)
		}
		if pi.ID == ok.ID && pi.AmountReceived != 1800 {
			t.Fatalf("succeeded event with amount_received %d", pi.AmountReceived)
		}
		delete(want, pi.ID)
	}
	for _, d := range ds {
		if !d.Delivered || d.Attempts != 1 || d.Status != http.StatusOK || d.Error != "" || d.URL != rcv.url || d.PaymentIntent == "" {
			t.Fatalf("delivery %+v", d)
		}
	}

	// The admin API lists the same deliveries.
	res, err := http.Get(e.url + "/__cartflow/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var listed []WebhookDelivery
	if err := json.NewDecoder(res.Body).Decode(&listed); err != nil || len(listed) != 2 || listed[0].EventID != ds[0].EventID {
		t.Fatalf("GET /__cartflow/webhooks: %+v %v", listed, err)
	}
}

func TestWebhookRetries(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, 1) // the first attempt meets a BFF that is restarting
	// Set over the admin API, as a stack in another process does it.
	res, err := http.Post(e.url+"/__cartflow/webhook", "application/json",
		strings.NewReader(`{"url":"`+rcv.url+`","secret":"`+testWebhookSecret+`"}`))
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /__cartflow/webhook: %v %v", res, err)
	}
	res.Body.Close()
	pi := e.requiresAction(t, "pm_card_authenticationRequired")
	if err := e.proxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	d := e.waitDone(t, 1)[0]
	got := rcv.requests()
	if !d.Delivered || d.Attempts != 2 || d.Status != http.StatusOK || len(got) != 2 {
		t.Fatalf("delivery %+v after %d requests, want delivered on the second attempt", d, len(got))
	}
	// Both attempts carry the same event, each signed validly.
	first, second := verified(t, got[0]), verified(t, got[1])
	if first.ID != d.EventID || second.ID != d.EventID {
		t.Fatalf("attempts carried events %s and %s, want %s twice", first.ID, second.ID, d.EventID)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, 100)
	if err := e.proxy.SetWebhook(rcv.url, testWebhookSecret); err != nil {
		t.Fatal(err)
	}
	pi := e.requiresAction(t, "pm_card_authenticationRequired")
	if err := e.proxy.Authenticate(pi.ID, false); err != nil {
		t.Fatal(err)
	}
	d := e.waitDone(t, 1)[0]
	if d.Delivered || d.Attempts != len(webhookRetryDelays) || d.Status != http.StatusServiceUnavailable || d.Error == "" ||
		len(rcv.requests()) != len(webhookRetryDelays) {
		t.Fatalf("delivery %+v, want %d failed attempts", d, len(webhookRetryDelays))
	}
}

func TestWebhookSettings(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ url, secret string }{
		{"not a url", testWebhookSecret},
		{"ftp://127.0.0.1/hook", testWebhookSecret},
		{"http://127.0.0.1/hook", ""},
	} {
		if err := e.proxy.SetWebhook(tc.url, tc.secret); err == nil {
			t.Errorf("SetWebhook(%q, %q) accepted", tc.url, tc.secret)
		}
	}
	res, err := http.Post(e.url+"/__cartflow/webhook", "application/json", strings.NewReader(`{"url":"http://127.0.0.1/hook"}`))
	if err != nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("admin webhook without a secret: %v %v", res, err)
	}
	res.Body.Close()

	// Without a webhook, or after it is removed, nothing is sent.
	rcv := newReceiver(t, 0)
	pi := e.requiresAction(t, "pm_card_authenticationRequired")
	if err := e.proxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.SetWebhook(rcv.url, testWebhookSecret); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.SetWebhook("", ""); err != nil {
		t.Fatal(err)
	}
	pi = e.requiresAction(t, "pm_card_authenticationRequired")
	if err := e.proxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	// Events are queued as the payment changes, so an empty list means none will be sent.
	if ds, got := e.proxy.WebhookDeliveries(), rcv.requests(); len(ds) != 0 || len(got) != 0 {
		t.Fatalf("deliveries %+v and %d requests without a webhook", ds, len(got))
	}
}
