//go:build integration

package activities_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/analytics"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/store"
)

// mixpanelEvent is one event as it arrived at the fake ingestion API.
type mixpanelEvent struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

// dedupKey is what Mixpanel deduplicates on.
func (e mixpanelEvent) dedupKey() [4]any {
	return [4]any{e.Event, e.Properties["distinct_id"], e.Properties["time"], e.Properties["$insert_id"]}
}

// fakeIngestion stands in for Mixpanel's /track and records every event and raw body.
type fakeIngestion struct {
	url    string
	mu     sync.Mutex
	events []mixpanelEvent
	bodies []string
}

func startIngestion(t *testing.T) *fakeIngestion {
	t.Helper()
	f := &fakeIngestion{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var batch []mixpanelEvent
		if r.URL.Path != "/track" || json.Unmarshal(body, &batch) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.events, f.bodies = append(f.events, batch...), append(f.bodies, string(body))
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":1,"error":null}`))
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeIngestion) got() ([]mixpanelEvent, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mixpanelEvent(nil), f.events...), strings.Join(f.bodies, "\n")
}

// fakeGateway charges every token but "decline", which the bank refuses, and "malformed", whose
// request the provider refuses as cartflow's bug.
type fakeGateway struct{}

func (fakeGateway) Charge(_ context.Context, req billing.ChargeRequest) (billing.ChargeResult, error) {
	switch req.Token {
	case "decline":
		return billing.ChargeResult{}, &billing.DeclineError{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "declined"}
	case "malformed":
		return billing.ChargeResult{}, &billing.RejectedError{Code: "parameter_unknown", Message: malformedMessage, Malformed: true}
	}
	return billing.ChargeResult{ProviderRef: "pi_" + req.IdempotencyKey}, nil
}

func (fakeGateway) Refund(_ context.Context, req billing.RefundRequest) (billing.RefundResult, error) {
	return billing.RefundResult{ProviderRef: "re_" + req.IdempotencyKey, Amount: req.Amount}, nil
}

// funnelWorker is one worker's activities, with its own analytics client.
type funnelWorker struct {
	acts   *activities.Activities
	client *analytics.Client
	env    *testsuite.TestActivityEnvironment
}

func newFunnelWorker(t *testing.T, st *store.Store, apiURL string) *funnelWorker {
	t.Helper()
	client, err := analytics.New(analytics.Config{Token: "project-token", APIURL: apiURL, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Store: st, Gateways: map[string]billing.Gateway{billing.ProviderStripe: fakeGateway{}}, Analytics: client}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return &funnelWorker{acts: acts, client: client, env: env}
}

func (w *funnelWorker) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.client.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// local runs a local activity and decodes its result into out (when not nil).
func (w *funnelWorker) local(t *testing.T, fn any, in any, out any) {
	t.Helper()
	val, err := w.env.ExecuteLocalActivity(fn, in)
	if err != nil {
		t.Fatalf("%T: %v", fn, err)
	}
	if out != nil {
		if err := val.Get(out); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *funnelWorker) createOrder(t *testing.T, key string) activities.OrderSummary {
	t.Helper()
	var order activities.OrderSummary
	w.local(t, w.acts.CreateOrder, activities.CreateOrderInput{
		CheckoutID: "chk_" + key, IdempotencyKey: key, RequestHash: "h", WorkflowID: "checkout-" + key,
		Customer: activities.Customer{Email: "ada@example.com", Name: "Ada Lovelace"}, Provider: billing.ProviderStripe,
		Lines: []activities.Line{{SKU: "tshirt-classic", Quantity: 2}},
	}, &order)
	return order
}

func (w *funnelWorker) charge(t *testing.T, key, token string, order activities.OrderSummary) error {
	t.Helper()
	_, err := w.env.ExecuteActivity(w.acts.Charge, activities.ChargeInput{
		OrderID: order.OrderID, Provider: billing.ProviderStripe, Token: token, Amount: order.Amount,
		Currency: order.Currency, IdempotencyKey: "checkout-" + key + "/charge", Description: "test",
	})
	return err
}

// A purchase driven through the real activities against Postgres sends the checkout funnel in
// order, for one customer, without the email; activities run again (a retry on this worker, and
// on another worker) resend events that Mixpanel deduplicates.
func TestFunnelEventsOfAPurchase(t *testing.T) {
	t.Parallel()
	st := store.New(pg.NewDB(t))
	mp := startIngestion(t)
	w := newFunnelWorker(t, st, mp.url)

	order := w.createOrder(t, "funnel-1")
	w.createOrder(t, "funnel-1") // retried: the same order, the same event
	if err := w.charge(t, "funnel-1", "pm_card_visa", order); err != nil {
		t.Fatal(err)
	}
	customer := activities.Customer{Email: "ada@example.com", Name: "Ada Lovelace"}
	// Another worker, with a client of its own and so no memory of what was sent, for re-runs.
	mp2 := startIngestion(t)
	w2 := newFunnelWorker(t, st, mp2.url)
	var userID string
	w.local(t, w.acts.RegisterUser, customer, &userID)
	w.local(t, w.acts.RegisterUser, customer, nil)   // retried on this worker
	w2.local(t, w2.acts.RegisterUser, customer, nil) // and on another
	w2.createOrder(t, "funnel-1")
	w.local(t, w.acts.ConfirmUser, userID, nil)
	w.local(t, w.acts.CompleteOrder, activities.CompleteOrderInput{Caller: activities.CallerCheckout, OrderID: order.OrderID, UserID: userID}, nil)
	w.close(t)

	events, raw := mp.got()
	var names []string
	for _, e := range events {
		names = append(names, e.Event)
	}
	want := []string{activities.FunnelCheckoutStarted, activities.FunnelPaymentSucceeded, activities.FunnelUserRegistered, activities.FunnelCheckoutCompleted}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	emailID := analytics.EmailID("ada@example.com")
	for i, e := range events {
		p := e.Properties
		wantDistinct := emailID
		if i >= 2 {
			wantDistinct = userID // registered from user_registered on
		}
		if p["distinct_id"] != wantDistinct || p["$device_id"] != emailID || p["token"] != "project-token" {
			t.Errorf("%s: distinct_id %v, $device_id %v, token %v", e.Event, p["distinct_id"], p["$device_id"], p["token"])
		}
		if i != 2 && (p["order_id"] != order.OrderID || p["amount"] != float64(5000) || p["currency"] != "usd" || p["provider"] != "stripe") {
			t.Errorf("%s: properties %v", e.Event, p)
		}
	}
	if events[3].Properties["$user_id"] != userID {
		t.Errorf("checkout_completed properties: %v", events[3].Properties)
	}
	// Not "ada" alone: a random id (a UUID's "40ba-ada7") holds it by chance.
	if lower := strings.ToLower(raw); strings.Contains(lower, "ada@") || strings.Contains(lower, "lovelace") ||
		strings.Contains(raw, "pm_card_visa") {
		t.Fatalf("the customer's email, name or payment token reached Mixpanel: %s", raw)
	}

	// The activities run again on the other worker sent events that Mixpanel drops as duplicates.
	w2.close(t)
	again, _ := mp2.got()
	if len(again) != 2 || again[0].dedupKey() != events[2].dedupKey() || again[1].dedupKey() != events[0].dedupKey() {
		t.Fatalf("re-run events %+v do not deduplicate against %+v", again, events)
	}

	// A returning customer's next checkout registers no new user.
	w3 := newFunnelWorker(t, st, mp2.url)
	w3.local(t, w3.acts.RegisterUser, customer, nil)
	w3.close(t)
	if later, _ := mp2.got(); len(later) != 2 {
		t.Fatalf("a returning customer sent %+v", later[2:])
	}
}

// A final decline sends payment_failed with the bank's reason; the order's completion for a
// renewal sends no checkout_completed, and neither does one whose caller is not given.
func TestFunnelDeclineAndRenewalOrder(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	st := store.New(pool)
	mp := startIngestion(t)
	w := newFunnelWorker(t, st, mp.url)

	declined := w.createOrder(t, "funnel-decline")
	if err := w.charge(t, "funnel-decline", "decline", declined); err == nil {
		t.Fatal("the decline was not an error")
	}

	// An order that a renewal completes: its completion is not a checkout's, whatever the
	// order's workflow ID looks like, because the caller says so.
	renewal := w.createOrder(t, "renewal-like")
	if err := w.charge(t, "renewal-like", "pm_card_visa", renewal); err != nil {
		t.Fatal(err)
	}
	// An input without a caller counts as no checkout's.
	unknown := w.createOrder(t, "no-caller")
	if err := w.charge(t, "no-caller", "pm_card_visa", unknown); err != nil {
		t.Fatal(err)
	}
	var userID string
	w.local(t, w.acts.RegisterUser, activities.Customer{Email: "ada@example.com", Name: "Ada Lovelace"}, &userID)
	w.local(t, w.acts.CompleteOrder, activities.CompleteOrderInput{Caller: activities.CallerRenewal, OrderID: renewal.OrderID, UserID: userID}, nil)
	w.local(t, w.acts.CompleteOrder, activities.CompleteOrderInput{OrderID: unknown.OrderID, UserID: userID}, nil)
	w.close(t)

	events, _ := mp.got()
	var names []string
	for _, e := range events {
		names = append(names, e.Event)
	}
	want := []string{activities.FunnelCheckoutStarted, activities.FunnelPaymentFailed,
		activities.FunnelCheckoutStarted, activities.FunnelPaymentSucceeded,
		activities.FunnelCheckoutStarted, activities.FunnelPaymentSucceeded, activities.FunnelUserRegistered}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	if p := events[1].Properties; p["decline_code"] != "insufficient_funds" || p["failure_code"] != "card_declined" || p["order_id"] != declined.OrderID {
		t.Errorf("payment_failed properties %v", p)
	}
}

// A renewal's dunning, renewal and cancellation send the subscription events once per period:
// a second decline in the same period is the same past_due event.
func TestFunnelSubscriptionEvents(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	ctx := context.Background()
	var subID, userID string
	if err := pool.QueryRow(ctx, `WITH u AS (INSERT INTO users (email, name) VALUES ('grace@example.com', 'Grace') RETURNING id)
		INSERT INTO subscriptions (user_id, sku, status, provider, current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT id, 'plan-monthly', 'active', 'stripe', '2025-03-01T00:00:00Z', '2025-04-01T00:00:00Z', 900, 'usd', 'month' FROM u
		RETURNING id::text, user_id::text`).Scan(&subID, &userID); err != nil {
		t.Fatal(err)
	}
	mp := startIngestion(t)
	w := newFunnelWorker(t, store.New(pool), mp.url)
	period := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	for attempt := 1; attempt <= 2; attempt++ {
		w.local(t, w.acts.MarkPastDue, activities.SubscriptionChange{SubscriptionID: subID, PeriodEnd: period, Attempts: attempt, Reason: "declined"}, nil)
	}
	w.local(t, w.acts.RenewSubscription, activities.SubscriptionChange{SubscriptionID: subID, PeriodEnd: period, Reason: "renewal paid"}, nil)
	var sub activities.Subscription
	w.local(t, w.acts.CancelSubscription, activities.SubscriptionChange{SubscriptionID: subID, Reason: "customer asked"}, &sub)
	w.close(t)

	events, raw := mp.got()
	var names []string
	for _, e := range events {
		names = append(names, e.Event)
		if p := e.Properties; p["distinct_id"] != userID || p["subscription_id"] != subID || p["plan_sku"] != "plan-monthly" || p["amount"] != float64(900) {
			t.Errorf("%s: properties %v", e.Event, p)
		}
	}
	want := []string{activities.FunnelSubscriptionPastDue, activities.FunnelSubscriptionRenewed, activities.FunnelSubscriptionCanceled}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	if sub.CanceledAt == nil || events[2].Properties["time"] != float64(sub.CanceledAt.UnixMilli()) {
		t.Errorf("canceled at %v, event time %v", sub.CanceledAt, events[2].Properties["time"])
	}
	if strings.Contains(strings.ToLower(raw), "grace") {
		t.Fatalf("the customer's email or name reached Mixpanel: %s", raw)
	}
}
