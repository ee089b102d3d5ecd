package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
)

// The PayPal tests run the gateway against internal/dev/fake/paypal, the local double of PayPal's
// REST API that the development stack serves too: OAuth client credentials, Orders v2 get and
// capture, Payments v2 refund, and webhook signature verification, as PayPal documents them. It
// keeps PayPal's idempotency: a request repeated with the same PayPal-Request-Id gets the first
// answer again and changes nothing. When a test ends, ppDouble also checks that every request was
// one the gateway means to send.
const (
	ppClientID      = "cartflow-client"
	ppSecret        = "cartflow-secret"
	ppWebhookID     = "1JE4291016473214C"
	ppWebhookSecret = "the-double's-signing-key"
)

// ppDecimals is how many decimals PayPal wants for each currency the tests use. The tests write
// their amounts with it, independently of the double's and the gateway's own tables.
var ppDecimals = map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "HUF": 0, "KWD": 3}

// ppDouble is a PayPal double served for one test.
type ppDouble struct {
	*paypalfake.Server
	t   *testing.T
	srv *httptest.Server

	mu           sync.Mutex
	verifyStatus int // answer verification requests with this HTTP status instead (set under mu)
}

func newPPDouble(t *testing.T) *ppDouble {
	t.Helper()
	d := &ppDouble{t: t, Server: paypalfake.New(paypalfake.Config{ClientID: ppClientID, Secret: ppSecret, WebhookSecret: ppWebhookSecret})}
	// The listener the deliveries are signed for; the tests post deliveries themselves.
	d.SetWebhook("", ppWebhookID)
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/notifications/verify-webhook-signature" {
			d.mu.Lock()
			status := d.verifyStatus
			d.mu.Unlock()
			if status != 0 {
				d.fault(paypalfake.Fault{Operation: paypalfake.OpVerify, Count: 1, Status: status})
			}
		}
		d.ServeHTTP(w, r)
	}))
	t.Cleanup(d.srv.Close)
	t.Cleanup(d.checkRequests)
	return d
}

// fault registers a fault, failing the test if the double refuses it.
func (d *ppDouble) fault(f paypalfake.Fault) {
	if err := d.AddFault(f); err != nil {
		d.t.Error(err)
	}
}

// checkRequests fails the test for any request that is not what the gateway means to send:
// PayPal's paths and methods, JSON asked for and sent, a client_credentials form to the token
// endpoint, a PayPal-Request-Id of at most 108 characters and the full representation asked
// for on captures and refunds, and nothing PayPal would refuse as malformed.
func (d *ppDouble) checkRequests() {
	for _, r := range d.Requests() {
		if r.Operation == "" {
			d.t.Errorf("paypal double: unexpected %s %s", r.Method, r.Path)
			continue
		}
		if r.Accept != "application/json" {
			d.t.Errorf("paypal double: %s %s with Accept %q", r.Method, r.Path, r.Accept)
		}
		if r.Status == http.StatusBadRequest && r.Fault == "" {
			d.t.Errorf("paypal double: %s %s refused as malformed (%s)", r.Method, r.Path, r.Issue)
		}
		switch r.Operation {
		case paypalfake.OpToken:
			if r.ContentType != "application/x-www-form-urlencoded" || !slices.Equal(r.Fields, []string{"grant_type"}) {
				d.t.Errorf("paypal double: token request with Content-Type %q and form fields %q", r.ContentType, r.Fields)
			}
			continue
		case paypalfake.OpGetOrder, paypalfake.OpTransactions:
			continue
		case paypalfake.OpCreateOrder, paypalfake.OpCapture, paypalfake.OpRefund:
			if r.RequestID == "" || len(r.RequestID) > 108 {
				d.t.Errorf("paypal double: %s without a valid PayPal-Request-Id: %q", r.Path, r.RequestID)
			}
			if r.Prefer != "return=representation" {
				d.t.Errorf("paypal double: %s with Prefer %q, want return=representation", r.Path, r.Prefer)
			}
		case paypalfake.OpVerify:
			var body struct {
				AuthAlgo string `json:"auth_algo"`
			}
			if err := json.Unmarshal(r.Body, &body); err == nil && body.AuthAlgo != "SHA256withRSA" {
				d.t.Errorf("paypal double: auth_algo %q", body.AuthAlgo)
			}
		}
		if r.ContentType != "application/json" {
			d.t.Errorf("paypal double: %s with Content-Type %q", r.Path, r.ContentType)
		}
	}
}

// gateway returns a gateway with the double's credentials.
func (d *ppDouble) gateway(t *testing.T, timeout time.Duration) *billing.PayPal {
	t.Helper()
	p, err := billing.NewPayPal(billing.PayPalConfig{
		ClientID: ppClientID, Secret: ppSecret, APIURL: d.srv.URL, Timeout: timeout, WebhookID: ppWebhookID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// order adds an order the buyer approved, for amount in PayPal's unit of currency; edit
// scripts it first (an issue, a pending or declined capture, not approved).
func (d *ppDouble) order(id string, amount int64, currency string, edit ...func(o *paypalfake.NewOrder)) {
	d.t.Helper()
	o := paypalfake.NewOrder{ID: id, Value: ppValue(amount, currency), Currency: currency, CustomID: "order-" + id}
	for _, f := range edit {
		f(&o)
	}
	if _, err := d.AddOrder(o); err != nil {
		d.t.Fatal(err)
	}
}

// ppValue writes an amount in PayPal's unit as PayPal's decimal value, with the currency's decimals.
func ppValue(amount int64, currency string) string {
	exp := ppDecimals[currency]
	s := strconv.FormatInt(amount, 10)
	if exp > 0 {
		s = fmt.Sprintf("%0*d", exp+1, amount)
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	return s
}

// captured lists the captures that exist, by id.
func (d *ppDouble) captured() []string {
	var ids []string
	for _, c := range d.Captures() {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// stats counts what the double received: the PayPal-Request-Ids of the capture and refund
// requests that carried a valid token, the answers replayed for a repeated PayPal-Request-Id,
// and the order reads, verification requests and token requests.
func (d *ppDouble) stats() (captureIDs, refundIDs []string, replays, gets, verifyCalls, tokenCalls int) {
	for _, r := range d.Requests() {
		if r.Operation == paypalfake.OpToken {
			tokenCalls++
			continue
		}
		if !r.Authenticated {
			continue
		}
		switch r.Operation {
		case paypalfake.OpCapture:
			captureIDs = append(captureIDs, r.RequestID)
		case paypalfake.OpRefund:
			refundIDs = append(refundIDs, r.RequestID)
		case paypalfake.OpGetOrder:
			gets++
		case paypalfake.OpVerify:
			verifyCalls++
		}
		if r.Replayed {
			replays++
		}
	}
	return captureIDs, refundIDs, replays, gets, verifyCalls, tokenCalls
}

// ppSignature signs a delivery as the double does, so that its verify endpoint accepts it.
func ppSignature(secret, transmissionID, transmissionTime, webhookID string, event []byte) string {
	return paypalfake.Sign(secret, transmissionID, transmissionTime, webhookID, event)
}

// ppCharge is a charge of an approved order of 62.00 USD.
func ppCharge(order, key string) billing.ChargeRequest {
	return billing.ChargeRequest{IdempotencyKey: key, Amount: 6200, Currency: "usd", Token: order, OrderID: "o-" + order, Description: "test order"}
}

func TestPayPalChargeCapturesOnce(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("5O190127TN364715T", 6200, "USD")
	p := d.gateway(t, 5*time.Second)
	ctx := context.Background()

	res, err := p.Charge(ctx, ppCharge("5O190127TN364715T", "checkout-k1/charge"))
	if err != nil {
		t.Fatal(err)
	}
	captured := d.captured()
	if len(captured) != 1 || res.ProviderRef != captured[0] || res.Action != nil {
		t.Fatalf("result %+v, captures at PayPal %v: want the one capture", res, captured)
	}
	// The same charge again: PayPal replays the capture made under its PayPal-Request-Id.
	again, err := p.Charge(ctx, ppCharge("5O190127TN364715T", "checkout-k1/charge"))
	if err != nil || again.ProviderRef != res.ProviderRef {
		t.Fatalf("charge again = %+v, %v; want %s", again, err, res.ProviderRef)
	}
	// The same order under another key, a first attempt: another checkout's payment, refused.
	_, err = p.Charge(ctx, ppCharge("5O190127TN364715T", "checkout-k2/charge"))
	ppWantRejected(t, err, "payment_already_used")
	captureIDs, _, replays, gets, _, tokens := d.stats()
	if !slices.Equal(captureIDs, []string{"checkout-k1/charge", "checkout-k1/charge", "checkout-k2/charge"}) || replays != 1 || len(d.captured()) != 1 {
		t.Errorf("capture requests %q (%d replays), captures %v; want the capture, its replay and a refused one", captureIDs, replays, d.captured())
	}
	if gets != 3 || tokens != 1 {
		t.Errorf("order reads %d, token requests %d; want 3 and 1 (the token is reused)", gets, tokens)
	}
}

func TestPayPalChargeDeclineIsStable(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("8AA11111111111111", 6200, "USD", func(o *paypalfake.NewOrder) { o.Issue = "INSTRUMENT_DECLINED" })
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("8AA11111111111111", "checkout-decline/charge")

	for _, resume := range []bool{false, true} {
		req.Resume = resume
		_, err := p.Charge(context.Background(), req)
		var decline *billing.DeclineError
		if !errors.As(err, &decline) || decline.Code != "instrument_declined" || decline.Message == "" || decline.Hard() {
			t.Fatalf("resume=%v: error = %#v, want a soft DeclineError instrument_declined with a message", resume, err)
		}
	}
	captureIDs, _, replays, _, _, _ := d.stats()
	if len(captureIDs) != 2 || captureIDs[0] != captureIDs[1] || replays != 1 || len(d.captured()) != 0 {
		t.Errorf("capture requests %q with %d replays, captures %v; want the retry to be a replay of the decline", captureIDs, replays, d.captured())
	}
}

func TestPayPalChargeDeclinedCapture(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("8AB11111111111111", 6200, "USD", func(o *paypalfake.NewOrder) { o.Declined = true })
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("8AB11111111111111", "checkout-declined-capture/charge")

	for _, resume := range []bool{false, true} {
		req.Resume = resume
		_, err := p.Charge(context.Background(), req)
		var decline *billing.DeclineError
		if !errors.As(err, &decline) || decline.Code != "instrument_declined" || decline.Message == "" {
			t.Fatalf("resume=%v: error = %#v, want a DeclineError instrument_declined", resume, err)
		}
	}
	// The retry reads the declined capture from the order and does not ask for another.
	if captureIDs, _, _, _, _, _ := d.stats(); len(captureIDs) != 1 {
		t.Errorf("capture requests %q, want 1", captureIDs)
	}
}

func TestPayPalChargeTransientFailures(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("checkout-a-very-long-client-key/", 8) + "charge"
	cases := []struct {
		name, key  string
		failBefore []int
		failAfter  int
		requests   int
	}{
		// PayPal failed before capturing: the retry captures, under the same id.
		{name: "500 before capturing", key: "k-500-before", failBefore: []int{500}, requests: 2},
		{name: "429 then 503", key: "k-429", failBefore: []int{429, 503}, requests: 3},
		// PayPal captured but the answer was a 500: the retry finds the capture by reading the
		// order, and PayPal's replay of the capture request says it is this charge's.
		{name: "500 after capturing", key: "k-500-after", failAfter: 1, requests: 2},
		// A key longer than PayPal takes becomes a digest, the same on every attempt.
		{name: "long key", key: long, failBefore: []int{502}, requests: 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("9BB%014d", i)
			d.order(order, 6200, "USD")
			// PayPal fails before capturing: nothing happens, and a repeat is processed afresh.
			for _, status := range tc.failBefore {
				d.fault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: order, Count: 1, Status: status})
			}
			// PayPal captures, then answers 500: the capture happened, and its answer is kept.
			if tc.failAfter > 0 {
				d.fault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: order, Count: tc.failAfter, StatusAfter: http.StatusInternalServerError})
			}
			p := d.gateway(t, 5*time.Second)
			req := ppCharge(order, tc.key)
			var res billing.ChargeResult
			var err error
			for attempt := 1; attempt <= 3; attempt++ {
				req.Resume = attempt > 1
				if res, err = p.Charge(context.Background(), req); err == nil {
					break
				}
				wantRetryable(t, err)
			}
			if err != nil {
				t.Fatalf("after 3 attempts: %v", err)
			}
			captured := d.captured()
			captureIDs, _, _, _, _, _ := d.stats()
			if len(captured) != 1 || res.ProviderRef != captured[0] {
				t.Fatalf("result %+v, captures %v: want exactly one capture, returned", res, captured)
			}
			if len(captureIDs) != tc.requests {
				t.Errorf("capture requests %q, want %d", captureIDs, tc.requests)
			}
			for _, id := range captureIDs {
				if id != captureIDs[0] || len(id) > 108 {
					t.Errorf("capture request ids %q: want one id of at most 108 characters", captureIDs)
				}
			}
			if tc.key == long && captureIDs[0] == long {
				t.Errorf("the long key was sent as it is")
			}
		})
	}
}

func TestPayPalChargeTimeoutThenResume(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("7CC22222222222222", 6200, "USD")
	// The capture is made, and only its answer is late: lost once the client gives up.
	d.fault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: "7CC22222222222222", Count: 1, DelayAfterMS: 2000})
	p := d.gateway(t, 300*time.Millisecond)
	req := ppCharge("7CC22222222222222", "checkout-timeout/charge")

	start := time.Now()
	_, err := p.Charge(context.Background(), req)
	wantRetryable(t, err)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the timed-out charge took %v; the client timeout is 300ms", took)
	}
	req.Resume = true
	res, err := p.Charge(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	captured := d.captured()
	captureIDs, _, replays, _, _, _ := d.stats()
	if len(captured) != 1 || res.ProviderRef != captured[0] || len(captureIDs) != 2 || replays != 1 {
		t.Errorf("result %+v, captures %v, capture requests %q (%d replays): want the lost capture found by a replay, not repeated", res, captured, captureIDs, replays)
	}
}

func TestPayPalChargePendingThenCompleted(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("6DD33333333333333", 6200, "USD", func(o *paypalfake.NewOrder) { o.Pending = true })
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("6DD33333333333333", "checkout-pending/charge")

	_, err := p.Charge(context.Background(), req)
	wantRetryable(t, err)
	if !strings.Contains(err.Error(), "still processing") {
		t.Errorf("error = %v, want it to say the payment is still processing", err)
	}
	req.Resume = true
	_, err = p.Charge(context.Background(), req)
	wantRetryable(t, err)
	if err := d.CompleteCaptures("6DD33333333333333"); err != nil {
		t.Fatal(err)
	}
	res, err := p.Charge(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if captured := d.captured(); len(captured) != 1 || res.ProviderRef != captured[0] {
		t.Errorf("result %+v, captures %v", res, captured)
	}
}

func TestPayPalChargeCapturedElsewhere(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	// Captured after the gateway read the order and before its capture arrived, by someone else
	// (the buyer's browser, another checkout): not this charge's payment.
	d.order("5EE44444444444444", 6200, "USD")
	d.fault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: "5EE44444444444444", Count: 1, CaptureFirst: true})
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("5EE44444444444444", "checkout-elsewhere/charge")

	_, err := p.Charge(context.Background(), req)
	ppWantRejected(t, err, "payment_already_used")
	// A retry meets the capture in the order, and PayPal still says it was not made under this
	// charge's PayPal-Request-Id.
	req.Resume = true
	_, err = p.Charge(context.Background(), req)
	ppWantRejected(t, err, "payment_already_used")
	if c := d.Captures(); len(c) != 1 || c[0].RequestID != "" {
		t.Errorf("captures %+v, want only the one made elsewhere", c)
	}
}

func TestPayPalApprovalPaysForOneCheckoutOnly(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("5FF55555555555555", 6200, "USD", func(o *paypalfake.NewOrder) { o.CustomID = "cart_a" })
	p := d.gateway(t, 5*time.Second)
	ctx := context.Background()
	first := ppCharge("5FF55555555555555", "checkout-a/charge")
	first.CartRef = "cart_a"
	res, err := p.Charge(ctx, first)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		req  func(r *billing.ChargeRequest)
		code string
	}{
		// Another checkout with the same approval, whether or not it names the cart, on its first
		// attempt or a retry: PayPal answers its capture with ORDER_ALREADY_CAPTURED.
		{name: "another key", req: func(r *billing.ChargeRequest) { r.IdempotencyKey = "checkout-b/charge" }, code: "payment_already_used"},
		{name: "another key, same cart", req: func(r *billing.ChargeRequest) { r.IdempotencyKey, r.CartRef = "checkout-c/charge", "cart_a" }, code: "payment_already_used"},
		{name: "another key, retry", req: func(r *billing.ChargeRequest) { r.IdempotencyKey, r.Resume = "checkout-d/charge", true }, code: "payment_already_used"},
		// A checkout bound to another cart is refused before anything is sent.
		{name: "another cart", req: func(r *billing.ChargeRequest) { r.IdempotencyKey, r.CartRef = "checkout-e/charge", "cart_b" }, code: "payment_already_used"},
	}
	for _, tc := range cases {
		req := ppCharge("5FF55555555555555", "")
		tc.req(&req)
		_, err := p.Charge(ctx, req)
		var rejected *billing.RejectedError
		if !errors.As(err, &rejected) || rejected.Code != tc.code {
			t.Errorf("%s: error = %#v, want %s", tc.name, err, tc.code)
		}
	}
	// The checkout that paid still gets its own capture, from the ledger without a request, or
	// from PayPal's replay.
	withRef := first
	withRef.PaymentRef, withRef.Resume = res.ProviderRef, true
	for _, req := range []billing.ChargeRequest{first, withRef} {
		if again, err := p.Charge(ctx, req); err != nil || again.ProviderRef != res.ProviderRef {
			t.Errorf("the paying checkout again (payment ref %q) = %+v, %v; want %s", req.PaymentRef, again, err, res.ProviderRef)
		}
	}
	var executed []string
	for _, r := range d.Requests() {
		if r.Operation == paypalfake.OpCapture && r.Authenticated && !r.Replayed {
			executed = append(executed, r.RequestID)
		}
	}
	want := []string{"checkout-a/charge", "checkout-b/charge", "checkout-c/charge", "checkout-d/charge"}
	if c := d.Captures(); len(c) != 1 || c[0].ID != res.ProviderRef || c[0].RequestID != "checkout-a/charge" || !slices.Equal(executed, want) {
		t.Errorf("captures %+v, capture requests executed %q; want one capture and %q", c, executed, want)
	}
}

func TestPayPalBindingIsCheckedBeforeCapturing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, customID, cartRef string
		captured                bool
	}{
		{name: "bound to this cart", customID: "cart_x", cartRef: "cart_x", captured: true},
		{name: "bound to another cart", customID: "cart_y", cartRef: "cart_x"},
		// Created in the buyer's browser, with no binding at all.
		{name: "not bound", cartRef: "cart_x"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("5GG%014d", i)
			d.order(order, 6200, "USD", func(o *paypalfake.NewOrder) { o.CustomID = tc.customID })
			req := ppCharge(order, "checkout-bind/charge")
			req.CartRef = tc.cartRef
			_, err := d.gateway(t, 5*time.Second).Charge(context.Background(), req)
			captureIDs, _, _, _, _, _ := d.stats()
			if tc.captured {
				if err != nil || len(d.captured()) != 1 {
					t.Fatalf("error %v, captures %v; want one capture", err, d.captured())
				}
				return
			}
			ppWantRejected(t, err, "payment_already_used")
			if len(captureIDs) != 0 || len(d.captured()) != 0 {
				t.Errorf("capture requests %q, captures %v; want none", captureIDs, d.captured())
			}
		})
	}
}

func TestPayPalCreateOrder(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	p := d.gateway(t, 5*time.Second)
	ctx := context.Background()
	req := billing.PayPalOrderRequest{IdempotencyKey: "paypal-order/k1", Amount: 6200, Currency: "usd", CartRef: "cart_one"}
	o, err := p.CreateOrder(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID == "" || o.CartRef != "cart_one" || o.Amount != 6200 || o.Currency != "usd" || !strings.Contains(o.ApproveURL, o.ID) {
		t.Fatalf("order = %+v", o)
	}
	at, ok := d.Order(o.ID)
	if !ok || at.Status != "CREATED" || at.CustomID != "cart_one" || at.Value != "62.00" || at.Currency != "USD" {
		t.Fatalf("order at PayPal = %+v", at)
	}
	// The same key, even with another cart reference: PayPal returns the order it created.
	req.CartRef = "cart_two"
	again, err := p.CreateOrder(ctx, req)
	if err != nil || again != o || len(d.Orders()) != 1 {
		t.Fatalf("again = %+v, %v, %d orders; want %+v", again, err, len(d.Orders()), o)
	}
	// Not approved yet: the capture is refused. Approved: it is captured, bound to its cart.
	charge := ppCharge(o.ID, "checkout-one/charge")
	charge.CartRef = "cart_one"
	_, err = p.Charge(ctx, charge)
	ppWantRejected(t, err, "order_not_approved")
	if _, err := d.ApproveOrder(o.ID); err != nil {
		t.Fatal(err)
	}
	charge.IdempotencyKey = "checkout-one/charge-2"
	if res, err := p.Charge(ctx, charge); err != nil || res.ProviderRef == "" {
		t.Fatalf("charge after approval = %+v, %v", res, err)
	}
	for _, bad := range []billing.PayPalOrderRequest{
		{Amount: 6200, Currency: "usd", CartRef: "cart_x"},
		{IdempotencyKey: "k", Amount: 0, Currency: "usd", CartRef: "cart_x"},
		{IdempotencyKey: "k", Amount: 6200, Currency: "usd"},
	} {
		if _, err := p.CreateOrder(ctx, bad); !billing.IsFinal(err) {
			t.Errorf("CreateOrder(%+v) = %v, want a final refusal", bad, err)
		}
	}
	// PayPal down: a technical failure, retried under the same key.
	d.fault(paypalfake.Fault{Operation: paypalfake.OpCreateOrder, Count: 1, Status: http.StatusServiceUnavailable})
	_, err = p.CreateOrder(ctx, billing.PayPalOrderRequest{IdempotencyKey: "paypal-order/k2", Amount: 100, Currency: "usd", CartRef: "cart_three"})
	wantRetryable(t, err)
}

func TestPayPalSucceededPayments(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	p := d.gateway(t, 5*time.Second)
	ctx := context.Background()
	since := time.Now().Add(-48 * time.Hour)
	d.order("6HH11111111111111", 6200, "USD", func(o *paypalfake.NewOrder) { o.CustomID = "cart_paid" })
	d.order("6HH22222222222222", 1500, "JPY")
	d.order("6HH33333333333333", 6200, "USD", func(o *paypalfake.NewOrder) { o.Pending = true })
	d.order("6HH44444444444444", 6200, "USD", func(o *paypalfake.NewOrder) { o.Declined = true })
	d.order("6HH55555555555555", 6200, "USD") // approved, never captured
	refs := map[string]string{}
	for _, c := range []billing.ChargeRequest{
		ppCharge("6HH11111111111111", "k1"),
		{IdempotencyKey: "k2", Amount: 1500, Currency: "jpy", Token: "6HH22222222222222"},
		ppCharge("6HH33333333333333", "k3"), ppCharge("6HH44444444444444", "k4"),
	} {
		res, _ := p.Charge(ctx, c)
		refs[c.Token] = res.ProviderRef
	}
	if _, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "r1", PaymentRef: refs["6HH11111111111111"], Amount: 2000, Currency: "usd"}); err != nil {
		t.Fatal(err)
	}

	got, err := p.SucceededPayments(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, pp := range got {
		if time.Since(pp.Created) > time.Minute {
			t.Errorf("payment %s created %v", pp.Ref, pp.Created)
		}
		summary = append(summary, fmt.Sprintf("%s %s %d %s refunded %d", pp.Ref, pp.CartRef, pp.Amount, pp.Currency, pp.Refunded))
	}
	want := []string{
		refs["6HH11111111111111"] + " cart_paid 6200 usd refunded 2000",
		refs["6HH22222222222222"] + " order-6HH22222222222222 1500 jpy refunded 0",
	}
	if !slices.Equal(summary, want) {
		t.Errorf("succeeded payments %q, want %q (completed captures only)", summary, want)
	}
	// Nothing since a moment ago; a search PayPal cannot answer is a technical failure.
	if got, err := p.SucceededPayments(ctx, time.Now().Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("payments since the future = %v, %v", got, err)
	}
	d.fault(paypalfake.Fault{Operation: paypalfake.OpTransactions, Count: 1, Status: http.StatusServiceUnavailable})
	_, err = p.SucceededPayments(ctx, since)
	wantRetryable(t, err)
}

func TestPayPalChargeRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(o *paypalfake.NewOrder)
		token    string
		amount   int64
		currency string
		decline  bool
		code     string
		captures int // capture requests the double should see
	}{
		{name: "not approved", setup: func(o *paypalfake.NewOrder) { o.Status = "CREATED" }, code: "order_not_approved", captures: 1},
		{name: "payer action required", setup: func(o *paypalfake.NewOrder) { o.Issue = "PAYER_ACTION_REQUIRED" }, code: "payer_action_required", captures: 1},
		{name: "duplicate invoice", setup: func(o *paypalfake.NewOrder) { o.Issue = "DUPLICATE_INVOICE_ID" }, code: "duplicate_invoice_id", captures: 1},
		{name: "unknown order", token: "0ZZ99999999999999", code: "order_not_found"},
		{name: "not a PayPal id", token: "../../v1/oauth2", code: "invalid_token"},
		{name: "amount mismatch", amount: 5000, code: "amount_mismatch"},
		{name: "currency mismatch", currency: "eur", code: "amount_mismatch"},
		{name: "expired card", setup: func(o *paypalfake.NewOrder) { o.Issue = "CARD_EXPIRED" }, decline: true, code: "card_expired", captures: 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("4FF%014d", i)
			if tc.setup != nil {
				d.order(order, 6200, "USD", tc.setup)
			} else {
				d.order(order, 6200, "USD")
			}
			req := ppCharge(order, "checkout-refusal/charge")
			if tc.token != "" {
				req.Token = tc.token
			}
			if tc.amount != 0 {
				req.Amount = tc.amount
			}
			if tc.currency != "" {
				req.Currency = tc.currency
			}
			_, err := d.gateway(t, 5*time.Second).Charge(context.Background(), req)
			var decline *billing.DeclineError
			var rejected *billing.RejectedError
			switch {
			case tc.decline && errors.As(err, &decline):
				if decline.Code != tc.code || decline.Message == "" {
					t.Errorf("decline %+v, want code %s with a message", decline, tc.code)
				}
			case !tc.decline && errors.As(err, &rejected):
				if rejected.Code != tc.code || rejected.Message == "" {
					t.Errorf("rejection %+v, want code %s with a message", rejected, tc.code)
				}
			default:
				t.Fatalf("error = %#v, want a final %s", err, tc.code)
			}
			captureIDs, _, _, _, _, _ := d.stats()
			if len(captureIDs) != tc.captures || len(d.captured()) != 0 {
				t.Errorf("capture requests %q, captures %v; want %d requests and no capture", captureIDs, d.captured(), tc.captures)
			}
		})
	}
}

func TestPayPalExpiredCardIsAHardDecline(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("3GG55555555555555", 6200, "USD", func(o *paypalfake.NewOrder) { o.Issue = "CARD_EXPIRED" })
	_, err := d.gateway(t, 5*time.Second).Charge(context.Background(), ppCharge("3GG55555555555555", "k"))
	var decline *billing.DeclineError
	if !errors.As(err, &decline) || !decline.Hard() || decline.Reason() != "expired_card" {
		t.Errorf("error = %#v, want a hard decline expired_card", err)
	}
}

func TestPayPalCurrencies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		currency      string
		paypalAmount  int64 // in PayPal's unit
		minor, refund int64 // in cartflow's minor units
		refundValue   string
	}{
		{currency: "jpy", paypalAmount: 1500, minor: 1500, refund: 500, refundValue: "500"},
		{currency: "kwd", paypalAmount: 1234, minor: 1234, refund: 1001, refundValue: "1.001"},
		// PayPal takes forints in whole units; cartflow counts them in hundredths (ISO 4217).
		{currency: "huf", paypalAmount: 1500, minor: 150000, refund: 20000, refundValue: "200"},
		{currency: "usd", paypalAmount: 5, minor: 5, refund: 5, refundValue: "0.05"},
	}
	for i, tc := range cases {
		t.Run(tc.currency, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("2HH%014d", i)
			d.order(order, tc.paypalAmount, strings.ToUpper(tc.currency))
			p := d.gateway(t, 5*time.Second)
			res, err := p.Charge(context.Background(), billing.ChargeRequest{
				IdempotencyKey: "k-" + tc.currency, Amount: tc.minor, Currency: tc.currency, Token: order,
			})
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Refund(context.Background(), billing.RefundRequest{
				IdempotencyKey: "r-" + tc.currency, PaymentRef: res.ProviderRef, Amount: tc.refund, Currency: tc.currency,
			})
			if err != nil {
				t.Fatal(err)
			}
			refunds := d.Refunds()
			if r.Amount != tc.refund || len(refunds) != 1 || refunds[0].RequestedValue != tc.refundValue {
				t.Errorf("refund %+v, at PayPal %+v; want %d refunded as %q", r, refunds, tc.refund, tc.refundValue)
			}
		})
	}
	t.Run("huf with fillér", func(t *testing.T) {
		t.Parallel()
		d := newPPDouble(t)
		d.order("2HH99999999999999", 1500, "HUF")
		_, err := d.gateway(t, 5*time.Second).Charge(context.Background(), billing.ChargeRequest{
			IdempotencyKey: "k", Amount: 150050, Currency: "huf", Token: "2HH99999999999999",
		})
		var rejected *billing.RejectedError
		if !errors.As(err, &rejected) || rejected.Code != "invalid_amount" {
			t.Errorf("error = %#v, want invalid_amount: PayPal takes no decimals for HUF", err)
		}
	})
}

func TestPayPalRefund(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("1JJ66666666666666", 6200, "USD")
	d.order("1JJ77777777777777", 6200, "USD")
	p := d.gateway(t, 5*time.Second)
	ctx := context.Background()
	charge := func(order string) string {
		res, err := p.Charge(ctx, ppCharge(order, "charge-"+order))
		if err != nil {
			t.Fatal(err)
		}
		return res.ProviderRef
	}
	full, partial := charge("1JJ66666666666666"), charge("1JJ77777777777777")

	// A full refund, twice under the same key: one refund.
	var first billing.RefundResult
	for i := range 2 {
		r, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-full", PaymentRef: full, Currency: "usd"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Amount != 6200 || r.ProviderRef == "" || (i == 1 && r != first) {
			t.Fatalf("refund %d = %+v, want the same full refund of 6200", i, r)
		}
		first = r
	}
	// Nothing remains: another key is refused.
	_, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-full-2", PaymentRef: full, Currency: "usd"})
	ppWantRejected(t, err, "capture_fully_refunded")

	// Partial refunds: 10.00 twice under one key is one refund, then 15.00, then too much.
	for range 2 {
		r, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-p1", PaymentRef: partial, Amount: 1000, Currency: "usd"})
		if err != nil || r.Amount != 1000 {
			t.Fatalf("partial refund = %+v, %v; want 1000", r, err)
		}
	}
	if r, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-p2", PaymentRef: partial, Amount: 1500, Currency: "usd"}); err != nil || r.Amount != 1500 {
		t.Fatalf("second partial refund = %+v, %v; want 1500", r, err)
	}
	_, err = p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-p3", PaymentRef: partial, Amount: 4000, Currency: "usd"})
	ppWantRejected(t, err, "refund_amount_exceeded")

	_, err = p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-unknown", PaymentRef: "0ZZ99999999999999", Currency: "usd"})
	ppWantRejected(t, err, "capture_not_found")

	_, refundIDs, replays, _, _, _ := d.stats()
	refunds := d.Refunds()
	var values []string
	for _, r := range refunds {
		values = append(values, r.CaptureID+" "+r.RequestID+" "+r.RequestedValue)
	}
	want := []string{full + " refund-full ", partial + " refund-p1 10.00", partial + " refund-p2 15.00"}
	if !slices.Equal(values, want) || len(refundIDs) != 8 || replays != 2 {
		t.Errorf("refunds at PayPal %q from %d requests (%d replays); want %q from 8 (2 replays)", values, len(refundIDs), replays, want)
	}

	// Without the capture id there is nothing PayPal can look up: refused before any request.
	_, err = p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-by-key", ChargeKey: "charge-1JJ66666666666666", Currency: "usd"})
	ppWantRejected(t, err, "payment_ref_required")
	if _, after, _, _, _, _ := d.stats(); len(after) != len(refundIDs) {
		t.Errorf("a refund without a capture id reached PayPal")
	}

	// A charge whose answer was lost: the order (the storefront's token) leads to its capture.
	d.order("1JJ88888888888888", 6200, "USD")
	lost := charge("1JJ88888888888888")
	r, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-lost", ChargeKey: "charge-1JJ88888888888888",
		ChargeToken: "1JJ88888888888888", Currency: "usd"})
	if err != nil || r.NothingCharged || r.Amount != 6200 {
		t.Fatalf("refund through the order: %+v %v", r, err)
	}
	all := d.Refunds()
	last := all[len(all)-1]
	if last.CaptureID != lost {
		t.Fatalf("refunded capture %s, want %s", last.CaptureID, lost)
	}
	// An order that was never captured: nothing to return, and nothing is sent.
	d.order("1JJ99999999999999", 500, "USD")
	if r, err := p.Refund(ctx, billing.RefundRequest{IdempotencyKey: "refund-none", ChargeToken: "1JJ99999999999999", Currency: "usd"}); err != nil || !r.NothingCharged {
		t.Fatalf("refund of an order never captured: %+v %v", r, err)
	}
}

func ppWantRejected(t *testing.T, err error, code string) {
	t.Helper()
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != code || rejected.Message == "" {
		t.Fatalf("error = %#v, want a RejectedError %s with a message", err, code)
	}
}

func TestPayPalCredentials(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("1KK88888888888888", 6200, "USD")
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("1KK88888888888888", "checkout-creds/charge")

	// Wrong credentials are retried while ops fix them, and move no money.
	d.SetSecret("rotated-secret")
	_, err := p.Charge(context.Background(), req)
	wantRetryable(t, err)
	if strings.Contains(err.Error(), ppSecret) {
		t.Errorf("the error shows the client secret: %v", err)
	}
	d.SetSecret(ppSecret)
	req.Resume = true
	if _, err := p.Charge(context.Background(), req); err != nil {
		t.Fatal(err)
	}

	// A token PayPal revoked is dropped after the 401, and the retry fetches another.
	d.order("1KK99999999999999", 6200, "USD")
	req2 := ppCharge("1KK99999999999999", "checkout-creds-2/charge")
	d.RevokeTokens()
	_, err = p.Charge(context.Background(), req2)
	wantRetryable(t, err)
	req2.Resume = true
	if _, err := p.Charge(context.Background(), req2); err != nil {
		t.Fatal(err)
	}
	captureIDs, _, _, _, _, tokens := d.stats()
	if tokens != 3 || len(d.captured()) != 2 || len(captureIDs) != 2 {
		t.Errorf("token requests %d, captures %v, capture requests %q; want 3 tokens (refused, first, renewed) and 2 captures", tokens, d.captured(), captureIDs)
	}
}

func TestPayPalConcurrentCharges(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	p := d.gateway(t, 5*time.Second)
	const n = 8
	for i := range n {
		d.order(fmt.Sprintf("1LL%014d", i), 6200, "USD")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			order := fmt.Sprintf("1LL%014d", i)
			res, err := p.Charge(context.Background(), ppCharge(order, "k-"+order))
			if err == nil {
				_, err = p.Refund(context.Background(), billing.RefundRequest{IdempotencyKey: "r-" + order, PaymentRef: res.ProviderRef, Amount: 100, Currency: "usd"})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if captured := d.captured(); len(captured) != n {
		t.Errorf("captures %d, want %d", len(captured), n)
	}
}

func TestNewPayPalRefusesABadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "api-m.sandbox.paypal.com", "ftp://127.0.0.1"} {
		if _, err := billing.NewPayPal(billing.PayPalConfig{ClientID: ppClientID, Secret: ppSecret, APIURL: u}); err == nil {
			t.Errorf("NewPayPal(%q) succeeded", u)
		}
	}
	if _, err := billing.NewPayPal(billing.PayPalConfig{APIURL: "https://api-m.sandbox.paypal.com"}); err == nil {
		t.Errorf("NewPayPal without credentials succeeded")
	}
}
