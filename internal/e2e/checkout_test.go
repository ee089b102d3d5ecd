//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// history returns a workflow's events.
func history(t testing.TB, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	iter := temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		events = append(events, e)
	}
	return events
}

// activityRuns counts how often an activity type was scheduled, and the highest attempt that completed.
func activityRuns(events []*historypb.HistoryEvent, activityType string) (scheduled int, completedAttempt int32) {
	started := map[int64]int32{}
	scheduledType := map[int64]string{}
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduledType[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if scheduledType[e.GetEventId()] == activityType {
				scheduled++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			started[a.GetScheduledEventId()] = a.GetAttempt()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			if scheduledType[id] == activityType {
				completedAttempt = started[id]
			}
		}
	}
	return scheduled, completedAttempt
}

// workflowRuns counts the runs Temporal has for a workflow ID (visibility is eventually consistent, so it waits for the first).
func workflowRuns(t testing.TB, workflowID string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", workflowID),
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetExecutions()); n > 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func workflowExists(t testing.TB, workflowID string) bool {
	t.Helper()
	_, err := temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

var checkoutIDShape = regexp.MustCompile(`^chk_[a-z2-7]{26}$`)

func TestPurchaseCompletes(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"
	body := validBody("  "+strings.ToUpper(email)+" ", "pm_card_visa")

	code, res := postJSON(t, key, body)

	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("POST = %d %+v", code, res)
	}
	if !checkoutIDShape.MatchString(res.CheckoutID) {
		t.Errorf("checkout id %q is not an unguessable token", res.CheckoutID)
	}
	if res.Amount != 2*2500+1200 || res.Currency != "usd" {
		t.Errorf("amount %d %s, want 6200 usd (priced from the catalog)", res.Amount, res.Currency)
	}
	recordHistory(t, "checkout-"+key, "purchase_receipt_outbox")
	wantRedirect := "/orders/" + res.CheckoutID + "/confirmation"
	if !strings.HasSuffix(res.RedirectURL, wantRedirect) {
		t.Errorf("redirect_url %q, want suffix %q", res.RedirectURL, wantRedirect)
	}

	got := waitStatus(t, res.CheckoutID, "completed", 10*time.Second)
	if got.OrderID != res.OrderID || len(got.Items) != 2 || got.Items[0].UnitAmount != 2500 || got.RedirectURL != res.RedirectURL {
		t.Errorf("GET = %+v", got)
	}

	// The rows in Postgres.
	var status, userStatus, paymentStatus, providerRef, paymentRef, paymentKey string
	var total int64
	err := db.QueryRow(context.Background(), `
		SELECT o.status, o.total_amount, coalesce(o.provider_payment_ref, ''), u.status, p.status, p.provider_ref, p.idempotency_key
		FROM orders o JOIN users u ON u.id = o.user_id JOIN payments p ON p.order_id = o.id
		WHERE o.checkout_id = $1 AND u.email = $2`, res.CheckoutID, email).
		Scan(&status, &total, &providerRef, &userStatus, &paymentStatus, &paymentRef, &paymentKey)
	if err != nil {
		t.Fatalf("order, user and payment rows: %v", err)
	}
	if status != "completed" || total != 6200 || userStatus != "pending" || paymentStatus != "succeeded" ||
		paymentKey != "checkout-"+key+"/charge" || providerRef != paymentRef {
		t.Errorf("rows: order %s %d ref %s, user %s, payment %s %s key %s", status, total, providerRef, userStatus, paymentStatus, paymentRef, paymentKey)
	}
	if n := queryInt(t, `SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.checkout_id = $1`, res.CheckoutID); n != 2 {
		t.Errorf("%d order items, want 2", n)
	}

	// What the provider received: one PaymentIntent, for the priced amount, under the workflow's key.
	pis := chargesFor(key)
	if len(pis) != 1 || pis[0].Status != "succeeded" || pis[0].Amount != 6200 || pis[0].ID != providerRef {
		t.Fatalf("provider holds %+v, want one succeeded PaymentIntent %s of 6200", pis, providerRef)
	}

	// The workflow's history: charged once, on the first attempt; the receipt left through the
	// outbox, with no email activity of its own.
	events := history(t, "checkout-"+key)
	scheduled, attempt := activityRuns(events, "Charge")
	if scheduled != 1 || attempt != 1 {
		t.Errorf("Charge scheduled %d times, completed on attempt %d", scheduled, attempt)
	}
	if n, _ := activityRuns(events, "SendEmail"); n != 0 {
		t.Errorf("SendEmail scheduled %d times: the receipt should leave through the outbox", n)
	}
	receipts := waitEmails(t, email, "receipt", 1)
	if text := emailText(t, receipts[0].ID); !strings.Contains(text, res.OrderID) {
		t.Errorf("the receipt does not name order %s:\n%s", res.OrderID, text)
	}
	waitFor(t, "the receipt to leave the outbox", 10*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM outbox WHERE event_key = $1`, "receipt/order/"+res.OrderID) == 0
	})
	if sent := queryInt(t, `SELECT count(*) FROM emails WHERE event_key = $1 AND status = 'sent'`, "receipt/order/"+res.OrderID); sent != 1 {
		t.Errorf("%d sent receipts recorded, want 1", sent)
	}
}

func TestDuplicateSubmissionsMakeOneCheckout(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	body := validBody(strings.ToLower(key)+"@example.com", "pm_card_visa")

	// Five impatient clicks at once, then one more after the outcome.
	var wg sync.WaitGroup
	results := make([]checkoutResp, 5)
	codes := make([]int, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], results[i] = postJSON(t, key, body)
		}()
	}
	wg.Wait()
	lateCode, late := postJSON(t, key, body)

	// A click while the first request runs gets 409 request_in_progress (the Idempotency-Key is
	// held); every other answer, and the late one, is the first checkout.
	if lateCode != http.StatusCreated || late.Status != "completed" {
		t.Fatalf("late request: %d %+v, want 201 completed", lateCode, late)
	}
	for i, r := range append(results, late) {
		c := lateCode
		if i < len(codes) {
			c = codes[i]
		}
		if c == http.StatusConflict && r.Error != nil && r.Error.Code == "request_in_progress" {
			continue
		}
		if c != http.StatusCreated || r.CheckoutID != late.CheckoutID || r.Status != "completed" {
			t.Errorf("request %d: %d %+v, want 201 completed %s or 409 request_in_progress", i, c, r, late.CheckoutID)
		}
	}
	if n := workflowRuns(t, "checkout-"+key); n != 1 {
		t.Errorf("%d workflow runs, want 1", n)
	}
	if pis := chargesFor(key); len(pis) != 1 {
		t.Errorf("%d PaymentIntents, want 1", len(pis))
	}
	if n := executedCreates(key); n != 1 {
		t.Errorf("%d charges executed at the provider, want 1", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.idempotency_key = $1`, key); n != 1 {
		t.Errorf("%d ledger rows, want 1", n)
	}

	// The same key with a different body is refused, and changes nothing.
	other := body
	other.Items = []item{{SKU: "sticker-pack", Quantity: 1}}
	if code, res := postJSON(t, key, other); code != http.StatusUnprocessableEntity || res.Error == nil || res.Error.Code != "idempotency_key_reused" {
		t.Errorf("same key, different body: %d %+v", code, res.Error)
	}
	if n := executedCreates(key); n != 1 {
		t.Errorf("after the refused request: %d charges executed, want 1", n)
	}
}

// TestWorkerKilledAfterChargeRequest kills the worker with SIGKILL after the charge reached the
// provider and before its answer came back: the order must complete, charged exactly once.
func TestWorkerKilledAfterChargeRequest(t *testing.T) {
	// Not parallel: it kills the worker every other test relies on.
	key := newKey(t)
	body := validBody(strings.ToLower(key)+"@example.com", "pm_card_visa")
	// The provider takes the money at once but holds its answer back for a long time.
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1, DelayAfterMS: 60_000})

	type outcome struct {
		code int
		res  checkoutResp
	}
	first := make(chan outcome, 1)
	go func() {
		c, r := postJSON(t, key, body)
		first <- outcome{c, r}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for len(chargesFor(key)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the charge never reached the provider")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := dev.KillWorker(); err != nil {
		t.Fatal(err)
	}
	// The BFF's bounded wait runs out while no worker is running: 202 and a status URL.
	o := <-first
	// The worker comes back before anything is asserted: every later test needs it.
	if err := dev.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The status is pending when the BFF's wait ran out, and the read model's charging when the
	// update was cut off by the crash and the BFF answered from Postgres: both are unfinished.
	if o.code != http.StatusAccepted || (o.res.Status != "pending" && o.res.Status != "charging") ||
		!checkoutIDShape.MatchString(o.res.CheckoutID) {
		t.Fatalf("POST while the worker is down = %d %+v, want 202 pending or charging", o.code, o.res)
	}

	done := waitStatus(t, o.res.CheckoutID, "completed", 60*time.Second)
	if done.RedirectURL == "" {
		t.Error("completed without a redirect URL")
	}
	pis := chargesFor(key)
	if len(pis) != 1 || pis[0].Status != "succeeded" {
		t.Fatalf("provider holds %+v, want exactly one succeeded PaymentIntent", pis)
	}
	if n := executedCreates(key); n != 1 {
		t.Errorf("%d charges executed at the provider, want 1", n)
	}
	var attempts int
	var ref string
	if err := db.QueryRow(context.Background(), `SELECT p.attempts, p.provider_ref FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.kind = 'charge' AND p.status = 'succeeded'`, key).Scan(&attempts, &ref); err != nil {
		t.Fatalf("ledger: %v", err)
	}
	if attempts < 2 || ref != pis[0].ID {
		t.Errorf("ledger: %d attempts with ref %s, want at least 2 attempts with %s", attempts, ref, pis[0].ID)
	}
	scheduled, attempt := activityRuns(history(t, "checkout-"+key), "Charge")
	if scheduled != 1 || attempt < 2 {
		t.Errorf("Charge scheduled %d times, completed on attempt %d; want once, retried after the crash", scheduled, attempt)
	}
}

// TestCheckoutAcceptedBeforeItsOrderReadsPending posts a checkout while no worker runs, so that
// its workflow exists but has not written the order when the BFF's wait runs out: the 202's
// status URL answers pending, not 404, until the worker is back and the order completes.
func TestCheckoutAcceptedBeforeItsOrderReadsPending(t *testing.T) {
	// Not parallel: it stops the worker every other test relies on.
	if err := dev.KillWorker(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			if err := dev.StartWorker(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restart()
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	if code != http.StatusAccepted || res.Status != "pending" || !checkoutIDShape.MatchString(res.CheckoutID) {
		t.Fatalf("POST while no worker runs = %d %+v, want 202 pending", code, res)
	}
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); n != 0 {
		t.Fatalf("%d orders before any worker ran the checkout, want 0", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM accepted_checkouts WHERE checkout_id = $1 AND idempotency_key = $2`, res.CheckoutID, key); n != 1 {
		t.Errorf("%d accepted_checkouts rows for the 202, want 1", n)
	}
	polled, status := get(t, res.StatusURL)
	if polled != http.StatusOK || status.CheckoutID != res.CheckoutID || status.Status != "pending" {
		t.Errorf("GET %s before the order exists = %d %+v, want 200 pending", res.StatusURL, polled, status)
	}

	restart()
	done := waitStatus(t, res.CheckoutID, "completed", 60*time.Second)
	if pis := chargesFor(key); len(pis) != 1 || pis[0].Status != "succeeded" || pis[0].AmountReceived != done.Amount {
		t.Errorf("provider holds %+v for a checkout of %d, want one succeeded PaymentIntent", pis, done.Amount)
	}
}

func TestDeclineFailsCleanly(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"

	code, res := postJSON(t, key, validBody(email, "pm_card_chargeDeclined"))

	if code != http.StatusCreated || res.Status != "failed" || res.Failure == nil ||
		res.Failure.Code != "card_declined" || res.Failure.DeclineCode != "generic_decline" || res.RedirectURL != "" {
		t.Fatalf("POST = %d %+v failure %+v", code, res, res.Failure)
	}
	got := waitStatus(t, res.CheckoutID, "failed", 5*time.Second)
	if got.Failure == nil || got.Failure.Code != "card_declined" {
		t.Errorf("GET failure = %+v", got.Failure)
	}
	if n := queryInt(t, `SELECT count(*) FROM users WHERE email = $1`, email); n != 0 {
		t.Errorf("%d users registered for a declined checkout, want 0", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.status = 'failed' AND p.decline_code = 'generic_decline'`, key); n != 1 {
		t.Errorf("%d failed ledger rows with the decline code, want 1", n)
	}
	if pis := chargesFor(key); len(pis) != 1 || pis[0].Status != "requires_payment_method" {
		t.Errorf("provider holds %+v, want one declined PaymentIntent", pis)
	}
	scheduled, _ := activityRuns(history(t, "checkout-"+key), "Charge")
	if scheduled != 1 {
		t.Errorf("Charge scheduled %d times; a decline is final", scheduled)
	}
}

func TestBadInputsStartNothing(t *testing.T) {
	t.Parallel()
	valid := func(mutate func(*checkoutBody)) []byte {
		b := validBody("grace@example.com", "pm_card_visa")
		mutate(&b)
		raw, _ := json.Marshal(b)
		return raw
	}
	cases := []struct {
		name      string
		noKey     bool
		body      []byte
		wantCode  int
		wantError string
		wantField string
	}{
		{name: "malformed json", body: []byte(`{"email": "grace@example.com",`), wantCode: 400, wantError: "malformed_json"},
		{name: "missing idempotency key", noKey: true, body: valid(func(*checkoutBody) {}), wantCode: 400, wantError: "missing_idempotency_key", wantField: "Idempotency-Key"},
		{name: "unknown sku", body: valid(func(b *checkoutBody) { b.Items[1].SKU = "no-such-thing" }), wantCode: 422, wantError: "unknown_sku", wantField: "items[1].sku"},
		{name: "quantity zero", body: valid(func(b *checkoutBody) { b.Items[0].Quantity = 0 }), wantCode: 422, wantError: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "quantity negative", body: valid(func(b *checkoutBody) { b.Items[0].Quantity = -3 }), wantCode: 422, wantError: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "quantity absurd", body: valid(func(b *checkoutBody) { b.Items[0].Quantity = 1_000_000 }), wantCode: 422, wantError: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "invalid email", body: valid(func(b *checkoutBody) { b.Email = "grace@" }), wantCode: 422, wantError: "invalid_email", wantField: "email"},
		{name: "unknown provider", body: valid(func(b *checkoutBody) { b.Payment.Provider = "bitcoin" }), wantCode: 422, wantError: "unknown_provider", wantField: "payment.provider"},
		{name: "inactive product", body: valid(func(b *checkoutBody) { b.Items[0].SKU = "poster-retired" }), wantCode: 422, wantError: "product_unavailable", wantField: "items[0].sku"},
		{name: "oversized body", body: valid(func(b *checkoutBody) { b.Name = strings.Repeat("x", 70_000) }), wantCode: 413, wantError: "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := newKey(t)
			sendKey := key
			if tc.noKey {
				sendKey = ""
			}
			code, res := post(t, sendKey, tc.body)
			if code != tc.wantCode || res.Error == nil || res.Error.Code != tc.wantError || res.Error.Field != tc.wantField {
				t.Fatalf("= %d %+v, want %d %s field %q", code, res.Error, tc.wantCode, tc.wantError, tc.wantField)
			}
			if workflowExists(t, "checkout-"+key) {
				t.Error("a workflow was started")
			}
			if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); n != 0 {
				t.Errorf("%d orders written", n)
			}
			if n := providerRequests(key); n != 0 {
				t.Errorf("%d provider requests sent", n)
			}
		})
	}
}

func TestCheckoutCannotBeGuessed(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"chk_" + strings.Repeat("a", 26), "1", "checkout-1"} {
		if code, res := get(t, "/api/v1/checkouts/"+id); code != http.StatusNotFound || res.Error == nil || res.Error.Code != "checkout_not_found" {
			t.Errorf("GET %s = %d %+v", id, code, res.Error)
		}
	}
}

// TestRegistrationFailureRefunds makes the User Directory refuse one customer after the charge
// went through: the workflow must refund the charge and the order must say so.
func TestRegistrationFailureRefunds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A trigger refuses registrations for one test-only domain, as a directory rule would.
	if _, err := db.Exec(ctx, `
		CREATE OR REPLACE FUNCTION e2e_refuse_registration() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.email LIKE '%@refuse-registration.example' THEN
				RAISE EXCEPTION 'registration refused by the test' USING ERRCODE = 'check_violation';
			END IF;
			RETURN NEW;
		END $$;
		DROP TRIGGER IF EXISTS e2e_refuse_registration ON users;
		CREATE TRIGGER e2e_refuse_registration BEFORE INSERT ON users
			FOR EACH ROW EXECUTE FUNCTION e2e_refuse_registration();`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(ctx, `DROP TRIGGER IF EXISTS e2e_refuse_registration ON users; DROP FUNCTION IF EXISTS e2e_refuse_registration()`)
	})
	key := newKey(t)
	email := strings.ToLower(key) + "@refuse-registration.example"

	code, res := postJSON(t, key, validBody(email, "pm_card_visa"))

	if code != http.StatusCreated || res.Status != "refunded" || res.Failure == nil || res.Failure.Code != "registration_failed" {
		t.Fatalf("POST = %d %+v failure %+v", code, res, res.Failure)
	}
	waitStatus(t, res.CheckoutID, "refunded", 5*time.Second)

	var refunded, total int64
	if err := db.QueryRow(ctx, `SELECT refunded_amount, total_amount FROM orders WHERE checkout_id = $1`, res.CheckoutID).
		Scan(&refunded, &total); err != nil {
		t.Fatal(err)
	}
	if refunded != total || total != 6200 {
		t.Errorf("order refunded %d of %d, want all 6200", refunded, total)
	}
	rows, err := db.Query(ctx, `SELECT p.kind, p.status, p.idempotency_key FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.checkout_id = $1 ORDER BY p.id`, res.CheckoutID)
	if err != nil {
		t.Fatal(err)
	}
	var ledger []string
	for rows.Next() {
		var kind, status, k string
		if err := rows.Scan(&kind, &status, &k); err != nil {
			t.Fatal(err)
		}
		ledger = append(ledger, kind+" "+status+" "+strings.TrimPrefix(k, "checkout-"+key))
	}
	if want := []string{"charge succeeded /charge", "refund succeeded /refund"}; strings.Join(ledger, ",") != strings.Join(want, ",") {
		t.Errorf("ledger = %q, want %q", ledger, want)
	}
	if n := queryInt(t, `SELECT count(*) FROM users WHERE email = $1`, email); n != 0 {
		t.Errorf("%d users registered", n)
	}
	pis := chargesFor(key)
	if len(pis) != 1 || pis[0].AmountRefunded != 6200 {
		t.Fatalf("provider holds %+v, want one PaymentIntent refunded in full", pis)
	}
	refunds := 0
	for _, r := range dev.StripeProxy.Requests() {
		if r.Path == "/v1/refunds" && r.IdempotencyKey == "checkout-"+key+"/refund" && !r.Replayed {
			refunds++
		}
	}
	if refunds != 1 {
		t.Errorf("%d refunds executed at the provider, want 1", refunds)
	}
	if scheduled, attempt := activityRuns(history(t, "checkout-"+key), "Refund"); scheduled != 1 || attempt != 1 {
		t.Errorf("Refund scheduled %d times, completed on attempt %d", scheduled, attempt)
	}
}
