//go:build integration

package billing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

// TestStripeWebhookFromTestModeLayer checks that the events the local Stripe layer sends after a
// customer authenticates are what the verifier accepts and maps, as the BFF would receive them.
func TestStripeWebhookFromTestModeLayer(t *testing.T) {
	t.Parallel()
	e := privateEnv(t)
	v := billing.NewStripeWebhookVerifier(stripeWebhookSecret)
	var mu sync.Mutex
	var events []domain.WebhookEvent
	var refused []error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := v.Verify(r.Context(), r.Header, body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			refused = append(refused, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events = append(events, ev)
		_ = json.NewEncoder(w).Encode(map[string]bool{"received": true})
	}))
	defer srv.Close()
	if err := e.proxy.SetWebhook(srv.URL+"/webhooks/stripe", stripeWebhookSecret); err != nil {
		t.Fatal(err)
	}

	okKey, failKey := newKey(t, "charge-ok"), newKey(t, "charge-fail")
	ok, failed := e.waiting(t, okKey, "pm_card_authenticationRequired"), e.waiting(t, failKey, "pm_card_threeDSecure2Required")
	if err := e.proxy.Authenticate(ok.ProviderRef, true); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.Authenticate(failed.ProviderRef, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(events) + len(refused)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v, want two", e.proxy.WebhookDeliveries())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 0 || len(events) != 2 {
		t.Fatalf("events %+v, refused %v", events, refused)
	}
	byRef := map[string]domain.WebhookEvent{}
	for _, ev := range events {
		byRef[ev.PaymentRef] = ev
	}
	want := map[string]domain.WebhookEvent{
		ok.ProviderRef: {Type: domain.EventPaymentSucceeded, ProviderType: "payment_intent.succeeded", OrderID: "order-" + okKey},
		failed.ProviderRef: {Type: domain.EventPaymentFailed, ProviderType: "payment_intent.payment_failed", OrderID: "order-" + failKey,
			Reason: "payment_intent_authentication_failure"},
	}
	for ref, w := range want {
		got := byRef[ref]
		w.Provider, w.ID, w.PaymentRef, w.Amount, w.Currency = billing.ProviderStripe, got.ID, ref, 2500, "usd"
		if !strings.HasPrefix(got.ID, "evt_") || !reflect.DeepEqual(got, w) {
			t.Fatalf("event for %s: %+v\nwant %+v", ref, got, w)
		}
	}
}
