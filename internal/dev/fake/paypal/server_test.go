package paypal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/dev/fake/kit"
	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
	"github.com/cartflow/cartflow/internal/domain"
)

// These tests speak to the double over HTTP the way PayPal's API and the admin API are
// documented, and check its webhooks with cartflow's own verifier; the gateway's tests
// (internal/billing) run the gateway against it.

const (
	clientID  = "mock-client"
	secret    = "mock-secret"
	webhookID = "5GP028458E2496506"
)

func start(t *testing.T) (*paypalfake.Server, string) {
	t.Helper()
	s := paypalfake.New(paypalfake.Config{ClientID: clientID, Secret: secret})
	return s, kit.Serve(t, s)
}

// call sends a request and decodes a JSON answer; header holds name, value pairs.
func call(t *testing.T, client *http.Client, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, url, raw)
		}
	}
	return resp.StatusCode, out
}

// token fetches an access token with the app's credentials.
func token(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" || out.TokenType != "Bearer" {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.AccessToken
}

// api calls PayPal's API with a token, asking for the full representation.
func api(t *testing.T, base, tok, method, path, body, requestID string) (int, map[string]any) {
	t.Helper()
	h := []string{"Authorization", "Bearer " + tok, "Accept", "application/json", "Prefer", "return=representation"}
	if requestID != "" {
		h = append(h, "PayPal-Request-Id", requestID)
	}
	return call(t, http.DefaultClient, method, base+path, body, h...)
}

func issue(answer map[string]any) string {
	details, _ := answer["details"].([]any)
	if len(details) > 0 {
		d, _ := details[0].(map[string]any)
		s, _ := d["issue"].(string)
		return s
	}
	s, _ := answer["name"].(string)
	return s
}

var tokenShape = regexp.MustCompile(`^[A-Z0-9]{17}$`)

// newOrder creates an order through the admin API and returns its id.
func newOrder(t *testing.T, base, body string) string {
	t.Helper()
	code, o := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders", body)
	id, _ := o["id"].(string)
	if code != http.StatusCreated || !tokenShape.MatchString(id) {
		t.Fatalf("POST /__cartflow/orders %s = %d %v", body, code, o)
	}
	return id
}

func TestAdminCreatesApprovedOrders(t *testing.T) {
	t.Parallel()
	s, base := start(t)

	id := newOrder(t, base, `{"amount":6200,"currency":"usd"}`)
	o, ok := s.Order(id)
	if !ok || o.Status != "APPROVED" || o.Value != "62.00" || o.Currency != "USD" || len(o.Captures) != 0 {
		t.Fatalf("order %s = %+v, want approved 62.00 USD without captures", id, o)
	}
	// PayPal takes forints in whole units, cartflow counts hundredths: 150000 is 1500 HUF.
	if o, _ := s.Order(newOrder(t, base, `{"amount":150000,"currency":"huf"}`)); o.Value != "1500" {
		t.Errorf("huf order value %q, want 1500", o.Value)
	}
	goID, err := s.CreateApprovedOrder(1500, "jpy")
	if o, _ := s.Order(goID); err != nil || !tokenShape.MatchString(goID) || o.Value != "1500" || o.Currency != "JPY" {
		t.Errorf("CreateApprovedOrder = %q, %v; order %+v", goID, err, o)
	}

	// The API shows the order as the gateway reads it.
	code, got := api(t, base, token(t, base), http.MethodGet, "/v2/checkout/orders/"+id, "", "")
	pu := got["purchase_units"].([]any)[0].(map[string]any)
	amount := pu["amount"].(map[string]any)
	if code != http.StatusOK || got["status"] != "APPROVED" || amount["value"] != "62.00" || amount["currency_code"] != "USD" {
		t.Errorf("GET order = %d %v", code, got)
	}
	if code, got := call(t, http.DefaultClient, http.MethodGet, base+"/__cartflow/orders/"+id, ""); code != http.StatusOK || got["id"] != id {
		t.Errorf("GET /__cartflow/orders/%s = %d %v", id, code, got)
	}

	for _, body := range []string{
		`{"amount":6200,"currency":"xyz"}`,                   // not a PayPal currency
		`{"amount":150050,"currency":"huf"}`,                 // fillér
		`{"amount":0,"currency":"usd"}`,                      // nothing
		`{"amount":6200,"value":"62.00","currency":"usd"}`,   // both
		`{"value":"62.0","currency":"usd"}`,                  // PayPal's DECIMAL_PRECISION
		`{"amount":6200,"currency":"usd","status":"VOIDED"}`, // not a buyer's state
		`{"amount":6200,"currency":"usd","pending":true,"declined":true}`,
		`{"id":"` + id + `","amount":6200,"currency":"usd"}`, // taken
	} {
		if code, got := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders", body); code != http.StatusUnprocessableEntity || got["error"] == nil {
			t.Errorf("POST /__cartflow/orders %s = %d %v, want 422", body, code, got)
		}
	}
	if code, _ := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders", `{"amount":6200,"currency":"usd","amonut":1}`); code != http.StatusBadRequest {
		t.Errorf("unknown field answered %d, want 400", code)
	}
	if n := len(s.Orders()); n != 3 {
		t.Errorf("%d orders after the refusals, want 3", n)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	id := newOrder(t, base, `{"amount":6200,"currency":"usd"}`)
	form := func(user, pass, body, contentType string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const formType = "application/x-www-form-urlencoded"
	cases := []struct {
		user, pass, body, contentType string
		want                          int
	}{
		{clientID, "wrong", "grant_type=client_credentials", formType, http.StatusUnauthorized},
		{"someone", secret, "grant_type=client_credentials", formType, http.StatusUnauthorized},
		{clientID, secret, "grant_type=password", formType, http.StatusBadRequest},
		{clientID, secret, `{"grant_type":"client_credentials"}`, "application/json", http.StatusBadRequest},
		{clientID, secret, "grant_type=client_credentials", formType, http.StatusOK},
	}
	for _, tc := range cases {
		if got := form(tc.user, tc.pass, tc.body, tc.contentType); got != tc.want {
			t.Errorf("token %s:%s %q = %d, want %d", tc.user, tc.pass, tc.body, got, tc.want)
		}
	}
	for _, r := range s.Requests() {
		if strings.Contains(string(r.Body), secret) || r.Operation != paypalfake.OpToken {
			t.Errorf("recorded %+v", r)
		}
	}

	tok := token(t, base)
	if code, got := api(t, base, "not-a-token", http.MethodGet, "/v2/checkout/orders/"+id, "", ""); code != http.StatusUnauthorized || got["error"] != "invalid_token" {
		t.Errorf("bad token: %d %v", code, got)
	}
	if code, _ := api(t, base, tok, http.MethodGet, "/v2/checkout/orders/"+id, "", ""); code != http.StatusOK {
		t.Errorf("good token: %d", code)
	}
	s.RevokeTokens()
	if code, _ := api(t, base, tok, http.MethodGet, "/v2/checkout/orders/"+id, "", ""); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", code)
	}
	s.SetSecret("rotated")
	if got := form(clientID, secret, "grant_type=client_credentials", formType); got != http.StatusUnauthorized {
		t.Errorf("old secret after rotation: %d", got)
	}
	if got := form(clientID, "rotated", "grant_type=client_credentials", formType); got != http.StatusOK {
		t.Errorf("new secret: %d", got)
	}
}

func TestCaptureAndRefundAreIdempotent(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	id := newOrder(t, base, `{"amount":6200,"currency":"usd","custom_id":"order-1"}`)

	code, first := api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, "checkout-k/charge")
	if code != http.StatusCreated || first["status"] != "COMPLETED" {
		t.Fatalf("capture = %d %v", code, first)
	}
	// The same PayPal-Request-Id gets the same answer and captures nothing more.
	if code, again := api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, "checkout-k/charge"); code != http.StatusCreated || !equalJSON(first, again) {
		t.Errorf("replayed capture = %d %v, want %v", code, again, first)
	}
	// Another id: the order is captured already.
	if code, got := api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, "other"); code != http.StatusUnprocessableEntity || issue(got) != "ORDER_ALREADY_CAPTURED" {
		t.Errorf("second capture = %d %v", code, got)
	}
	caps := s.Captures()
	if len(caps) != 1 || caps[0].OrderID != id || caps[0].RequestID != "checkout-k/charge" || caps[0].Value != "62.00" || caps[0].Status != "COMPLETED" {
		t.Fatalf("captures = %+v", caps)
	}
	capID := caps[0].ID

	refund := func(requestID, body string) (int, map[string]any) {
		return api(t, base, tok, http.MethodPost, "/v2/payments/captures/"+capID+"/refund", body, requestID)
	}
	if code, got := refund("r1", `{"amount":{"currency_code":"USD","value":"20.00"}}`); code != http.StatusCreated || got["status"] != "COMPLETED" {
		t.Fatalf("refund = %d %v", code, got)
	}
	if code, _ := refund("r1", `{"amount":{"currency_code":"USD","value":"20.00"}}`); code != http.StatusCreated {
		t.Errorf("replayed refund = %d", code)
	}
	for _, tc := range []struct {
		requestID, body, issue string
		status                 int
	}{
		{"r2", `{"amount":{"currency_code":"USD","value":"50.00"}}`, "REFUND_AMOUNT_EXCEEDED", http.StatusUnprocessableEntity},
		{"r3", `{"amount":{"currency_code":"EUR","value":"1.00"}}`, "CURRENCY_MISMATCH", http.StatusUnprocessableEntity},
		{"r4", `{"amount":{"currency_code":"USD","value":"1.0"}}`, "DECIMAL_PRECISION", http.StatusBadRequest},
		{"r5", `{"amount":"20.00"}`, "MISSING_REQUIRED_PARAMETER", http.StatusBadRequest},
		{"r6", `{"amount":{"currency_code":"USD","value":"1.00"},"reason":"x"}`, "UNKNOWN_FIELD", http.StatusBadRequest},
		{"r7", `[1]`, "MALFORMED_REQUEST_JSON", http.StatusBadRequest},
	} {
		if code, got := refund(tc.requestID, tc.body); code != tc.status || issue(got) != tc.issue {
			t.Errorf("refund %s = %d %s, want %d %s", tc.body, code, issue(got), tc.status, tc.issue)
		}
	}
	// No amount: whatever remains.
	if code, got := refund("r8", `{}`); code != http.StatusCreated || got["amount"].(map[string]any)["value"] != "42.00" {
		t.Fatalf("refund of the rest = %d %v", code, got)
	}
	if code, got := refund("r9", `{}`); code != http.StatusUnprocessableEntity || issue(got) != "CAPTURE_FULLY_REFUNDED" {
		t.Errorf("refund after the full refund = %d %v", code, got)
	}
	c, _ := s.Capture(capID)
	refunds := s.Refunds()
	if c.Status != "REFUNDED" || c.RefundedValue != "62.00" || len(refunds) != 2 || refunds[0].Value != "20.00" ||
		refunds[0].RequestedValue != "20.00" || refunds[1].Value != "42.00" || refunds[1].RequestedValue != "" || refunds[1].RequestID != "r8" {
		t.Errorf("capture %+v, refunds %+v", c, refunds)
	}

	replays := 0
	for _, r := range s.Requests() {
		if r.Replayed {
			replays++
		}
	}
	if replays != 2 {
		t.Errorf("%d replays recorded, want 2", replays)
	}
	// The state endpoint shows the same.
	code, state := call(t, http.DefaultClient, http.MethodGet, base+"/__cartflow/state", "")
	orders, _ := state["orders"].([]any)
	if code != http.StatusOK || len(orders) != 1 || !strings.Contains(mustJSON(t, orders), `"refunded_value":"62.00"`) {
		t.Errorf("state = %d %v", code, state)
	}
}

func TestOrderOutcomes(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	capture := func(id, requestID string) (int, map[string]any) {
		return api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, requestID)
	}

	declined := newOrder(t, base, `{"amount":6200,"currency":"usd","issue":"INSTRUMENT_DECLINED"}`)
	if code, got := capture(declined, "a"); code != http.StatusUnprocessableEntity || issue(got) != "INSTRUMENT_DECLINED" {
		t.Errorf("declined order: %d %v", code, got)
	}
	created := newOrder(t, base, `{"amount":6200,"currency":"usd","status":"CREATED"}`)
	if code, got := capture(created, "b"); code != http.StatusUnprocessableEntity || issue(got) != "ORDER_NOT_APPROVED" {
		t.Errorf("unapproved order: %d %v", code, got)
	}
	if code, got := capture("0UNKNOWN000000000", "c"); code != http.StatusNotFound || issue(got) != "INVALID_RESOURCE_ID" {
		t.Errorf("unknown order: %d %v", code, got)
	}

	pending := newOrder(t, base, `{"amount":6200,"currency":"usd","pending":true}`)
	if code, _ := capture(pending, "d"); code != http.StatusCreated {
		t.Fatalf("pending capture: %d", code)
	}
	o, _ := s.Order(pending)
	capID := o.Captures[0].ID
	if o.Captures[0].Status != "PENDING" || o.Captures[0].StatusReason != "PENDING_REVIEW" {
		t.Fatalf("pending capture = %+v", o.Captures[0])
	}
	if code, got := api(t, base, tok, http.MethodPost, "/v2/payments/captures/"+capID+"/refund", `{}`, "e"); code != http.StatusUnprocessableEntity || issue(got) != "PENDING_CAPTURE" {
		t.Errorf("refund of a pending capture: %d %v", code, got)
	}
	if code, got := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders/"+pending+"/complete", ""); code != http.StatusOK ||
		!strings.Contains(mustJSON(t, got), `"status":"COMPLETED"`) {
		t.Errorf("complete: %d %v", code, got)
	}
	if c, _ := s.Capture(capID); c.Status != "COMPLETED" {
		t.Errorf("completed capture = %+v", c)
	}
	if code, _ := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders/"+declined+"/complete", ""); code != http.StatusConflict {
		t.Errorf("complete an order without captures: %d, want 409", code)
	}

	// Without Prefer: return=representation PayPal answers the minimal representation.
	minimal := newOrder(t, base, `{"amount":6200,"currency":"usd"}`)
	code, got := call(t, http.DefaultClient, http.MethodPost, base+"/v2/checkout/orders/"+minimal+"/capture", `{}`,
		"Authorization", "Bearer "+tok, "PayPal-Request-Id", "f")
	if code != http.StatusCreated || got["id"] != minimal || got["status"] != "COMPLETED" || got["purchase_units"] != nil {
		t.Errorf("minimal capture answer: %d %v", code, got)
	}

	if code, got := call(t, http.DefaultClient, http.MethodGet, base+"/v2/invoicing/invoices", "", "Authorization", "Bearer "+tok); code != http.StatusNotFound || got["name"] != "RESOURCE_NOT_FOUND" {
		t.Errorf("unknown path: %d %v", code, got)
	}
	if code, _ := call(t, http.DefaultClient, http.MethodGet, base+"/v2/checkout/orders/"+minimal+"/capture", "", "Authorization", "Bearer "+tok); code != http.StatusMethodNotAllowed {
		t.Errorf("GET capture: %d", code)
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.Operation != "" || last.Status != http.StatusMethodNotAllowed {
		t.Errorf("last request recorded as %+v", last)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	id := newOrder(t, base, `{"amount":6200,"currency":"usd"}`)
	other := newOrder(t, base, `{"amount":6200,"currency":"usd"}`)
	capture := func(client *http.Client, order, requestID string) (int, map[string]any) {
		return call(t, client, http.MethodPost, base+"/v2/checkout/orders/"+order+"/capture", `{}`,
			"Authorization", "Bearer "+tok, "Prefer", "return=representation", "PayPal-Request-Id", requestID)
	}

	// The next two captures of this order answer 503 and capture nothing; the other order is not affected.
	if code, got := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/faults",
		`{"operation":"capture","resource":"`+id+`","count":2,"status":503}`); code != http.StatusCreated {
		t.Fatalf("POST fault = %d %v", code, got)
	}
	for range 2 {
		if code, got := capture(http.DefaultClient, id, "k"); code != http.StatusServiceUnavailable || got["name"] != "SERVICE_UNAVAILABLE" {
			t.Fatalf("faulted capture = %d %v", code, got)
		}
	}
	if len(s.Captures()) != 0 {
		t.Fatal("a faulted request captured")
	}
	// A hang: the client gives up first, and nothing happens.
	if err := s.AddFault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: other, Count: 1, DelayMS: 2000}); err != nil {
		t.Fatal(err)
	}
	if code, _ := capture(&http.Client{Timeout: 200 * time.Millisecond}, other, "h"); code != 0 {
		t.Fatalf("hung capture answered %d", code)
	}
	// Captured, then the answer is lost to a 500.
	if err := s.AddFault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: id, Count: 1, StatusAfter: 500}); err != nil {
		t.Fatal(err)
	}
	if code, _ := capture(http.DefaultClient, id, "k"); code != http.StatusInternalServerError {
		t.Fatalf("status-after capture answered %d", code)
	}
	// The retry with the same PayPal-Request-Id gets the kept answer: the capture.
	if code, got := capture(http.DefaultClient, id, "k"); code != http.StatusCreated || got["status"] != "COMPLETED" {
		t.Fatalf("retry = %d %v", code, got)
	}
	// Captured by someone else just before the request.
	if err := s.AddFault(paypalfake.Fault{Operation: paypalfake.OpCapture, Resource: other, Count: 1, CaptureFirst: true}); err != nil {
		t.Fatal(err)
	}
	if code, got := capture(http.DefaultClient, other, "e"); code != http.StatusUnprocessableEntity || issue(got) != "ORDER_ALREADY_CAPTURED" {
		t.Fatalf("capture after someone else's = %d %v", code, got)
	}
	caps := s.Captures()
	if len(caps) != 2 || caps[0].RequestID != "k" || caps[1].RequestID != "" {
		t.Errorf("captures = %+v, want one under k and one made elsewhere", caps)
	}

	var faulted, executed int
	for _, r := range s.Requests() {
		if r.Operation != paypalfake.OpCapture {
			continue
		}
		if r.Fault != "" {
			faulted++
		}
		if r.Executed {
			executed++
		}
	}
	// 503, 503, hang, status after, replay, captured first.
	if faulted != 5 || executed != 3 {
		t.Errorf("%d faulted and %d executed capture requests, want 5 and 3", faulted, executed)
	}
	if f := s.Faults(); len(f) != 0 {
		t.Errorf("faults left: %+v", f)
	}
	for _, body := range []string{`{"operation":"charge","status":503}`, `{"status":200}`, `{"operation":"capture"}`, `{"stauts":503}`} {
		if code, _ := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/faults", body); code != http.StatusUnprocessableEntity && code != http.StatusBadRequest {
			t.Errorf("fault %s accepted: %d", body, code)
		}
	}
	if code, _ := call(t, http.DefaultClient, http.MethodDelete, base+"/__cartflow/requests", ""); code != http.StatusNoContent || len(s.Requests()) != 0 {
		t.Errorf("DELETE requests: %d, %d left", code, len(s.Requests()))
	}
}

// receiver is a webhook listener that checks deliveries with cartflow's PayPal verifier, which
// asks the double's verify endpoint, as the BFF does.
type receiver struct {
	t        *testing.T
	verifier billing.WebhookVerifier
	mu       sync.Mutex
	got      []domain.WebhookEvent
	headers  []http.Header
	bodies   [][]byte
}

func newReceiver(t *testing.T, base, webhookID string) (*receiver, string) {
	t.Helper()
	p, err := billing.NewPayPal(billing.PayPalConfig{ClientID: clientID, Secret: secret, APIURL: base, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rcv := &receiver{t: t, verifier: billing.NewPayPalWebhookVerifier(p, webhookID)}
	url := kit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := rcv.verifier.Verify(r.Context(), r.Header, body)
		rcv.mu.Lock()
		rcv.headers, rcv.bodies = append(rcv.headers, r.Header.Clone()), append(rcv.bodies, body)
		if err == nil {
			rcv.got = append(rcv.got, ev)
		}
		rcv.mu.Unlock()
		if err != nil {
			http.Error(w, `{"error":"invalid_signature"}`, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	return rcv, url
}

// captured makes an order and captures it through the API, returning the capture id.
func captured(t *testing.T, s *paypalfake.Server, base, tok string) string {
	t.Helper()
	id, err := s.CreateApprovedOrder(6200, "usd")
	if err != nil {
		t.Fatal(err)
	}
	if code, got := api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, "charge-"+id); code != http.StatusCreated {
		t.Fatalf("capture: %d %v", code, got)
	}
	o, _ := s.Order(id)
	return o.Captures[0].ID
}

func TestWebhooksVerifyAtTheDouble(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	capID := captured(t, s, base, tok)
	ctx := context.Background()

	if _, err := s.SendWebhook(ctx, paypalfake.EventCaptureRefunded, capID); !errors.Is(err, paypalfake.ErrNoWebhook) {
		t.Fatalf("SendWebhook without a destination = %v", err)
	}
	if c, _ := s.Capture(capID); c.Status != "COMPLETED" {
		t.Fatalf("an event that could not be sent changed the capture: %+v", c)
	}
	rcv, url := newReceiver(t, base, webhookID)
	s.SetWebhook(url, webhookID)

	// A refund made at PayPal: the double refunds what remains and tells the listener.
	ev, err := s.SendWebhook(ctx, paypalfake.EventCaptureRefunded, capID)
	if err != nil {
		t.Fatalf("SendWebhook: %v (deliveries %+v)", err, ev.Deliveries)
	}
	if len(ev.Deliveries) != 1 || ev.Deliveries[0].Status != http.StatusOK || !strings.HasPrefix(ev.ID, "WH-") {
		t.Fatalf("event %+v", ev)
	}
	refunds := s.Refunds()
	if c, _ := s.Capture(capID); c.Status != "REFUNDED" || len(refunds) != 1 || refunds[0].RequestID != "" || refunds[0].Value != "62.00" || ev.ResourceID != refunds[0].ID {
		t.Fatalf("capture %+v, refunds %+v, event resource %s", c, refunds, ev.ResourceID)
	}
	// The same event again, in a transmission of its own.
	again, err := s.ResendWebhook(ctx, ev.ID)
	if err != nil || len(again.Deliveries) != 2 || again.Deliveries[1].TransmissionID == again.Deliveries[0].TransmissionID {
		t.Fatalf("ResendWebhook = %+v, %v", again, err)
	}

	created, err := s.SendWebhook(ctx, paypalfake.EventDisputeCreated, capID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendWebhook(ctx, paypalfake.EventDisputeCreated, capID); !errors.Is(err, paypalfake.ErrInvalidState) {
		t.Errorf("a second dispute = %v", err)
	}
	if _, err := s.SendWebhook(ctx, paypalfake.EventDisputeResolved, capID); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Capture(capID); c.Dispute == nil || c.Dispute.Status != "RESOLVED" || c.Dispute.Outcome != "RESOLVED_SELLER_FAVOUR" || c.Dispute.ID != created.ResourceID {
		t.Errorf("dispute = %+v", c.Dispute)
	}

	rcv.mu.Lock()
	got := append([]domain.WebhookEvent(nil), rcv.got...)
	rcv.mu.Unlock()
	want := []domain.WebhookEvent{
		{Provider: billing.ProviderPayPal, ID: ev.ID, Type: domain.EventRefunded, ProviderType: "PAYMENT.CAPTURE.REFUNDED", PaymentRef: capID, Amount: 6200, Currency: "usd"},
		{Provider: billing.ProviderPayPal, ID: ev.ID, Type: domain.EventRefunded, ProviderType: "PAYMENT.CAPTURE.REFUNDED", PaymentRef: capID, Amount: 6200, Currency: "usd"},
		{Provider: billing.ProviderPayPal, ID: created.ID, Type: domain.EventDisputeOpened, ProviderType: "CUSTOMER.DISPUTE.CREATED", PaymentRef: capID, Amount: 6200, Currency: "usd", Reason: "merchandise_or_service_not_received"},
	}
	if len(got) != 4 {
		t.Fatalf("the listener verified %d deliveries, want 4: %+v", len(got), got)
	}
	for i, w := range want {
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("delivery %d verified as\n %+v\nwant %+v", i, got[i], w)
		}
	}
	if got[3].Type != domain.EventDisputeClosed || got[3].Reason != "resolved_seller_favour" {
		t.Errorf("resolution verified as %+v", got[3])
	}

	for _, tc := range []struct {
		eventType, capture string
		want               error
	}{
		{"PAYMENT.SALE.COMPLETED", capID, paypalfake.ErrUnknownEventType},
		{paypalfake.EventCaptureRefunded, "0NOSUCHCAPTURE000", paypalfake.ErrNotFound},
		{paypalfake.EventCaptureRefunded, capID, paypalfake.ErrInvalidState}, // nothing remains
		{paypalfake.EventCaptureDenied, capID, paypalfake.ErrInvalidState},   // not pending
	} {
		if _, err := s.SendWebhook(ctx, tc.eventType, tc.capture); !errors.Is(err, tc.want) {
			t.Errorf("SendWebhook(%s, %s) = %v, want %v", tc.eventType, tc.capture, err, tc.want)
		}
	}
}

func TestWebhookSignaturesAreChecked(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	capID := captured(t, s, base, tok)
	rcv, url := newReceiver(t, base, webhookID)
	s.SetWebhook(url, webhookID)
	ev, err := s.SendWebhook(context.Background(), paypalfake.EventDisputeCreated, capID)
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	header, body := rcv.headers[0], rcv.bodies[0]
	rcv.mu.Unlock()
	for _, h := range []string{"PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL"} {
		if header.Get(h) == "" {
			t.Errorf("the delivery has no %s", h)
		}
	}
	if header.Get("PAYPAL-AUTH-ALGO") != "SHA256withRSA" || !bytes.Equal(body, ev.Body) {
		t.Errorf("delivery header %v, body %s", header, body)
	}

	verify := func(listener string, h http.Header, b []byte) error {
		p, err := billing.NewPayPal(billing.PayPalConfig{ClientID: clientID, Secret: secret, APIURL: base, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = billing.NewPayPalWebhookVerifier(p, listener).Verify(context.Background(), h, b)
		return err
	}
	if err := verify(webhookID, header, body); err != nil {
		t.Fatalf("the delivery as received does not verify: %v", err)
	}
	// Re-encoded with other white space it is the same event.
	var indented bytes.Buffer
	_ = json.Indent(&indented, body, "", "  ")
	if err := verify(webhookID, header, indented.Bytes()); err != nil {
		t.Errorf("the indented event does not verify: %v", err)
	}
	tampered := bytes.Replace(body, []byte(`"62.00"`), []byte(`"6.20"`), 1)
	forged := header.Clone()
	forged.Set("PAYPAL-TRANSMISSION-SIG", paypalfake.Sign("another-key", header.Get("PAYPAL-TRANSMISSION-ID"), header.Get("PAYPAL-TRANSMISSION-TIME"), webhookID, body))
	otherAlgo := header.Clone()
	otherAlgo.Set("PAYPAL-AUTH-ALGO", "SHA1withRSA")
	for name, tc := range map[string]struct {
		listener string
		header   http.Header
		body     []byte
	}{
		"tampered body":     {webhookID, header, tampered},
		"another signer":    {webhookID, forged, body},
		"another listener":  {"8PT597110X687430L", header, body},
		"another algorithm": {webhookID, otherAlgo, body},
	} {
		if err := verify(tc.listener, tc.header, tc.body); !errors.Is(err, billing.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestAdminWebhooks(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	capID := captured(t, s, base, tok)
	_, url := newReceiver(t, base, webhookID)
	if code, _ := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/webhook", `{"url":"`+url+`","webhook_id":"`+webhookID+`"}`); code != http.StatusOK || s.WebhookURL() != url || s.WebhookID() != webhookID {
		t.Fatalf("POST /__cartflow/webhook = %d; url %q id %q", code, s.WebhookURL(), s.WebhookID())
	}
	code, ev := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/captures/"+capID+"/webhooks", `{"event_type":"PAYMENT.CAPTURE.REFUNDED"}`)
	id, _ := ev["id"].(string)
	if code != http.StatusCreated || id == "" || !strings.Contains(mustJSON(t, ev["deliveries"]), `"status":200`) {
		t.Fatalf("POST webhooks = %d %v", code, ev)
	}
	if code, again := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/events/"+id+"/resend", ""); code != http.StatusCreated || len(again["deliveries"].([]any)) != 2 {
		t.Errorf("resend = %d %v", code, again)
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/__cartflow/captures/" + capID + "/webhooks", `{"event_type":"PAYMENT.CAPTURE.REFUNDED"}`, http.StatusConflict},
		{"/__cartflow/captures/" + capID + "/webhooks", `{"event_type":"BILLING.PLAN.CREATED"}`, http.StatusUnprocessableEntity},
		{"/__cartflow/captures/0NOSUCHCAPTURE000/webhooks", `{"event_type":"PAYMENT.CAPTURE.REFUNDED"}`, http.StatusNotFound},
		{"/__cartflow/events/WH-NONE/resend", ``, http.StatusNotFound},
		{"/__cartflow/nothing", ``, http.StatusNotFound},
	} {
		if code, got := call(t, http.DefaultClient, http.MethodPost, base+tc.path, tc.body); code != tc.want {
			t.Errorf("POST %s %s = %d %v, want %d", tc.path, tc.body, code, got, tc.want)
		}
	}
	events := s.Events()
	if len(events) != 1 || len(events[0].Deliveries) != 2 || events[0].CaptureID != capID {
		t.Errorf("events = %+v", events)
	}
	var listed []paypalfake.Event
	if code := getJSON(t, base+"/__cartflow/events", &listed); code != http.StatusOK || len(listed) != 1 || listed[0].ID != id {
		t.Errorf("GET events = %d %+v", code, listed)
	}
	var refunds []paypalfake.Refund
	if code := getJSON(t, base+"/__cartflow/refunds", &refunds); code != http.StatusOK || len(refunds) != 1 || refunds[0].CaptureID != capID {
		t.Errorf("GET refunds = %d %+v", code, refunds)
	}
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreatedOrdersAreApprovedThenCapturedOnce(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	body := `{"intent":"CAPTURE","purchase_units":[{"amount":{"currency_code":"USD","value":"62.00"},"custom_id":"cart_abc"}]}`
	code, created := api(t, base, tok, http.MethodPost, "/v2/checkout/orders", body, "paypal-order/k1")
	id, _ := created["id"].(string)
	if code != http.StatusCreated || created["status"] != "CREATED" || !tokenShape.MatchString(id) {
		t.Fatalf("create = %d %v", code, created)
	}
	approve := ""
	links, _ := created["links"].([]any)
	for _, l := range links {
		if m, _ := l.(map[string]any); m["rel"] == "approve" {
			approve, _ = m["href"].(string)
		}
	}
	if !strings.HasSuffix(approve, "token="+id) {
		t.Errorf("approve link %q, want one naming %s", approve, id)
	}
	// The same PayPal-Request-Id is the same order; a bad one is refused and creates nothing.
	if code, again := api(t, base, tok, http.MethodPost, "/v2/checkout/orders", body, "paypal-order/k1"); code != http.StatusCreated || again["id"] != id {
		t.Errorf("create again = %d %v, want order %s", code, again, id)
	}
	if code, got := api(t, base, tok, http.MethodPost, "/v2/checkout/orders", `{"intent":"CAPTURE","purchase_units":[{"amount":{"currency_code":"USD","value":"62"}}]}`, "k2"); code != http.StatusBadRequest {
		t.Errorf("create with a bad value = %d %v", code, got)
	}
	if n := len(s.Orders()); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}

	capture := func(requestID string) (int, map[string]any) {
		return api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, requestID)
	}
	if code, got := capture("before-approval"); code != http.StatusUnprocessableEntity || issue(got) != "ORDER_NOT_APPROVED" {
		t.Errorf("capture before approval = %d %v", code, got)
	}
	code, approved := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders/"+id+"/approve", "")
	if code != http.StatusOK || approved["status"] != "APPROVED" || approved["custom_id"] != "cart_abc" {
		t.Fatalf("approve = %d %v", code, approved)
	}
	code, first := capture("checkout-a/charge")
	if code != http.StatusCreated || first["status"] != "COMPLETED" {
		t.Fatalf("capture = %d %v", code, first)
	}
	// Once the order is captured: its own request id replays the capture, any other gets
	// PayPal's ORDER_ALREADY_CAPTURED.
	if code, again := capture("checkout-a/charge"); code != http.StatusCreated || !equalJSON(first, again) {
		t.Errorf("replayed capture = %d %v", code, again)
	}
	code, other := capture("checkout-b/charge")
	if code != http.StatusUnprocessableEntity || issue(other) != "ORDER_ALREADY_CAPTURED" || other["name"] != "UNPROCESSABLE_ENTITY" || other["debug_id"] == "" {
		t.Errorf("another checkout's capture = %d %v", code, other)
	}
	if code, _ := call(t, http.DefaultClient, http.MethodPost, base+"/__cartflow/orders/"+id+"/approve", ""); code != http.StatusConflict {
		t.Errorf("approving a captured order = %d, want 409", code)
	}
	if c := s.Captures(); len(c) != 1 || c[0].RequestID != "checkout-a/charge" {
		t.Errorf("captures %+v, want one under checkout-a/charge", c)
	}
}

func TestTransactionSearchListsCapturesInTheWindow(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tok := token(t, base)
	id := newOrder(t, base, `{"amount":6200,"currency":"usd","custom_id":"cart_t"}`)
	if code, _ := api(t, base, tok, http.MethodPost, "/v2/checkout/orders/"+id+"/capture", `{}`, "k"); code != http.StatusCreated {
		t.Fatal("capture failed")
	}
	capID := s.Captures()[0].ID
	window := func(from, to time.Time, extra string) (int, map[string]any) {
		q := "?start_date=" + from.UTC().Format(time.RFC3339) + "&end_date=" + to.UTC().Format(time.RFC3339) + "&fields=all" + extra
		return api(t, base, tok, http.MethodGet, "/v1/reporting/transactions"+q, "", "")
	}
	code, got := window(time.Now().Add(-time.Hour), time.Now().Add(time.Minute), "&page_size=1")
	details, _ := got["transaction_details"].([]any)
	if code != http.StatusOK || len(details) != 1 || got["total_pages"] != float64(1) {
		t.Fatalf("transactions = %d %v", code, got)
	}
	info := details[0].(map[string]any)["transaction_info"].(map[string]any)
	amount := info["transaction_amount"].(map[string]any)
	if info["transaction_id"] != capID || info["transaction_event_code"] != "T0006" || info["transaction_status"] != "S" ||
		info["custom_field"] != "cart_t" || amount["value"] != "62.00" || amount["currency_code"] != "USD" {
		t.Errorf("transaction = %v", info)
	}
	if code, got := window(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), ""); code != http.StatusOK || len(got["transaction_details"].([]any)) != 0 {
		t.Errorf("a later window = %d %v, want no transactions", code, got)
	}
	if code, _ := window(time.Now().Add(-40*24*time.Hour), time.Now(), ""); code != http.StatusBadRequest {
		t.Errorf("a window of 40 days = %d, want 400", code)
	}
}
