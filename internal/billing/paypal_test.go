package billing_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
)

// ppDouble is a small PayPal REST API on httptest: OAuth client credentials, Orders v2 get and
// capture, Payments v2 refund, and webhook signature verification, as PayPal documents them.
// It keeps PayPal's idempotency: a request repeated with the same PayPal-Request-Id gets the
// first answer again and changes nothing.
const (
	ppClientID      = "cartflow-client"
	ppSecret        = "cartflow-secret"
	ppWebhookID     = "1JE4291016473214C"
	ppWebhookSecret = "the-double's-signing-key"
)

// ppDecimals is how many decimals PayPal wants for each currency the tests use; it refuses any other count.
var ppDecimals = map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "HUF": 0, "KWD": 3}

type ppCapture struct {
	ID, Status, Currency string
	Amount               int64 // in PayPal's unit: cents, yen, forints, fils
	Refunded             int64
}

type ppOrder struct {
	ID, Status string // CREATED, APPROVED, COMPLETED
	Currency   string
	Amount     int64
	CustomID   string
	Captures   []*ppCapture
	// What the next capture requests meet.
	Issue      string        // answer 422 with this issue, capturing nothing
	Pending    bool          // the capture stays PENDING
	Declined   bool          // the capture is made with status DECLINED, and the order stays approved
	FailBefore []int         // answer these statuses first, capturing nothing
	FailAfter  int           // capture, then answer 500 this many times
	Delay      time.Duration // capture, then answer this late
	Elsewhere  bool          // someone captures the order just before the request arrives
}

type ppAnswer struct {
	status int
	body   []byte
}

type ppRefund struct {
	ID, CaptureID, RequestID, Value string
}

type ppDouble struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	secret     string // the client secret the token endpoint accepts
	tokens     map[string]bool
	tokenCalls int
	seq        int
	orders     map[string]*ppOrder
	captures   map[string]*ppCapture
	answers    map[string]ppAnswer
	// captureIDs and refundIDs are the PayPal-Request-Ids of the capture and refund requests received.
	captureIDs, refundIDs []string
	replays               int
	refunds               []ppRefund
	gets                  int
	verifyCalls           int
	verifyStatus          int // answer verification requests with this HTTP status instead
}

func newPPDouble(t *testing.T) *ppDouble {
	t.Helper()
	d := &ppDouble{
		t: t, secret: ppSecret, tokens: map[string]bool{}, orders: map[string]*ppOrder{},
		captures: map[string]*ppCapture{}, answers: map[string]ppAnswer{},
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
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

// order adds an order the buyer approved, for amount in PayPal's unit of currency.
func (d *ppDouble) order(id string, amount int64, currency string) *ppOrder {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := &ppOrder{ID: id, Status: "APPROVED", Amount: amount, Currency: currency, CustomID: "order-" + id}
	d.orders[id] = o
	return o
}

// script changes an order under the double's lock.
func (d *ppDouble) script(id string, f func(o *ppOrder)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d.orders[id])
}

// captured lists the captures that exist, by id.
func (d *ppDouble) captured() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id := range d.captures {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (d *ppDouble) stats() (captureIDs, refundIDs []string, replays, gets, verifyCalls, tokenCalls int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.captureIDs), slices.Clone(d.refundIDs), d.replays, d.gets, d.verifyCalls, d.tokenCalls
}

var (
	ppOrderPath   = regexp.MustCompile(`^/v2/checkout/orders/([A-Z0-9]+)$`)
	ppCapturePath = regexp.MustCompile(`^/v2/checkout/orders/([A-Z0-9]+)/capture$`)
	ppRefundPath  = regexp.MustCompile(`^/v2/payments/captures/([A-Z0-9]+)/refund$`)
)

func (d *ppDouble) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/oauth2/token" {
		d.token(w, r)
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		d.t.Errorf("paypal double: %s %s with Accept %q", r.Method, r.URL.Path, r.Header.Get("Accept"))
	}
	d.mu.Lock()
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !d.tokens[bearer] {
		d.mu.Unlock()
		// PayPal's answer to a missing, expired or revoked token.
		ppWrite(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": "Token signature verification failed"})
		return
	}
	d.mu.Unlock()

	var a ppAnswer
	var delay time.Duration
	switch m := []string(nil); {
	case r.Method == http.MethodGet && ppOrderPath.MatchString(r.URL.Path):
		m = ppOrderPath.FindStringSubmatch(r.URL.Path)
		a = d.getOrder(m[1])
	case r.Method == http.MethodPost && ppCapturePath.MatchString(r.URL.Path):
		m = ppCapturePath.FindStringSubmatch(r.URL.Path)
		a, delay = d.capture(r, m[1])
	case r.Method == http.MethodPost && ppRefundPath.MatchString(r.URL.Path):
		m = ppRefundPath.FindStringSubmatch(r.URL.Path)
		a = d.refund(r, m[1])
	case r.Method == http.MethodPost && r.URL.Path == "/v1/notifications/verify-webhook-signature":
		a = d.verify(r)
	default:
		d.t.Errorf("paypal double: unexpected %s %s", r.Method, r.URL.Path)
		a = ppError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "")
	}
	if delay > 0 {
		// The work is done; only the answer is late, and lost once the client gives up.
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// token is POST /v1/oauth2/token: client credentials in Basic auth.
func (d *ppDouble) token(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tokenCalls++
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		d.t.Errorf("paypal double: token request with Content-Type %q", ct)
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		d.t.Errorf("paypal double: token request form %v (%v), want grant_type=client_credentials", r.PostForm, err)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != ppClientID || pass != d.secret {
		ppWrite(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client Authentication failed"})
		return
	}
	d.seq++
	tok := fmt.Sprintf("A21AAtoken%d", d.seq)
	d.tokens[tok] = true
	ppWrite(w, http.StatusOK, map[string]any{
		"scope": "https://uri.paypal.com/services/payments/payment", "access_token": tok,
		"token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400, "nonce": "n" + tok,
	})
}

// revokeTokens makes every token issued so far invalid, as rotating the app's secret does.
func (d *ppDouble) revokeTokens() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.tokens)
}

func (d *ppDouble) getOrder(id string) ppAnswer {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gets++
	o, ok := d.orders[id]
	if !ok {
		return ppError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
	}
	return ppJSON(http.StatusOK, ppOrderJSON(o))
}

// capture is POST /v2/checkout/orders/{id}/capture.
func (d *ppDouble) capture(r *http.Request, id string) (ppAnswer, time.Duration) {
	body := d.jsonBody(r, "payment_source")
	d.mu.Lock()
	defer d.mu.Unlock()
	reqID := d.requestID(r)
	d.captureIDs = append(d.captureIDs, reqID)
	key := "capture " + id + " " + reqID
	if a, ok := d.answers[key]; ok {
		d.replays++
		return a, 0
	}
	if body == nil {
		return ppError(http.StatusBadRequest, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON"), 0
	}
	o, ok := d.orders[id]
	if !ok {
		d.answers[key] = ppError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
		return d.answers[key], 0
	}
	if len(o.FailBefore) > 0 {
		status := o.FailBefore[0]
		o.FailBefore = o.FailBefore[1:]
		name := "INTERNAL_SERVER_ERROR"
		if status == http.StatusTooManyRequests {
			name = "RATE_LIMIT_REACHED"
		}
		// Not kept: the request did nothing, so a repeat is processed afresh.
		return ppError(status, name, ""), 0
	}
	if o.Elsewhere {
		o.Elsewhere = false
		d.newCapture(o)
	}
	switch {
	case o.Status == "COMPLETED":
		d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
	case o.Status == "CREATED":
		d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
	case o.Issue != "":
		d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", o.Issue)
	default:
		d.newCapture(o)
		d.answers[key] = ppJSON(http.StatusCreated, ppOrderJSON(o))
	}
	a := d.answers[key]
	if o.FailAfter > 0 {
		o.FailAfter--
		return ppError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", ""), 0
	}
	delay := o.Delay
	o.Delay = 0
	return a, delay
}

func (d *ppDouble) newCapture(o *ppOrder) {
	d.seq++
	c := &ppCapture{ID: fmt.Sprintf("3C%015d", d.seq), Status: "COMPLETED", Amount: o.Amount, Currency: o.Currency}
	if o.Pending {
		c.Status = "PENDING"
	}
	o.Captures = append(o.Captures, c)
	if o.Declined {
		c.Status = "DECLINED"
	} else {
		o.Status = "COMPLETED"
	}
	d.captures[c.ID] = c
}

// complete settles an order's pending captures, as PayPal does once its review passes.
func (d *ppDouble) complete(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.orders[id].Captures {
		c.Status = "COMPLETED"
	}
}

// refund is POST /v2/payments/captures/{id}/refund.
func (d *ppDouble) refund(r *http.Request, id string) ppAnswer {
	body := d.jsonBody(r, "amount", "invoice_id", "note_to_payer")
	d.mu.Lock()
	defer d.mu.Unlock()
	reqID := d.requestID(r)
	d.refundIDs = append(d.refundIDs, reqID)
	key := "refund " + id + " " + reqID
	if a, ok := d.answers[key]; ok {
		d.replays++
		return a
	}
	if body == nil {
		return ppError(http.StatusBadRequest, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON")
	}
	c, ok := d.captures[id]
	if !ok {
		d.answers[key] = ppError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
		return d.answers[key]
	}
	amount := c.Amount - c.Refunded
	value := ""
	if raw, ok := body["amount"]; ok {
		var m struct {
			Currency string `json:"currency_code"`
			Value    string `json:"value"`
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.Currency == "" || m.Value == "" {
			d.t.Errorf("paypal double: refund amount %s is not a Money", raw)
			return ppError(http.StatusBadRequest, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")
		}
		n, ok := ppParse(m.Value, m.Currency)
		switch {
		case m.Currency != c.Currency:
			d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "CURRENCY_MISMATCH")
			return d.answers[key]
		case !ok:
			d.t.Errorf("paypal double: refund value %q has the wrong precision for %s", m.Value, m.Currency)
			return ppError(http.StatusBadRequest, "INVALID_REQUEST", "DECIMAL_PRECISION")
		}
		amount, value = n, m.Value
	}
	switch {
	case c.Refunded == c.Amount:
		d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED")
	case amount > c.Amount-c.Refunded:
		d.answers[key] = ppError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
	default:
		c.Refunded += amount
		c.Status = "PARTIALLY_REFUNDED"
		if c.Refunded == c.Amount {
			c.Status = "REFUNDED"
		}
		d.seq++
		ref := ppRefund{ID: fmt.Sprintf("1R%015d", d.seq), CaptureID: id, RequestID: reqID, Value: value}
		d.refunds = append(d.refunds, ref)
		d.answers[key] = ppJSON(http.StatusCreated, map[string]any{
			"id": ref.ID, "status": "COMPLETED", "amount": ppMoney(amount, c.Currency),
			"links": []map[string]string{
				{"href": d.srv.URL + "/v2/payments/refunds/" + ref.ID, "rel": "self", "method": "GET"},
				{"href": d.srv.URL + "/v2/payments/captures/" + id, "rel": "up", "method": "GET"},
			},
		})
	}
	return d.answers[key]
}

// verify is POST /v1/notifications/verify-webhook-signature. PayPal checks the transmission's
// RSA signature over "id|time|webhook id|crc32(event)"; the double checks an HMAC of the same
// string under a key it shares with the tests, which fails the same way for a wrong signer, a
// wrong webhook id or a changed event.
func (d *ppDouble) verify(r *http.Request) ppAnswer {
	body := d.jsonBody(r, "auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id", "webhook_event")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.verifyCalls++
	if d.verifyStatus != 0 {
		return ppError(d.verifyStatus, http.StatusText(d.verifyStatus), "")
	}
	field := func(name string) string {
		var s string
		if err := json.Unmarshal(body[name], &s); err != nil || s == "" {
			d.t.Errorf("paypal double: verification request without %s", name)
		}
		return s
	}
	if body == nil {
		return ppError(http.StatusBadRequest, "VALIDATION_ERROR", "MALFORMED_REQUEST_JSON")
	}
	event := body["webhook_event"]
	if len(event) == 0 || event[0] != '{' {
		d.t.Errorf("paypal double: webhook_event %q is not an object", event)
		return ppError(http.StatusBadRequest, "VALIDATION_ERROR", "INVALID_PARAMETER_SYNTAX")
	}
	if algo := field("auth_algo"); algo != "SHA256withRSA" {
		d.t.Errorf("paypal double: auth_algo %q", algo)
	}
	field("cert_url")
	webhookID := field("webhook_id")
	want := ppSignature(ppWebhookSecret, field("transmission_id"), field("transmission_time"), ppWebhookID, event)
	status := "FAILURE"
	if webhookID == ppWebhookID && hmac.Equal([]byte(field("transmission_sig")), []byte(want)) {
		status = "SUCCESS"
	}
	return ppJSON(http.StatusOK, map[string]string{"verification_status": status})
}

// ppSignature signs a delivery: an HMAC of "id|time|webhook id|crc32(event)", the event in
// compact JSON so that white space does not count.
func ppSignature(secret, transmissionID, transmissionTime, webhookID string, event []byte) string {
	var compact bytes.Buffer
	if err := json.Compact(&compact, event); err != nil {
		compact.Reset()
		compact.Write(event)
	}
	msg := transmissionID + "|" + transmissionTime + "|" + webhookID + "|" + strconv.FormatUint(uint64(crc32.ChecksumIEEE(compact.Bytes())), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// requestID checks and returns the PayPal-Request-Id; the caller holds d.mu.
func (d *ppDouble) requestID(r *http.Request) string {
	id := r.Header.Get("PayPal-Request-Id")
	if id == "" || len(id) > 108 {
		d.t.Errorf("paypal double: %s without a valid PayPal-Request-Id: %q", r.URL.Path, id)
	}
	if p := r.Header.Get("Prefer"); p != "return=representation" {
		d.t.Errorf("paypal double: %s with Prefer %q, want return=representation", r.URL.Path, p)
	}
	return id
}

// jsonBody decodes a JSON object request body, reporting fields PayPal does not define; nil
// when the body is not a JSON object.
func (d *ppDouble) jsonBody(r *http.Request, fields ...string) map[string]json.RawMessage {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		d.t.Errorf("paypal double: %s with Content-Type %q", r.URL.Path, ct)
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body == nil {
		d.t.Errorf("paypal double: %s body is not a JSON object: %v", r.URL.Path, err)
		return nil
	}
	for k := range body {
		if !slices.Contains(fields, k) {
			d.t.Errorf("paypal double: %s with unknown field %q", r.URL.Path, k)
		}
	}
	return body
}

func ppOrderJSON(o *ppOrder) map[string]any {
	var captures []map[string]any
	for _, c := range o.Captures {
		cj := map[string]any{"id": c.ID, "status": c.Status, "amount": ppMoney(c.Amount, c.Currency), "final_capture": true}
		if c.Status == "PENDING" {
			cj["status_details"] = map[string]string{"reason": "PENDING_REVIEW"}
		}
		captures = append(captures, cj)
	}
	pu := map[string]any{"reference_id": "default", "custom_id": o.CustomID, "amount": ppMoney(o.Amount, o.Currency)}
	if captures != nil {
		pu["payments"] = map[string]any{"captures": captures}
	}
	return map[string]any{"id": o.ID, "intent": "CAPTURE", "status": o.Status, "purchase_units": []any{pu}}
}

// ppMoney writes an amount in PayPal's unit as PayPal's Money, with the currency's decimals.
func ppMoney(amount int64, currency string) map[string]string {
	exp := ppDecimals[currency]
	s := strconv.FormatInt(amount, 10)
	if exp > 0 {
		s = fmt.Sprintf("%0*d", exp+1, amount)
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	return map[string]string{"currency_code": currency, "value": s}
}

// ppParse reads a value with exactly the currency's decimals, as PayPal requires.
func ppParse(value, currency string) (int64, bool) {
	whole, frac, _ := strings.Cut(value, ".")
	if len(frac) != ppDecimals[currency] {
		return 0, false
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	return n, err == nil
}

func ppError(status int, name, issue string) ppAnswer {
	e := map[string]any{"name": name, "message": "The requested action could not be performed.", "debug_id": "f1d2c3b4a5e6"}
	if issue != "" {
		e["details"] = []map[string]string{{"issue": issue, "description": "the double's " + issue}}
	}
	return ppJSON(status, e)
}

func ppJSON(status int, v any) ppAnswer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return ppAnswer{status: status, body: b}
}

func ppWrite(w http.ResponseWriter, status int, v any) {
	a := ppJSON(status, v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// ppCharge is a charge of an approved order of 62.00 USD.
func ppCharge(order, key string) billing.ChargeRequest {
	return billing.ChargeRequest{IdempotencyKey: key, Amount: 6200, Currency: "usd", Token: order, OrderID: "o-" + order, Description: "test order"}
}

// ppWantRetryable fails unless err is a technical failure: not nil, and not final.
func ppWantRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
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
	// The same charge again, and the same order under another key: still that one capture.
	for _, req := range []billing.ChargeRequest{ppCharge("5O190127TN364715T", "checkout-k1/charge"), ppCharge("5O190127TN364715T", "checkout-k2/charge")} {
		again, err := p.Charge(ctx, req)
		if err != nil || again.ProviderRef != res.ProviderRef {
			t.Fatalf("charge %s again = %+v, %v; want %s", req.IdempotencyKey, again, err, res.ProviderRef)
		}
	}
	captureIDs, _, _, gets, _, tokens := d.stats()
	if !slices.Equal(captureIDs, []string{"checkout-k1/charge"}) || len(d.captured()) != 1 {
		t.Errorf("capture requests %q, captures %v; want one, under the charge's key", captureIDs, d.captured())
	}
	if gets != 3 || tokens != 1 {
		t.Errorf("order reads %d, token requests %d; want 3 and 1 (the token is reused)", gets, tokens)
	}
}

func TestPayPalChargeDeclineIsStable(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("8AA11111111111111", 6200, "USD").Issue = "INSTRUMENT_DECLINED"
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
	d.order("8AB11111111111111", 6200, "USD").Declined = true
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
		// PayPal captured but the answer was a 500: the retry finds the capture by reading the order.
		{name: "500 after capturing", key: "k-500-after", failAfter: 1, requests: 1},
		// A key longer than PayPal takes becomes a digest, the same on every attempt.
		{name: "long key", key: long, failBefore: []int{502}, requests: 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("9BB%014d", i)
			o := d.order(order, 6200, "USD")
			o.FailBefore, o.FailAfter = tc.failBefore, tc.failAfter
			p := d.gateway(t, 5*time.Second)
			req := ppCharge(order, tc.key)
			var res billing.ChargeResult
			var err error
			for attempt := 1; attempt <= 3; attempt++ {
				req.Resume = attempt > 1
				if res, err = p.Charge(context.Background(), req); err == nil {
					break
				}
				ppWantRetryable(t, err)
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
	d.order("7CC22222222222222", 6200, "USD").Delay = 2 * time.Second
	p := d.gateway(t, 300*time.Millisecond)
	req := ppCharge("7CC22222222222222", "checkout-timeout/charge")

	start := time.Now()
	_, err := p.Charge(context.Background(), req)
	ppWantRetryable(t, err)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the timed-out charge took %v; the client timeout is 300ms", took)
	}
	req.Resume = true
	res, err := p.Charge(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	captured := d.captured()
	captureIDs, _, _, _, _, _ := d.stats()
	if len(captured) != 1 || res.ProviderRef != captured[0] || len(captureIDs) != 1 {
		t.Errorf("result %+v, captures %v, capture requests %q: want the lost capture found, not repeated", res, captured, captureIDs)
	}
}

func TestPayPalChargePendingThenCompleted(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	d.order("6DD33333333333333", 6200, "USD").Pending = true
	p := d.gateway(t, 5*time.Second)
	req := ppCharge("6DD33333333333333", "checkout-pending/charge")

	_, err := p.Charge(context.Background(), req)
	ppWantRetryable(t, err)
	if !strings.Contains(err.Error(), "still processing") {
		t.Errorf("error = %v, want it to say the payment is still processing", err)
	}
	req.Resume = true
	_, err = p.Charge(context.Background(), req)
	ppWantRetryable(t, err)
	d.complete("6DD33333333333333")
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
	// Captured after the gateway read the order and before its capture arrived.
	d.order("5EE44444444444444", 6200, "USD").Elsewhere = true
	p := d.gateway(t, 5*time.Second)

	res, err := p.Charge(context.Background(), ppCharge("5EE44444444444444", "checkout-elsewhere/charge"))
	if err != nil {
		t.Fatal(err)
	}
	if captured := d.captured(); len(captured) != 1 || res.ProviderRef != captured[0] {
		t.Errorf("result %+v, captures %v: want the existing capture", res, captured)
	}
}

func TestPayPalChargeRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(o *ppOrder)
		token    string
		amount   int64
		currency string
		decline  bool
		code     string
		captures int // capture requests the double should see
	}{
		{name: "not approved", setup: func(o *ppOrder) { o.Status = "CREATED" }, code: "order_not_approved", captures: 1},
		{name: "payer action required", setup: func(o *ppOrder) { o.Issue = "PAYER_ACTION_REQUIRED" }, code: "payer_action_required", captures: 1},
		{name: "duplicate invoice", setup: func(o *ppOrder) { o.Issue = "DUPLICATE_INVOICE_ID" }, code: "duplicate_invoice_id", captures: 1},
		{name: "unknown order", token: "0ZZ99999999999999", code: "order_not_found"},
		{name: "not a PayPal id", token: "../../v1/oauth2", code: "invalid_token"},
		{name: "amount mismatch", amount: 5000, code: "amount_mismatch"},
		{name: "currency mismatch", currency: "eur", code: "amount_mismatch"},
		{name: "expired card", setup: func(o *ppOrder) { o.Issue = "CARD_EXPIRED" }, decline: true, code: "card_expired", captures: 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			order := fmt.Sprintf("4FF%014d", i)
			d.order(order, 6200, "USD")
			if tc.setup != nil {
				d.script(order, tc.setup)
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
	d.order("3GG55555555555555", 6200, "USD").Issue = "CARD_EXPIRED"
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
			d.mu.Lock()
			refunds := slices.Clone(d.refunds)
			d.mu.Unlock()
			if r.Amount != tc.refund || len(refunds) != 1 || refunds[0].Value != tc.refundValue {
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
	d.mu.Lock()
	refunds := slices.Clone(d.refunds)
	d.mu.Unlock()
	var values []string
	for _, r := range refunds {
		values = append(values, r.CaptureID+" "+r.RequestID+" "+r.Value)
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
	d.mu.Lock()
	last := d.refunds[len(d.refunds)-1]
	d.mu.Unlock()
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
	d.mu.Lock()
	d.secret = "rotated-secret"
	d.mu.Unlock()
	_, err := p.Charge(context.Background(), req)
	ppWantRetryable(t, err)
	if strings.Contains(err.Error(), ppSecret) {
		t.Errorf("the error shows the client secret: %v", err)
	}
	d.mu.Lock()
	d.secret = ppSecret
	d.mu.Unlock()
	req.Resume = true
	if _, err := p.Charge(context.Background(), req); err != nil {
		t.Fatal(err)
	}

	// A token PayPal revoked is dropped after the 401, and the retry fetches another.
	d.order("1KK99999999999999", 6200, "USD")
	req2 := ppCharge("1KK99999999999999", "checkout-creds-2/charge")
	d.revokeTokens()
	_, err = p.Charge(context.Background(), req2)
	ppWantRetryable(t, err)
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
