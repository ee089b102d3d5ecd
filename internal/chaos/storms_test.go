//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/workflows"
)

// stormAnswer is one answer of a storm of requests under one key.
type stormAnswer struct {
	sameBody   bool
	status     int
	code       string
	checkoutID string
}

// 7. Many concurrent POSTs with the same Idempotency-Key and body, and some with another body
// under the same key, for a batch of keys. A key belongs to its first request: every answer to
// that body is its checkout or 409 request_in_progress, every answer to the other is 422
// idempotency_key_reused or 409, and one checkout, one order and at most one payment exist.
func duplicateStorm(ctx context.Context, h *harness, r *row) {
	const same, other = 16, 4
	keys := max(*batchSize/4, 2)
	r.Faults = fmt.Sprintf("%d keys, each sent %d times with one body and %d times with another, all at once; keys 300 ms apart", keys, same, other)
	cs := newCheckouts("storm", keys)
	piFrom := len(h.dev.StripeProxy.PaymentIntents())
	sh := newShopper(h.dev.APIURL)
	answers := make([][]stormAnswer, keys)
	var wg sync.WaitGroup
	for i, c := range cs {
		if i > 0 {
			sleep(ctx, 300*time.Millisecond)
		}
		var otherBody e2ekit.CheckoutRequest
		_ = json.Unmarshal(c.Body, &otherBody)
		otherBody.Items = []e2ekit.Item{{SKU: "mug-enamel", Quantity: 3}}
		otherRaw, _ := json.Marshal(otherBody)
		var mu sync.Mutex
		for n := range same + other {
			body, isSame := c.Body, n < same
			if !isSame {
				body = otherRaw
			}
			wg.Go(func() {
				status, _, ans := sh.send(ctx, e2ekit.NewCheckoutRequest(ctx, h.dev.APIURL, c.Key, body))
				a := stormAnswer{sameBody: isSame, status: status, checkoutID: ans.CheckoutID}
				if ans.Error != nil {
					a.code = ans.Error.Code
				}
				mu.Lock()
				answers[i] = append(answers[i], a)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	// Each key's first body won it; its checkout is then followed to the end as a storefront would.
	for i, c := range cs {
		won := judgeStorm(r, c.Key, answers[i])
		if !won {
			var b e2ekit.CheckoutRequest
			_ = json.Unmarshal(c.Body, &b)
			b.Items = []e2ekit.Item{{SKU: "mug-enamel", Quantity: 3}}
			c.Body, _ = json.Marshal(b)
		}
	}
	deadline := time.Now().Add(*settleFor)
	buyCtx, cancel := context.WithDeadline(ctx, deadline)
	var followers sync.WaitGroup
	for _, c := range cs {
		followers.Go(func() { sh.buy(buyCtx, c) })
	}
	followers.Wait()
	cancel()
	for _, c := range cs {
		if n := h.workflowRuns(ctx, workflows.CheckoutWorkflowID(c.Key)); n != 1 {
			r.mismatch(c.Key, fmt.Sprintf("%d checkout workflow runs for the key, want 1", n))
		}
	}
	orders, err := h.settle(ctx, cs, deadline)
	if err != nil {
		r.finding("reading the orders: %v", err)
		return
	}
	h.auditCheckouts(ctx, r, cs, orders, piFrom)
	r.absorb(sh)
}

// judgeStorm checks one key's storm of answers and says whether the key's own body (rather
// than the other) won it.
func judgeStorm(r *row, key string, answers []stormAnswer) (sameWon bool) {
	ids := map[bool]map[string]bool{true: {}, false: {}}
	for _, a := range answers {
		if a.status == http.StatusCreated || a.status == http.StatusAccepted {
			ids[a.sameBody][a.checkoutID] = true
		}
	}
	if len(ids[true]) > 0 && len(ids[false]) > 0 {
		r.mismatch(key, fmt.Sprintf("both bodies got a checkout under one key: %v and %v", ids[true], ids[false]))
	}
	sameWon = len(ids[false]) == 0
	for _, got := range ids {
		if len(got) > 1 {
			r.mismatch(key, fmt.Sprintf("one body got %d checkouts under one key: %v", len(got), got))
		}
	}
	counts := map[string]int{}
	for _, a := range answers {
		winner := a.sameBody == sameWon
		label := fmt.Sprintf("%d %s", a.status, a.code)
		counts[label]++
		switch {
		case a.status == http.StatusConflict && a.code == "request_in_progress":
		case a.status == http.StatusServiceUnavailable:
		case winner && (a.status == http.StatusCreated || a.status == http.StatusAccepted):
		case !winner && a.status == http.StatusUnprocessableEntity && a.code == "idempotency_key_reused":
		case a.status >= 500:
			// Counted as a 5xx by the shopper's tally.
		default:
			r.mismatch(key, fmt.Sprintf("the %s body got %d %s", map[bool]string{true: "key's own", false: "other"}[a.sameBody], a.status, a.code))
		}
	}
	r.note("%s: %v", key, counts)
	return sameWon
}

// workflowRuns counts the runs Temporal lists for a workflow id.
func (h *harness) workflowRuns(ctx context.Context, workflowID string) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := h.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", workflowID)})
		// Visibility lags a little behind the start.
		if err == nil && (len(resp.GetExecutions()) > 0 || time.Now().After(deadline)) {
			return len(resp.GetExecutions())
		}
		if time.Now().After(deadline) {
			return -1
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// stormEvent is one Stripe event and how its deliveries were answered.
type stormEvent struct {
	id      string
	payload []byte
}

// 8. The same signed Stripe events delivered many times, concurrently: every completed
// checkout's payment_intent.succeeded, every declined one's payment_intent.payment_failed,
// and payments made behind cartflow's back for a few declined orders, each announced by two
// events. Every event is stored once, no completed order is touched, and each stray payment is
// refunded exactly once.
func webhookStorm(ctx context.Context, h *harness, r *row) {
	const copies, parallel = 10, 16
	n := max(*batchSize*3/4, 8)
	cs := newCheckouts("hook", n)
	piFrom := len(h.dev.StripeProxy.PaymentIntents())
	sh := newShopper(h.dev.APIURL)
	deadline := time.Now().Add(*settleFor)
	loadCtx, cancel := context.WithDeadline(ctx, deadline)
	sh.run(loadCtx, cs, 100*time.Millisecond)
	cancel()
	orders, err := h.settle(ctx, cs, deadline)
	if err != nil {
		r.finding("reading the orders: %v", err)
		return
	}

	var events []stormEvent
	event := func(eventType string, object json.RawMessage) {
		id := "evt_chaos_" + randomText()
		payload, err := stripefake.EventPayload(id, eventType, object)
		if err != nil {
			r.finding("event %s: %v", eventType, err)
			return
		}
		events = append(events, stormEvent{id: id, payload: payload})
	}
	var strays []string
	for _, c := range cs {
		o, ok := orders[c.Key]
		if !ok {
			continue
		}
		for _, pi := range h.dev.StripeProxy.PaymentIntentsWithMetadata(chargeKeyMetadata, "checkout-"+c.Key+"/charge") {
			object, err := h.paymentIntentJSON(ctx, pi.ID)
			if err != nil {
				r.finding("%s: read %s: %v", c.Key, pi.ID, err)
				continue
			}
			if pi.Status == "succeeded" {
				event("payment_intent.succeeded", object)
			} else {
				event("payment_intent.payment_failed", object)
			}
		}
		if o.Status == "failed" && len(strays) < 3 {
			ref, object, err := e2ekit.StrayPayment(ctx, h.dev.StripeURL, stack.LocalStripeKey, o.Total,
				map[string]string{orderIDMetadata: o.ID, chargeKeyMetadata: "checkout-" + c.Key + "/stray"})
			if err != nil {
				r.finding("%s: a payment behind cartflow's back: %v", c.Key, err)
				continue
			}
			strays = append(strays, ref)
			// Stripe may announce one payment more than once, under events of their own.
			event("payment_intent.succeeded", object)
			event("payment_intent.succeeded", object)
		}
	}
	// The audit's own check: before any event is delivered, it must see the stray payments as
	// the orphans they are, or its zero after the storm would prove nothing.
	var before row
	h.auditCheckouts(ctx, &before, cs, orders, piFrom)
	if before.Orphans != len(strays) {
		r.finding("before the storm the audit counts %d orphans for %d payments made behind cartflow's back", before.Orphans, len(strays))
	}
	r.Faults = fmt.Sprintf("%d Stripe events about %d checkouts and %d payments made behind cartflow's back, each delivered %d times, %d at once",
		len(events), n, len(strays), copies, parallel)

	deliveries := make([]stormEvent, 0, len(events)*copies)
	for range copies {
		deliveries = append(deliveries, events...)
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	h.deliver(ctx, r, sh, deliveries, parallel)

	// Every event is stored exactly once, every stray payment refunded exactly once.
	waitUntil(ctx, deadline, func() bool {
		for _, ref := range strays {
			if pi := h.paymentIntent(ref); pi.AmountRefunded < pi.AmountReceived {
				return false
			}
		}
		return h.storedEvents(ctx, events) == len(events)
	})
	if got := h.storedEvents(ctx, events); got != len(events) {
		r.finding("%d of %d events stored", got, len(events))
	}
	for _, ref := range strays {
		executed := 0
		for _, req := range h.dev.StripeProxy.Requests() {
			if req.Method == http.MethodPost && req.Path == "/v1/refunds" && req.IdempotencyKey == "orphan/stripe/"+ref && !req.Replayed {
				executed++
			}
		}
		if executed != 1 {
			r.mismatch(ref, fmt.Sprintf("%d refunds executed for the stray payment, want 1", executed))
		}
		var rows int
		if err := h.db.QueryRow(ctx, `SELECT count(*) FROM order_events WHERE type = 'orphan_payment' AND order_id =
			(SELECT order_id FROM orphan_payments WHERE provider = 'stripe' AND provider_ref = $1)`, ref).Scan(&rows); err == nil && rows != 1 {
			r.note("stray payment %s: %d orphan_payment events on its order (one per event announcing it)", ref, rows)
		}
	}
	// The audit reads orders afresh: no event may have moved one.
	if orders, err = h.ordersByKey(ctx, keysOf(cs)); err != nil {
		r.finding("reading the orders: %v", err)
		return
	}
	h.auditCheckouts(ctx, r, cs, orders, piFrom)
	r.absorb(sh)
}

// deliver posts the events to the BFF's Stripe webhook, parallel at once, each signed when it
// is sent as Stripe signs it; a delivery answered 503 is made again, as Stripe would.
func (h *harness) deliver(ctx context.Context, r *row, sh *shopper, deliveries []stormEvent, parallel int) {
	next := make(chan stormEvent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range parallel {
		wg.Go(func() {
			for ev := range next {
				for attempt := 0; attempt < 5; attempt++ {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.dev.APIURL+"/webhooks/stripe", bytes.NewReader(ev.payload))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Stripe-Signature", stripefake.SignatureHeader(ev.payload, stack.LocalStripeWebhookSecret, time.Now()))
					status, body := sh.sendRaw(ctx, req)
					if status == http.StatusOK {
						break
					}
					if status != http.StatusServiceUnavailable && status != 0 {
						mu.Lock()
						r.finding("webhook %s answered %d: %.200s", ev.id, status, body)
						mu.Unlock()
						break
					}
					sleep(ctx, time.Second)
				}
			}
		})
	}
	for _, d := range deliveries {
		next <- d
	}
	close(next)
	wg.Wait()
}

// sendRaw makes any request through the shopper, so that its answer is tallied, and returns its
// status and body.
func (s *shopper) sendRaw(ctx context.Context, req *http.Request) (int, []byte) {
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.tally(0, req, nil)
		}
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	s.tally(resp.StatusCode, req, body)
	return resp.StatusCode, body
}

// storedEvents counts the events PostgreSQL has stored.
func (h *harness) storedEvents(ctx context.Context, events []stormEvent) int {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.id
	}
	var n int
	if err := h.db.QueryRow(ctx, `SELECT count(*) FROM provider_events WHERE provider = 'stripe' AND event_id = ANY($1)`, ids).Scan(&n); err != nil {
		return -1
	}
	return n
}

// paymentIntentJSON reads a PaymentIntent from the Stripe layer as Stripe serves it.
func (h *harness) paymentIntentJSON(ctx context.Context, id string) (json.RawMessage, error) {
	status, body, err := e2ekit.CallStripe(ctx, h.dev.StripeURL, stack.LocalStripeKey, http.MethodGet, "/v1/payment_intents/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%d %s", status, body)
	}
	return body, nil
}

// paymentIntent is the Stripe layer's snapshot of a PaymentIntent, or the zero one.
func (h *harness) paymentIntent(id string) stripefake.PaymentIntent {
	for _, pi := range h.dev.StripeProxy.PaymentIntents() {
		if pi.ID == id {
			return pi
		}
	}
	return stripefake.PaymentIntent{}
}

// waitUntil polls cond every half second until it holds, the deadline passes or ctx ends.
func waitUntil(ctx context.Context, deadline time.Time, cond func() bool) bool {
	for !cond() {
		if time.Now().After(deadline) || !sleep(ctx, 500*time.Millisecond) {
			return false
		}
	}
	return true
}

func keysOf(cs []*checkout) []string {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	return keys
}
