//go:build integration

package activities_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/store"
)

// listingGateway is a provider that lists the payments it holds and records the refunds asked of it.
type listingGateway struct {
	mu       sync.Mutex
	payments []billing.ProviderPayment
	refunds  []billing.RefundRequest
}

func (g *listingGateway) Charge(context.Context, billing.ChargeRequest) (billing.ChargeResult, error) {
	panic("the reconciliation never charges")
}

func (g *listingGateway) Refund(_ context.Context, req billing.RefundRequest) (billing.RefundResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refunds = append(g.refunds, req)
	for _, p := range g.payments {
		if p.Ref == req.PaymentRef {
			return billing.RefundResult{ProviderRef: "re_" + p.Ref, Amount: p.Amount - p.Refunded}, nil
		}
	}
	return billing.RefundResult{}, &billing.RejectedError{Code: "resource_missing", Message: "no such payment"}
}

func (g *listingGateway) SucceededPayments(_ context.Context, since time.Time) ([]billing.ProviderPayment, error) {
	var out []billing.ProviderPayment
	for _, p := range g.payments {
		if !p.Created.Before(since) {
			out = append(out, p)
		}
	}
	return out, nil
}

// order writes an order and takes its charge under key to the given outcome (none: still charging).
func order(t *testing.T, s *store.Store, key string, outcome *store.PaymentOutcome) store.Order {
	t.Helper()
	ctx := context.Background()
	o, err := s.CreateOrder(ctx, store.NewOrder{CheckoutID: key, IdempotencyKey: key, RequestHash: "h", WorkflowID: "checkout-" + key,
		Email: key + "@example.com", Name: "Ada", Provider: "stripe", Lines: []store.LineRequest{{SKU: "mug-enamel", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: "checkout-" + key + "/charge", Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
		t.Fatal(err)
	}
	if outcome != nil {
		if err := s.SettlePayment(ctx, "checkout-"+key+"/charge", *outcome); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func TestReconciliationRefundsOrphansOnceAndLeavesTheRest(t *testing.T) {
	ctx := context.Background()
	s := store.New(pg.NewDB(t))
	declined := &store.PaymentOutcome{Status: domain.PaymentFailed, Failure: &domain.Failure{Code: "card_declined", Message: "declined"}}
	paid := order(t, s, "paid", &store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_paid"})
	failed := order(t, s, "failed", declined)
	charging := order(t, s, "charging", nil)
	now := time.Now()
	pay := func(ref, key, orderID string, refunded int64, age time.Duration) billing.ProviderPayment {
		return billing.ProviderPayment{Ref: ref, IdempotencyKey: key, OrderID: orderID, Amount: 1500, Refunded: refunded, Currency: "usd",
			Created: now.Add(-age)}
	}
	gw := &listingGateway{payments: []billing.ProviderPayment{
		pay("pi_paid", "checkout-paid/charge", paid.ID, 0, time.Hour),             // the paid order's own charge
		pay("pi_double", "", paid.ID, 0, time.Hour),                               // a second payment for the paid order
		pay("pi_failed", "checkout-failed/charge", failed.ID, 0, time.Hour),       // money taken for a declined order
		pay("pi_charging", "checkout-charging/charge", charging.ID, 0, time.Hour), // its checkout settles it
		pay("pi_stray", "checkout-gone/charge", "", 0, time.Hour),                 // cartflow's key, no order
		pay("pi_returned", "checkout-failed/retry", failed.ID, 1500, time.Hour),   // refunded in full already
		pay("pi_foreign", "", "", 0, time.Hour),                                   // not cartflow's
		pay("pi_old", "checkout-failed/old", failed.ID, 0, 72*time.Hour),          // outside the window
	}}
	reg := metrics.New()
	acts := &activities.Activities{Store: s, Gateways: map[string]billing.Gateway{"stripe": gw},
		Reconcilers: map[string]billing.Reconciler{"stripe": gw}, Metrics: reg}

	if got, _ := acts.ReconcilingProviders(ctx); len(got) != 1 || got[0] != "stripe" {
		t.Fatalf("reconciling providers %v", got)
	}
	since := now.Add(-48 * time.Hour)
	got, err := acts.FindOrphanPayments(ctx, activities.ReconcileProviderInput{Provider: "stripe", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if got.Checked != 7 || got.Matched != 1 || got.InFlight != 1 || got.Refunded != 1 || got.Foreign != 1 || got.Found != 3 || len(got.Orphans) != 3 {
		t.Fatalf("reconciliation %+v", got)
	}
	wantOrder := map[string]string{"pi_double": paid.ID, "pi_failed": failed.ID, "pi_stray": ""}
	for _, o := range got.Orphans {
		if want, ok := wantOrder[o.PaymentRef]; !ok || o.OrderID != want || o.FoundBy != store.FoundByReconciliation ||
			o.RefundKey != store.OrphanRefundKey("stripe", o.PaymentRef) {
			t.Errorf("orphan %+v", o)
		}
		res, err := acts.RefundOrphanPayment(ctx, o)
		if err != nil || !res.Refunded || res.Amount != 1500 {
			t.Errorf("refund of %s: %+v, %v", o.PaymentRef, res, err)
		}
	}

	// A second run finds the same orphans refunded and refunds nothing.
	again, err := acts.FindOrphanPayments(ctx, activities.ReconcileProviderInput{Provider: "stripe", Since: since})
	if err != nil || again.Found != 0 || len(again.Orphans) != 0 || again.Settled != 3 {
		t.Fatalf("second run %+v, %v", again, err)
	}
	if len(gw.refunds) != 3 {
		t.Fatalf("%d refunds at the provider, want 3", len(gw.refunds))
	}
	for _, r := range gw.refunds {
		if r.IdempotencyKey != store.OrphanRefundKey("stripe", r.PaymentRef) || r.Amount != 0 {
			t.Errorf("refund request %+v, want all that remains under the orphan's key", r)
		}
	}
	for _, ref := range []string{"pi_double", "pi_failed", "pi_stray"} {
		if o, err := s.OrphanPayment(ctx, "stripe", ref); err != nil || o.Status != store.OrphanRefunded || o.RefundRef != "re_"+ref {
			t.Errorf("orphan %s: %+v, %v", ref, o, err)
		}
	}
	// The declined order keeps its status; the payment's story is on it.
	events, err := s.OrderEvents(ctx, failed.ID)
	if err != nil || len(events) != 2 || events[0].Type != store.OrderEventOrphanPayment || events[1].Type != store.OrderEventOrphanRefunded {
		t.Fatalf("events of the failed order %+v, %v", events, err)
	}
}

func TestWebhookOrphanIsOnlyAFailedOrExpiredOrdersPayment(t *testing.T) {
	ctx := context.Background()
	s := store.New(pg.NewDB(t))
	paid := order(t, s, "paid", &store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_paid"})
	failed := order(t, s, "failed", &store.PaymentOutcome{Status: domain.PaymentFailed, Failure: &domain.Failure{Code: "card_declined"}})
	charging := order(t, s, "charging", nil)
	acts := &activities.Activities{Store: s}
	for _, tc := range []struct {
		ref, orderID string
		orphan       bool
	}{
		{"pi_paid", paid.ID, false},         // the order's own charge
		{"pi_paid_other", paid.ID, false},   // left to the reconciliation, which sees refunds
		{"pi_charging", charging.ID, false}, // its checkout settles it
		{"pi_failed", failed.ID, true},
	} {
		got, err := acts.FindOrphanPayment(ctx, activities.OrphanCheck{Provider: "stripe", PaymentRef: tc.ref, OrderID: tc.orderID,
			Amount: 1500, Currency: "usd"})
		if err != nil || (got != nil) != tc.orphan {
			t.Errorf("%s: orphan %+v, %v; want orphan=%v", tc.ref, got, err, tc.orphan)
		}
		if got != nil && (got.FoundBy != store.FoundByWebhook || got.OrderID != failed.ID || got.Amount != 1500) {
			t.Errorf("%s: orphan %+v", tc.ref, got)
		}
	}
}
