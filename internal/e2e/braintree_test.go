//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// Braintree end to end: the stack serves the Braintree double (internal/dev/fake/braintree) and
// hands the worker and the BFF its URL and keys, so the worker charges through the Braintree
// gateway and the BFF verifies the double's signed webhooks.

// braintreeBody is a checkout paid with a Braintree nonce; an empty provider lets the BFF tell
// the provider from the token.
func braintreeBody(email, nonce, provider string) checkoutBody {
	b := validBody(email, nonce)
	b.Payment.Provider = provider
	return b
}

// braintreeCharges returns the double's transactions for an order. The gateway sends the order
// id, a slash and a digest of the idempotency key as the transaction's orderId.
func braintreeCharges(orderID string) []braintreefake.Transaction {
	var out []braintreefake.Transaction
	for _, tx := range dev.Braintree.Transactions() {
		if strings.HasPrefix(tx.OrderID, orderID+"/") {
			out = append(out, tx)
		}
	}
	return out
}

// braintreeTransaction returns the double's transaction by legacy id, failing the test without it.
func braintreeTransaction(t *testing.T, legacyID string) braintreefake.Transaction {
	t.Helper()
	tx, ok := dev.Braintree.Transaction(legacyID)
	if !ok {
		t.Fatalf("the Braintree double has no transaction %s", legacyID)
	}
	return tx
}

// braintreePurchase buys the usual cart with fake-valid-nonce and returns the order id and the
// Braintree transaction's legacy id that the order recorded.
func braintreePurchase(t *testing.T) (orderID, ref string) {
	t.Helper()
	key := newKey(t)
	return completedPurchase(t, key, braintreeBody(strings.ToLower(key)+"@example.com", "fake-valid-nonce", ""), "braintree")
}

func TestBraintreePurchaseCompletes(t *testing.T) {
	t.Parallel()
	// The provider named, or told from the token's shape.
	for name, provider := range map[string]string{"provider inferred": "", "provider named": "braintree"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := newKey(t)
			email := strings.ToLower(key) + "@example.com"
			code, res := postJSON(t, key, braintreeBody(email, "fake-valid-nonce", provider))
			if code != http.StatusCreated || res.Status != "completed" || res.Amount != 6200 || res.Currency != "usd" || res.RedirectURL == "" {
				t.Fatalf("POST = %d %+v", code, res)
			}
			waitStatus(t, res.CheckoutID, "completed", 10*time.Second)

			rows := checkoutChargeRows(t, res.CheckoutID)
			rows.wantPaidWith(t, "braintree", "")
			orderRef := rows.OrderRef

			// At the provider: exactly one transaction for the order, the one the order names.
			txs := braintreeCharges(res.OrderID)
			if len(txs) != 1 || txs[0].LegacyID != orderRef || txs[0].Status != "SUBMITTED_FOR_SETTLEMENT" ||
				txs[0].Amount != "62.00" || txs[0].Currency != "USD" {
				t.Fatalf("the Braintree double holds %+v, want one transaction %s of 62.00 USD", txs, orderRef)
			}
			if n := providerRequests(key); n != 0 {
				t.Errorf("%d requests reached Stripe for a Braintree checkout", n)
			}
			scheduled, attempt := activityRuns(history(t, "checkout-"+key), "Charge")
			if scheduled != 1 || attempt != 1 {
				t.Errorf("Charge scheduled %d times, completed on attempt %d", scheduled, attempt)
			}
		})
	}
}

func TestBraintreeDeclineFailsCleanly(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"

	// Braintree's documented sandbox nonce for a Visa card the processor declines with 2000.
	code, res := postJSON(t, key, braintreeBody(email, "fake-processor-declined-visa-nonce", ""))

	if code != http.StatusCreated || res.Status != "failed" || res.Failure == nil ||
		res.Failure.Code != "processor_declined" || res.Failure.DeclineCode != "do_not_honor" || res.RedirectURL != "" {
		t.Fatalf("POST = %d %+v failure %+v", code, res, res.Failure)
	}
	if strings.Contains(res.Failure.Message, "Do Not Honor") {
		t.Errorf("the customer is shown the processor's text: %q", res.Failure.Message)
	}
	if got := waitStatus(t, res.CheckoutID, "failed", 5*time.Second); got.Failure == nil || got.Failure.DeclineCode != "do_not_honor" {
		t.Errorf("GET failure = %+v", got.Failure)
	}
	if n := queryInt(t, `SELECT count(*) FROM users WHERE email = $1`, email); n != 0 {
		t.Errorf("%d users registered for a declined checkout, want 0", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.provider = 'braintree' AND p.status = 'failed' AND p.decline_code = 'do_not_honor'`, key); n != 1 {
		t.Errorf("%d failed Braintree ledger rows with the decline code, want 1", n)
	}
	txs := braintreeCharges(res.OrderID)
	if len(txs) != 1 || txs[0].Status != "PROCESSOR_DECLINED" || txs[0].ProcessorResponseCode != "2000" {
		t.Errorf("the Braintree double holds %+v, want one transaction declined with 2000", txs)
	}
	if scheduled, _ := activityRuns(history(t, "checkout-"+key), "Charge"); scheduled != 1 {
		t.Errorf("Charge scheduled %d times; a decline is final", scheduled)
	}
}

func TestBraintreeRefundsThroughTheBFFShowInPostgresAndAtTheDouble(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refundRows := func(orderID string) map[string]int64 {
		t.Helper()
		rows, err := db.Query(ctx, `SELECT provider_ref, amount FROM payments WHERE order_id = $1 AND kind = 'refund' AND status = 'succeeded'`, orderID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var ref string
			var amount int64
			if err := rows.Scan(&ref, &amount); err != nil {
				t.Fatal(err)
			}
			out[ref] = amount
		}
		return out
	}
	orderState := func(orderID string) (status string, refunded int64) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT status, refunded_amount FROM orders WHERE id = $1`, orderID).Scan(&status, &refunded); err != nil {
			t.Fatal(err)
		}
		return status, refunded
	}

	t.Run("settled payment, refunded in two parts", func(t *testing.T) {
		t.Parallel()
		orderID, ref := braintreePurchase(t)
		// Braintree settles once a day; only a settled payment can be refunded in part.
		if err := dev.Braintree.Settle(ref); err != nil {
			t.Fatal(err)
		}
		if code, body := refundVia(t, orderID, newKey(t), staffKey, `{"amount":2000}`); code != http.StatusCreated || !strings.Contains(body, `"partially_refunded"`) {
			t.Fatalf("partial refund: %d %s", code, body)
		}
		if status, refunded := orderState(orderID); status != "partially_refunded" || refunded != 2000 {
			t.Fatalf("after the partial refund: order %s, refunded %d", status, refunded)
		}
		if code, body := refundVia(t, orderID, newKey(t), staffKey, ``); code != http.StatusCreated || !strings.Contains(body, `"order_status":"refunded"`) {
			t.Fatalf("refund of the rest: %d %s", code, body)
		}
		if status, refunded := orderState(orderID); status != "refunded" || refunded != 6200 {
			t.Errorf("order %s, refunded %d; want refunded 6200", status, refunded)
		}
		tx := braintreeTransaction(t, ref)
		if len(tx.Refunds) != 2 || tx.Refunds[0].Amount != "20.00" || tx.Refunds[1].Amount != "42.00" {
			t.Fatalf("refunds at the double = %+v, want 20.00 and 42.00", tx.Refunds)
		}
		want := map[string]int64{tx.Refunds[0].LegacyID: 2000, tx.Refunds[1].LegacyID: 4200}
		if got := refundRows(orderID); len(got) != 2 || got[tx.Refunds[0].LegacyID] != 2000 || got[tx.Refunds[1].LegacyID] != 4200 {
			t.Errorf("succeeded refund rows %v, want %v", got, want)
		}
	})

	t.Run("unsettled payment, voided", func(t *testing.T) {
		t.Parallel()
		orderID, ref := braintreePurchase(t)
		// Before settlement Braintree can only void, in full: the refund of everything voids it.
		if code, body := refundVia(t, orderID, newKey(t), staffKey, ``); code != http.StatusCreated || !strings.Contains(body, `"order_status":"refunded"`) {
			t.Fatalf("refund: %d %s", code, body)
		}
		if status, refunded := orderState(orderID); status != "refunded" || refunded != 6200 {
			t.Errorf("order %s, refunded %d; want refunded 6200", status, refunded)
		}
		if got := refundRows(orderID); len(got) != 1 || got[ref] != 6200 {
			t.Errorf("succeeded refund rows %v, want the voided transaction %s for 6200", got, ref)
		}
		if tx := braintreeTransaction(t, ref); tx.Status != "VOIDED" || len(tx.Refunds) != 0 {
			t.Errorf("transaction at the double = %+v, want it voided without refunds", tx)
		}
	})
}

// deliveryAnswer is the BFF's answer to the notification's last delivery, failing the test
// unless the BFF accepted it. Braintree's notifications carry no id: the BFF makes one.
func deliveryAnswer(t *testing.T, n braintreefake.Notification) webhookAnswer {
	t.Helper()
	d := n.Deliveries[len(n.Deliveries)-1]
	return webhookAccepted(t, d.Status, d.Response, d.Error, "")
}

func TestBraintreeDisputeWebhookIsRecordedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderID, ref := braintreePurchase(t)

	// The double signs a dispute_opened notification for the payment and posts it to the BFF.
	n, err := dev.Braintree.SendWebhook(ctx, "dispute_opened", ref)
	if err != nil {
		t.Fatalf("SendWebhook: %v (deliveries %+v)", err, n.Deliveries)
	}
	first := deliveryAnswer(t, n)
	if first.Duplicate {
		t.Errorf("first delivery reported as a duplicate")
	}
	waitFor(t, "the dispute on the order", 20*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM orders WHERE id = $1 AND dispute_status = 'open'`, orderID) == 1
	})

	// Braintree resends a notification, byte for byte, until it is acknowledged: the same event.
	again, err := dev.Braintree.ResendWebhook(ctx, n.ID)
	if err != nil {
		t.Fatalf("ResendWebhook: %v", err)
	}
	// (Whether the BFF calls it a duplicate depends on whether the first event's workflow has
	// closed yet; what counts is that it is the same event and is stored once.)
	if second := deliveryAnswer(t, again); second.EventID != first.EventID {
		t.Errorf("resent delivery answered %+v, want event %s", second, first.EventID)
	}
	// The redelivery started nothing new; once the first delivery's workflow is done, nothing
	// more can land.
	typ, amount, _, reason := providerEventOnce(t, "braintree", first.EventID, orderID)
	if typ != "dispute.opened" || amount != 6200 || reason != "fraud" {
		t.Errorf("order event %s %d %q, want dispute.opened 6200 fraud", typ, amount, reason)
	}
	var disputed int64
	if err := db.QueryRow(ctx, `SELECT disputed_amount FROM orders WHERE id = $1`, orderID).Scan(&disputed); err != nil || disputed != 6200 {
		t.Errorf("disputed_amount %d, %v; want 6200", disputed, err)
	}
	if tx := braintreeTransaction(t, ref); tx.Dispute == nil || tx.Dispute.Status != "open" {
		t.Errorf("dispute at the double = %+v", tx.Dispute)
	}
}

// paymentConfigAnswer is GET /api/v1/payment-config.
type paymentConfigAnswer struct {
	CardProcessor string `json:"card_processor"`
	Processors    []struct {
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
	} `json:"processors"`
	Stripe *struct {
		PublishableKey string `json:"publishable_key"`
	} `json:"stripe"`
	Braintree *struct {
		TokenizationKey string `json:"tokenization_key"`
	} `json:"braintree"`
}

func paymentConfig(t *testing.T) paymentConfigAnswer {
	t.Helper()
	code, body := doJSON(t, http.MethodGet, "/api/v1/payment-config", "", "")
	var out paymentConfigAnswer
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil {
		t.Fatalf("payment-config: %d %s", code, body)
	}
	return out
}

// stripeFailures sums Stripe's technical failures counted over the last ten minutes.
func stripeFailures(t *testing.T) int {
	t.Helper()
	return queryInt(t, `SELECT coalesce(sum(failures), 0)::int FROM provider_health WHERE provider = 'stripe' AND minute >= now() - interval '10 minutes'`)
}

// TestBraintreeTakesOverWhenStripeFails makes Stripe fail technically and checks that payment-config steers
// the storefront to Braintree, and that a checkout through Braintree then completes.
func TestBraintreeTakesOverWhenStripeFails(t *testing.T) {
	// Not parallel: Stripe looks unhealthy while it runs, which every payment-config would show.
	ctx := context.Background()
	if pc := paymentConfig(t); pc.CardProcessor != "stripe" || pc.Stripe == nil {
		t.Fatalf("before the failures, payment-config = %+v, want stripe", pc)
	}

	// The Stripe layer answers the next two charges with 503: the charge activity retries, and
	// each failed attempt counts against Stripe's health.
	before := stripeFailures(t)
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 2, Status: http.StatusServiceUnavailable})
	t.Cleanup(func() {
		// Whatever happened, no fault may outlive the test.
		req, _ := http.NewRequest(http.MethodDelete, dev.StripeURL+"/__cartflow/faults", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	if code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("Stripe checkout during the failures: %d %+v", code, res)
	}
	waitStatus(t, res.CheckoutID, "completed", 30*time.Second)
	if _, attempt := activityRuns(history(t, "checkout-"+key), "Charge"); attempt != 3 {
		t.Errorf("Charge completed on attempt %d, want 3 (two 503s, then success)", attempt)
	}
	if after := stripeFailures(t); after-before < 2 {
		t.Fatalf("provider_health counts %d new Stripe failures, want at least 2", after-before)
	}

	// Opening the breaker for real takes BREAKER_MIN_FAILURES failures that are also at least
	// half of Stripe's calls over BREAKER_WINDOW, while every earlier test's checkout counted a
	// success. Rather than drive that many failing checkouts through retries, the rest of the
	// failures are inserted into provider_health directly, the way RecordProviderOutcome counts
	// them, and taken out again at the end: other tests read payment-config too.
	const injected = 1000
	var minute time.Time
	if err := db.QueryRow(ctx, `INSERT INTO provider_health (provider, minute, successes, failures)
		VALUES ('stripe', date_trunc('minute', now()), 0, $1)
		ON CONFLICT (provider, minute) DO UPDATE SET failures = provider_health.failures + $1
		RETURNING minute`, injected).Scan(&minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(context.Background(), `UPDATE provider_health SET failures = failures - $1
			WHERE provider = 'stripe' AND minute = $2`, injected, minute); err != nil {
			t.Errorf("remove the injected failures: %v", err)
		}
	})

	pc := paymentConfig(t)
	if pc.CardProcessor != "braintree" || pc.Braintree == nil || pc.Braintree.TokenizationKey != "sandbox_cartflow_local" || pc.Stripe != nil {
		t.Fatalf("payment-config = %+v, want braintree with its tokenization key", pc)
	}
	health := map[string]bool{}
	for _, p := range pc.Processors {
		health[p.Name] = p.Healthy
	}
	if healthy, ok := health["stripe"]; !ok || healthy || !health["braintree"] {
		t.Errorf("processors = %+v, want stripe unhealthy and braintree healthy", pc.Processors)
	}

	// The storefront tokenizes with Braintree, and the checkout completes through it.
	key = newKey(t)
	code, res = postJSON(t, key, braintreeBody(strings.ToLower(key)+"@example.com", "fake-valid-nonce", ""))
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("Braintree checkout after the failover: %d %+v", code, res)
	}
	var provider, ref string
	if err := db.QueryRow(ctx, `SELECT provider, coalesce(provider_payment_ref, '') FROM orders WHERE checkout_id = $1`, res.CheckoutID).Scan(&provider, &ref); err != nil {
		t.Fatal(err)
	}
	if txs := braintreeCharges(res.OrderID); provider != "braintree" || len(txs) != 1 || txs[0].LegacyID != ref {
		t.Errorf("order through %s ref %s; the double holds %+v", provider, ref, txs)
	}
}
