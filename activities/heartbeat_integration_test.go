//go:build integration

package activities_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/billing"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// Saving a card and charging one both begin with a provider call, the card check's read of the
// card's fingerprint. Each activity heartbeats from its start, so that a provider slower than the
// heartbeat timeout (5 s) does not time out every attempt before the save or the charge itself
// begins, as the fault suite's slow provider showed (make chaos, slow-provider).
func TestPaymentStepsHeartbeatThroughTheCardCheck(t *testing.T) {
	steps := map[string]func(t *testing.T, w *ledgerWorker) error{
		"SavePaymentMethod": func(_ *testing.T, w *ledgerWorker) error {
			_, err := w.env.ExecuteActivity(w.acts.SavePaymentMethod, activities.SavePaymentMethodInput{
				Provider: billing.ProviderStripe, Token: "pm_card_visa", Email: "slow@example.com", Name: "Slow Provider",
				IdempotencyKey: "save-through-a-slow-card-check",
			})
			return err
		},
		"Charge": func(t *testing.T, w *ledgerWorker) error {
			return w.chargeToken(t, "checkout-slow-card-check/charge", "pm_card_visa", w.createOrder(t, "slow-card-check"))
		},
	}
	for name, step := range steps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			heartbeatsThroughTheCardCheck(t, step)
		})
	}
}

func heartbeatsThroughTheCardCheck(t *testing.T, step func(t *testing.T, w *ledgerWorker) error) {
	w, proxy, _ := cardTestingWorker(t, activities.DeclineLimits{})
	w.acts.HeartbeatInterval = 20 * time.Millisecond
	const slow = 500 * time.Millisecond
	proxy.AddFault(stripefake.Fault{Method: http.MethodGet, PathPrefix: "/v1/payment_methods/", Count: 1, DelayMS: int(slow.Milliseconds())})
	var mu sync.Mutex
	var first time.Time
	w.env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
	})

	start := time.Now()
	if err := step(t, w); err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, r := range proxy.Requests() {
		checked = checked || (r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/v1/payment_methods/"))
	}
	if !checked || len(proxy.Faults()) != 0 {
		t.Fatalf("the card check did not read the card at the provider (faults left: %+v): the test proves nothing", proxy.Faults())
	}
	mu.Lock()
	defer mu.Unlock()
	if first.IsZero() {
		t.Fatalf("no heartbeat at all, want one while the card check's %s call runs", slow)
	}
	if at := first.Sub(start); at >= slow {
		t.Fatalf("first heartbeat %v after the start, want one while the card check's %s call runs", at, slow)
	}
}
