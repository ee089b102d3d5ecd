//go:build integration

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/workflows"
)

// createPaymentIntent makes a PaymentIntent that succeeds at once, directly at the Stripe
// layer and so behind cartflow's back, and returns its JSON as Stripe serves it.
func createPaymentIntent(t *testing.T, amount int64, metadata map[string]string) (string, json.RawMessage) {
	t.Helper()
	id, body, err := e2ekit.StrayPayment(t.Context(), dev.StripeURL, stack.LocalStripeKey, amount, metadata)
	if err != nil {
		t.Fatal(err)
	}
	return id, body
}

// paymentIntent returns what the Stripe layer holds for a PaymentIntent.
func paymentIntent(t *testing.T, id string) stripefake.PaymentIntent {
	t.Helper()
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.ID == id {
			return pi
		}
	}
	t.Fatalf("the Stripe layer has no PaymentIntent %s", id)
	return stripefake.PaymentIntent{}
}

// sendStripeEvent posts a signed Stripe event about the object to the BFF's webhook, as Stripe
// would, and expects it accepted.
func sendStripeEvent(t *testing.T, eventType string, object json.RawMessage) {
	t.Helper()
	payload, err := stripefake.EventPayload("evt_e2e_"+strings.ToLower(rand.Text()), eventType, object)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, dev.APIURL+"/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripefake.SignatureHeader(payload, stack.LocalStripeWebhookSecret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("webhook: %d %s", resp.StatusCode, body)
	}
}

// orphanRow is an orphan_payments row, or status "" when there is none.
type orphanRow struct {
	Status, FoundBy, OrderID, RefundRef string
	Amount                              int64
}

func orphanOf(t *testing.T, ref string) orphanRow {
	t.Helper()
	var r orphanRow
	err := db.QueryRow(context.Background(), `SELECT status, found_by, coalesce(order_id::text, ''), coalesce(refund_ref, ''), amount
		FROM orphan_payments WHERE provider = 'stripe' AND provider_ref = $1`, ref).Scan(&r.Status, &r.FoundBy, &r.OrderID, &r.RefundRef, &r.Amount)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return r
}

// A declined checkout's order is failed; a payment that then succeeds for it anyway (a second
// attempt behind cartflow's back, a provider that settled late) is an orphan. Stripe's webhook
// about it refunds it in full, records it on the order, counts it and reaches Sentry.
func TestOrphanPaymentWebhookRefundsIt(t *testing.T) {
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_chargeDeclined"))
	if code != http.StatusCreated || res.Status != "failed" {
		t.Fatalf("declined checkout: %d %+v", code, res)
	}
	worker := scrape(t, dev.WorkerMetricsURL)
	series := `cartflow_orphan_payments_total{found_by="webhook",provider="stripe"}`
	before := e2ekit.MetricValue(worker, series)
	if before < 0 {
		t.Fatalf("worker /metrics lacks %s", series)
	}

	ref, object := createPaymentIntent(t, res.Amount, map[string]string{"order_id": res.OrderID,
		"cartflow_idempotency_key": "checkout-" + key + "/charge"})
	sendStripeEvent(t, "payment_intent.succeeded", object)

	waitFor(t, "the orphan's refund", 30*time.Second, func() bool { return orphanOf(t, ref).Status == "refunded" })
	if got := orphanOf(t, ref); got.FoundBy != "webhook" || got.OrderID != res.OrderID || got.Amount != res.Amount || got.RefundRef == "" {
		t.Fatalf("orphan row %+v", got)
	}
	if pi := paymentIntent(t, ref); pi.AmountRefunded != pi.Amount || pi.Amount != res.Amount {
		t.Fatalf("PaymentIntent %s: %d of %d refunded", ref, pi.AmountRefunded, pi.Amount)
	}
	if n := queryInt(t, `SELECT count(*) FROM order_events WHERE order_id = $1 AND type IN ('orphan_payment', 'orphan_payment.refunded')`, res.OrderID); n != 2 {
		t.Fatalf("%d orphan events on the order, want the orphan and its refund", n)
	}
	// The order stays failed: its own charge never took money.
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE id = $1 AND status = 'failed' AND refunded_amount = 0`, res.OrderID); n != 1 {
		t.Fatal("the failed order changed")
	}
	if after := e2ekit.MetricValue(scrape(t, dev.WorkerMetricsURL), series); after != before+1 {
		t.Fatalf("%s went from %v to %v, want one more", series, before, after)
	}
	waitFor(t, "the Sentry alert", 10*time.Second, func() bool { return reported.SentryEventsMentioning(ref) >= 1 })
	if env := reported.EnvelopeMentioning(ref); !strings.Contains(env, res.OrderID) || strings.Contains(env, "@example.com") {
		t.Fatalf("Sentry alert without the order id, or with the customer's email: %s", env)
	}

	// The same event again, redelivered, refunds nothing more.
	sendStripeEvent(t, "payment_intent.succeeded", object)
	time.Sleep(2 * time.Second)
	if n := queryInt(t, `SELECT count(*) FROM order_events WHERE order_id = $1 AND type = 'orphan_payment'`, res.OrderID); n != 1 {
		t.Fatalf("%d orphan_payment events after a second event", n)
	}
	refunds := 0
	for _, r := range dev.StripeProxy.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/refunds" && r.IdempotencyKey == "orphan/stripe/"+ref && !r.Replayed {
			refunds++
		}
	}
	if refunds != 1 {
		t.Fatalf("%d refunds executed for the orphan, want 1", refunds)
	}
}

// A payment that took money and that the ledger does not know, with no webhook about it, is
// found by the reconciliation and refunded; a completed checkout's payment is left alone.
// This needs the Stripe gateway's SucceededPayments (billing.Reconciler).
func TestReconciliationRefundsAPaymentTheLedgerDoesNotKnow(t *testing.T) {
	key := newKey(t)
	code, done := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	if code != http.StatusCreated || done.Status != "completed" {
		t.Fatalf("checkout: %d %+v", code, done)
	}
	stray, _ := createPaymentIntent(t, 2500, map[string]string{"cartflow_idempotency_key": "checkout-" + newKey(t) + "/charge"})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-reconcile-" + key, TaskQueue: workflows.TaskQueue},
		workflows.ReconcileWorkflowType, workflows.ReconcileInput{Window: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var sum workflows.ReconcileSummary
	if err := run.Get(ctx, &sum); err != nil {
		t.Fatalf("reconciliation: %v", err)
	}
	if sum.Checked < 2 || sum.OrphansFound < 1 || sum.Refunded < 1 {
		t.Fatalf("summary %+v: the stray payment was not found", sum)
	}
	if got := orphanOf(t, stray); got.Status != "refunded" || got.FoundBy != "reconciliation" || got.OrderID != "" || got.Amount != 2500 {
		t.Fatalf("orphan row %+v", got)
	}
	if pi := paymentIntent(t, stray); pi.AmountRefunded != 2500 {
		t.Fatalf("stray PaymentIntent: %d of %d refunded", pi.AmountRefunded, pi.Amount)
	}
	if pis := chargesFor(key); len(pis) != 1 || pis[0].AmountRefunded != 0 {
		t.Fatalf("the completed checkout's payment %+v was touched", pis)
	}
	if v := e2ekit.MetricValue(scrape(t, dev.WorkerMetricsURL), `cartflow_orphan_payments_total{found_by="reconciliation",provider="stripe"}`); v < 1 {
		t.Fatalf("reconciliation orphans counted %v", v)
	}

	// A second run refunds nothing twice.
	run, err = temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-reconcile-again-" + key, TaskQueue: workflows.TaskQueue},
		workflows.ReconcileWorkflowType, workflows.ReconcileInput{Window: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &sum); err != nil || sum.OrphansFound != 0 {
		t.Fatalf("second run %+v, %v", sum, err)
	}
}
