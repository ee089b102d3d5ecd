package billing_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
)

// The Braintree tests run the gateway against btDouble, a small httptest stand-in for
// Braintree's GraphQL endpoint. It checks what Braintree documents for every request (POST,
// Basic authentication with the key pair, a Braintree-Version date, a JSON body of query and
// variables) and keeps just enough state to answer the operations the gateway sends:
// transactions charged from nonces, searchable by orderId, refundable once settled, voidable
// before. It can answer with declines, validation errors, 5xx statuses, slow answers and a
// search that lags behind.

const (
	btPublicKey  = "pubkey_test"
	btPrivateKey = "privkey_test"
	btVersion    = "2025-06-01"
	btOrderID    = "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b"
)

type btDoubleTx struct {
	id, legacyID, orderID, status, amount, currency string
	history                                         []map[string]any
	refunds                                         []*btDoubleRefund
}

type btDoubleRefund struct {
	id, legacyID, orderID, status, amount string
}

// btCall is one request the double accepted.
type btCall struct {
	op        string
	variables map[string]any
}

type btDouble struct {
	t        *testing.T
	srv      *httptest.Server
	currency string

	mu       sync.Mutex
	txs      []*btDoubleTx
	consumed map[string]bool
	calls    []btCall
	badAuth  int
	// Faults, each applying to the requests that come next.
	statuses    []int         // HTTP statuses to answer with instead of processing
	errorClass  string        // a GraphQL error class to answer the next request with
	chargeDelay time.Duration // a charge is made, then answered this late
	hideSearch  int           // this many searches find nothing
	refuse91506 bool          // refundTransaction answers "cannot refund unless settled"
}

func newBTDouble(t *testing.T) *btDouble {
	t.Helper()
	d := &btDouble{t: t, currency: "USD", consumed: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

// gateway returns a gateway that talks to the double with the right keys.
func (d *btDouble) gateway(timeout time.Duration) *billing.Braintree {
	return billing.NewBraintree(billing.BraintreeConfig{
		APIURL: d.srv.URL + "/graphql", PublicKey: btPublicKey, PrivateKey: btPrivateKey,
		MerchantAccountID: "cartflow_usd", Version: btVersion, Timeout: timeout,
	})
}

var btOperation = regexp.MustCompile(`^(mutation|query) (\w+)`)

func (d *btDouble) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
		d.t.Errorf("braintree double: %s %s, want POST /graphql", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if v := r.Header.Get("Braintree-Version"); v != btVersion {
		d.t.Errorf("braintree double: Braintree-Version %q, want %q", v, btVersion)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		d.t.Errorf("braintree double: Content-Type %q, want application/json", ct)
	}
	var body struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		d.t.Errorf("braintree double: body is not JSON: %v", err)
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	m := btOperation.FindStringSubmatch(body.Query)
	if m == nil || body.Variables == nil {
		d.t.Errorf("braintree double: want a named operation with variables, got %q", body.Query)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	op := m[2]

	d.mu.Lock()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(btPublicKey+":"+btPrivateKey))
	if r.Header.Get("Authorization") != wantAuth {
		d.badAuth++
		d.mu.Unlock()
		btWrite(w, nil, btErr("AUTHENTICATION", "", "Authentication credentials are invalid."))
		return
	}
	if len(d.statuses) > 0 {
		status := d.statuses[0]
		d.statuses = d.statuses[1:]
		d.mu.Unlock()
		http.Error(w, "upstream trouble", status)
		return
	}
	if d.errorClass != "" {
		class := d.errorClass
		d.errorClass = ""
		d.mu.Unlock()
		btWrite(w, nil, btErr(class, "", "Something went wrong."))
		return
	}
	d.calls = append(d.calls, btCall{op: op, variables: body.Variables})
	var data map[string]any
	var errs []map[string]any
	var delay time.Duration
	switch op {
	case "BraintreeCharge":
		d.wantFields(body.Query, "chargePaymentMethod(input: $input)")
		data, errs = d.charge(body.Variables)
		if data != nil {
			delay = d.chargeDelay
		}
	case "BraintreeFindCharge":
		d.wantFields(body.Query, "transactions(input: $input")
		data = d.find(body.Variables)
	case "BraintreeTransactionID":
		d.wantFields(body.Query, "idsFromLegacyIds(input: $input)")
		data = d.ids(body.Variables)
	case "BraintreeTransaction":
		d.wantFields(body.Query, "node(id: $id)")
		data, errs = d.node(body.Variables)
	case "BraintreeRefund":
		d.wantFields(body.Query, "refundTransaction(input: $input)")
		data, errs = d.refund(body.Variables)
	case "BraintreeReverse":
		d.wantFields(body.Query, "reverseTransaction(input: $input)")
		data, errs = d.reverse(body.Variables)
	default:
		d.t.Errorf("braintree double: unexpected operation %s", op)
	}
	d.mu.Unlock()
	if delay > 0 {
		// The charge is made; its answer comes after the client gave up.
		time.Sleep(delay)
	}
	btWrite(w, data, errs...)
}

func (d *btDouble) wantFields(query string, fields ...string) {
	for _, f := range fields {
		if !strings.Contains(query, f) {
			d.t.Errorf("braintree double: query lacks %q: %s", f, query)
		}
	}
}

func btWrite(w http.ResponseWriter, data map[string]any, errs ...map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"data": data, "extensions": map[string]any{"requestId": "req-1"}}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	_ = json.NewEncoder(w).Encode(body)
}

func btErr(class, code, message string) map[string]any {
	ext := map[string]any{"errorClass": class}
	if code != "" {
		ext["legacyCode"] = code
	}
	return map[string]any{"message": message, "extensions": ext}
}

// str reads a string at a path of nested objects in the variables.
func str(v map[string]any, path ...string) string {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

var btAmountFormat = regexp.MustCompile(`^[0-9]+(\.[0-9]{2,3})?$`)

func (d *btDouble) charge(vars map[string]any) (map[string]any, []map[string]any) {
	nonce := str(vars, "input", "paymentMethodId")
	amount := str(vars, "input", "transaction", "amount")
	orderID := str(vars, "input", "transaction", "orderId")
	if !btAmountFormat.MatchString(amount) {
		return nil, []map[string]any{btErr("VALIDATION", "81503", "Amount is an invalid format.")}
	}
	if nonce == "fake-invalid-nonce" {
		return nil, []map[string]any{btErr("VALIDATION", "91565", "Unknown or expired single-use payment method.")}
	}
	if d.consumed[nonce] {
		return nil, []map[string]any{btErr("VALIDATION", "91564", "Cannot use a single-use payment method more than once.")}
	}
	d.consumed[nonce] = true
	legacy := fmt.Sprintf("tx%d", len(d.txs)+1)
	tx := &btDoubleTx{id: btGlobalID("transaction", legacy), legacyID: legacy, orderID: orderID, amount: amount, currency: d.currency}
	switch {
	case strings.HasPrefix(nonce, "fake-processor-declined-"):
		code := strings.TrimPrefix(nonce, "fake-processor-declined-")
		tx.status = "PROCESSOR_DECLINED"
		tx.history = []map[string]any{{"status": tx.status, "declineType": "SOFT",
			"processorResponse": map[string]any{"legacyCode": code, "message": "Declined " + code}}}
	case strings.HasPrefix(nonce, "fake-gateway-rejected-"):
		tx.status = "GATEWAY_REJECTED"
		tx.history = []map[string]any{{"status": tx.status,
			"gatewayRejectionReason": strings.TrimPrefix(nonce, "fake-gateway-rejected-")}}
	case nonce == "fake-failed":
		tx.status = "FAILED"
		tx.history = []map[string]any{{"status": tx.status,
			"processorResponse": map[string]any{"legacyCode": "3000", "message": "Processor Network Unavailable - Try Again"}}}
	default:
		tx.status = "SUBMITTED_FOR_SETTLEMENT"
		tx.history = []map[string]any{{"status": tx.status}, {"status": "AUTHORIZED"}}
	}
	d.txs = append(d.txs, tx)
	return map[string]any{"chargePaymentMethod": map[string]any{"transaction": tx.json()}}, nil
}

func (d *btDouble) find(vars map[string]any) map[string]any {
	suffix := str(vars, "input", "orderId", "endsWith")
	if suffix == "" {
		d.t.Errorf("braintree double: search without orderId.endsWith: %v", vars)
	}
	edges := []any{}
	if d.hideSearch > 0 {
		d.hideSearch--
	} else {
		for _, tx := range d.txs {
			if strings.HasSuffix(tx.orderID, suffix) {
				edges = append(edges, map[string]any{"node": tx.json()})
			}
		}
	}
	return map[string]any{"transactions": map[string]any{"edges": edges}}
}

func (d *btDouble) ids(vars map[string]any) map[string]any {
	input, _ := vars["input"].(map[string]any)
	list, _ := input["ids"].([]any)
	var out []any
	for _, item := range list {
		m, _ := item.(map[string]any)
		if m["type"] != "TRANSACTION" {
			d.t.Errorf("braintree double: legacy id type %v, want TRANSACTION", m["type"])
		}
		legacy, _ := m["legacyId"].(string)
		// Like Braintree, the conversion does not check that the transaction exists.
		out = append(out, btGlobalID("transaction", legacy))
	}
	return map[string]any{"idsFromLegacyIds": out}
}

func (d *btDouble) node(vars map[string]any) (map[string]any, []map[string]any) {
	if tx := d.byID(str(vars, "id")); tx != nil {
		return map[string]any{"node": tx.json()}, nil
	}
	return map[string]any{"node": nil}, []map[string]any{btErr("NOT_FOUND", "", "An object with this ID was not found.")}
}

func (d *btDouble) refund(vars map[string]any) (map[string]any, []map[string]any) {
	tx := d.byID(str(vars, "input", "transactionId"))
	if tx == nil {
		return nil, []map[string]any{btErr("NOT_FOUND", "", "An object with this ID was not found.")}
	}
	if d.refuse91506 || (tx.status != "SETTLED" && tx.status != "SETTLING") {
		return nil, []map[string]any{btErr("VALIDATION", "91506", "Cannot refund transaction unless it is settled.")}
	}
	amount := str(vars, "input", "refund", "amount")
	if !btAmountFormat.MatchString(amount) {
		return nil, []map[string]any{btErr("VALIDATION", "81503", "Amount is an invalid format.")}
	}
	orderID := str(vars, "input", "refund", "orderId")
	if orderID == "" {
		orderID = tx.orderID
	}
	r := tx.addRefund(len(d.refunds())+1, amount, orderID)
	return map[string]any{"refundTransaction": map[string]any{"refund": r.json(tx.currency)}}, nil
}

func (d *btDouble) reverse(vars map[string]any) (map[string]any, []map[string]any) {
	tx := d.byID(str(vars, "input", "transactionId"))
	if tx == nil {
		return nil, []map[string]any{btErr("NOT_FOUND", "", "An object with this ID was not found.")}
	}
	switch tx.status {
	case "AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT":
		tx.status = "VOIDED"
		tx.history = append([]map[string]any{{"status": "VOIDED"}}, tx.history...)
		rev := tx.json()
		rev["__typename"] = "Transaction"
		return map[string]any{"reverseTransaction": map[string]any{"reversal": rev}}, nil
	case "SETTLED", "SETTLING":
		// Settled: the reversal is a refund of everything, under the transaction's orderId.
		r := tx.addRefund(len(d.refunds())+1, tx.amount, tx.orderID)
		rev := r.json(tx.currency)
		rev["__typename"] = "Refund"
		return map[string]any{"reverseTransaction": map[string]any{"reversal": rev}}, nil
	}
	return nil, []map[string]any{btErr("VALIDATION", "91504", "Transaction can only be voided if status is authorized, submitted_for_settlement, or - for PayPal - settlement_pending.")}
}

func (tx *btDoubleTx) addRefund(n int, amount, orderID string) *btDoubleRefund {
	legacy := fmt.Sprintf("rf%d", n)
	r := &btDoubleRefund{id: btGlobalID("refund", legacy), legacyID: legacy, orderID: orderID, status: "SUBMITTED_FOR_SETTLEMENT", amount: amount}
	tx.refunds = append(tx.refunds, r)
	return r
}

func (d *btDouble) byID(id string) *btDoubleTx {
	for _, tx := range d.txs {
		if tx.id == id {
			return tx
		}
	}
	return nil
}

func (d *btDouble) refunds() []*btDoubleRefund {
	var out []*btDoubleRefund
	for _, tx := range d.txs {
		out = append(out, tx.refunds...)
	}
	return out
}

func btGlobalID(kind, legacy string) string {
	return base64.RawStdEncoding.EncodeToString([]byte(kind + "_" + legacy))
}

func (tx *btDoubleTx) json() map[string]any {
	refunds := []any{}
	for _, r := range tx.refunds {
		refunds = append(refunds, r.json(tx.currency))
	}
	return map[string]any{
		"id": tx.id, "legacyId": tx.legacyID, "orderId": tx.orderID, "status": tx.status,
		"amount":        map[string]any{"value": tx.amount, "currencyCode": tx.currency},
		"statusHistory": tx.history, "refunds": refunds,
	}
}

func (r *btDoubleRefund) json(currency string) map[string]any {
	return map[string]any{"id": r.id, "legacyId": r.legacyID, "orderId": r.orderID, "status": r.status,
		"amount": map[string]any{"value": r.amount, "currencyCode": currency}}
}

// settle moves a transaction to SETTLED, as Braintree's daily settlement does.
func (d *btDouble) settle(legacyID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, tx := range d.txs {
		if tx.legacyID == legacyID {
			tx.status = "SETTLED"
			tx.history = append([]map[string]any{{"status": "SETTLED"}}, tx.history...)
			return
		}
	}
	d.t.Fatalf("braintree double: no transaction %s", legacyID)
}

// snapshot returns copies of the transactions and the calls so far.
func (d *btDouble) snapshot() ([]btDoubleTx, []btCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	txs := make([]btDoubleTx, len(d.txs))
	for i, tx := range d.txs {
		txs[i] = *tx
	}
	return txs, append([]btCall(nil), d.calls...)
}

func (d *btDouble) count(op string) int {
	_, calls := d.snapshot()
	n := 0
	for _, c := range calls {
		if c.op == op {
			n++
		}
	}
	return n
}

func (d *btDouble) inject(f func(d *btDouble)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func btCharge(key, nonce string) billing.ChargeRequest {
	return billing.ChargeRequest{IdempotencyKey: key, Amount: 2500, Currency: "usd", Token: nonce,
		OrderID: btOrderID, Description: "cartflow order"}
}

func btDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func TestBraintreeChargeSucceeds(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	key := "checkout-1/charge"
	res, err := d.gateway(5*time.Second).Charge(t.Context(), btCharge(key, "fake-valid-nonce"))
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	txs, calls := d.snapshot()
	if len(txs) != 1 || txs[0].status != "SUBMITTED_FOR_SETTLEMENT" {
		t.Fatalf("transactions at Braintree = %+v, want one submitted for settlement", txs)
	}
	if res.ProviderRef != txs[0].legacyID || res.Action != nil {
		t.Errorf("result = %+v, want the legacy id %s and no action", res, txs[0].legacyID)
	}
	if len(calls) != 1 || calls[0].op != "BraintreeCharge" {
		t.Fatalf("calls = %+v, want one charge and no lookup", calls)
	}
	v := calls[0].variables
	if got := str(v, "input", "paymentMethodId"); got != "fake-valid-nonce" {
		t.Errorf("paymentMethodId = %q", got)
	}
	if got := str(v, "input", "transaction", "amount"); got != "25.00" {
		t.Errorf("amount = %q, want 25.00", got)
	}
	if got := str(v, "input", "transaction", "merchantAccountId"); got != "cartflow_usd" {
		t.Errorf("merchantAccountId = %q, want cartflow_usd", got)
	}
	// The orderId names the order for people and identifies the idempotency key for lookups.
	if got, want := str(v, "input", "transaction", "orderId"), btOrderID+"/"+btDigest(key); got != want {
		t.Errorf("orderId = %q, want %q", got, want)
	}
}

func TestBraintreeChargeAmountFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{2500, "usd", "25.00"},
		{5, "eur", "0.05"},
		{2500, "jpy", "2500"},
		{1234, "kwd", "1.234"},
		{100000001, "usd", "1000000.01"},
	}
	for _, tc := range tests {
		t.Run(tc.currency, func(t *testing.T) {
			t.Parallel()
			d := newBTDouble(t)
			d.currency = strings.ToUpper(tc.currency)
			req := btCharge("amounts/"+tc.currency, "fake-valid-nonce")
			req.Amount, req.Currency = tc.amount, tc.currency
			if _, err := d.gateway(5*time.Second).Charge(t.Context(), req); err != nil {
				t.Fatalf("Charge: %v", err)
			}
			_, calls := d.snapshot()
			if got := str(calls[0].variables, "input", "transaction", "amount"); got != tc.want {
				t.Errorf("%d %s sent as %q, want %q", tc.amount, tc.currency, got, tc.want)
			}
		})
	}
}

func TestBraintreeChargeDeclines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nonce             string
		code, declineCode string
		hard              bool
		status            string
	}{
		{"fake-processor-declined-2001", "processor_declined", "insufficient_funds", false, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2000", "processor_declined", "do_not_honor", false, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2013", "processor_declined", "stolen_card", true, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2012", "processor_declined", "lost_card", true, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2014", "processor_declined", "fraudulent", true, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2004", "processor_declined", "expired_card", true, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-2999", "processor_declined", "", false, "PROCESSOR_DECLINED"},
		{"fake-gateway-rejected-FRAUD", "gateway_rejected", "fraudulent", true, "GATEWAY_REJECTED"},
		{"fake-gateway-rejected-CVV", "gateway_rejected", "incorrect_cvc", false, "GATEWAY_REJECTED"},
		{"fake-gateway-rejected-TOKEN_ISSUANCE", "gateway_rejected", "token_issuance", false, "GATEWAY_REJECTED"},
		{"fake-failed", "failed", "processing_error", false, "FAILED"},
	}
	for _, tc := range tests {
		t.Run(tc.nonce, func(t *testing.T) {
			t.Parallel()
			d := newBTDouble(t)
			_, err := d.gateway(5*time.Second).Charge(t.Context(), btCharge("declines/"+tc.nonce, tc.nonce))
			var decline *billing.DeclineError
			if !errors.As(err, &decline) {
				t.Fatalf("Charge error = %v, want a *DeclineError", err)
			}
			if decline.Code != tc.code || decline.DeclineCode != tc.declineCode || decline.Hard() != tc.hard {
				t.Errorf("decline = %+v (hard %v), want %s/%s hard %v", decline, decline.Hard(), tc.code, tc.declineCode, tc.hard)
			}
			if decline.Message == "" || strings.Contains(decline.Message, "Declined") {
				t.Errorf("customer message %q is empty or leaks the processor's text", decline.Message)
			}
			if !billing.IsFinal(err) {
				t.Error("a decline must be final")
			}
			if txs, _ := d.snapshot(); len(txs) != 1 || txs[0].status != tc.status {
				t.Errorf("transactions at Braintree = %+v, want one %s", txs, tc.status)
			}
		})
	}
}

func TestBraintreeChargeValidationErrorIsRejected(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	_, err := d.gateway(5*time.Second).Charge(t.Context(), btCharge("invalid/charge", "fake-invalid-nonce"))
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "91565" {
		t.Fatalf("Charge error = %v, want a *RejectedError with code 91565", err)
	}
	if !billing.IsFinal(err) {
		t.Error("a validation error must be final")
	}
	if txs, _ := d.snapshot(); len(txs) != 0 {
		t.Errorf("transactions at Braintree = %+v, want none", txs)
	}
}

func TestBraintreeChargeRefusesBadRequestsWithoutCalling(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	tests := map[string]func(*billing.ChargeRequest){
		"payment_method_missing":  func(r *billing.ChargeRequest) { r.Token = "" },
		"invalid_amount":          func(r *billing.ChargeRequest) { r.Amount = 0 },
		"off_session_unsupported": func(r *billing.ChargeRequest) { r.OffSession, r.CustomerRef = true, "cust_1" },
	}
	for code, mutate := range tests {
		req := btCharge("refused/"+code, "fake-valid-nonce")
		mutate(&req)
		_, err := gw.Charge(t.Context(), req)
		var rejected *billing.RejectedError
		if !errors.As(err, &rejected) || rejected.Code != code {
			t.Errorf("%s: error = %v", code, err)
		}
	}
	if _, calls := d.snapshot(); len(calls) != 0 {
		t.Errorf("calls = %+v, want none", calls)
	}
}

func TestBraintreeChargeTechnicalFailuresAreRetryable(t *testing.T) {
	t.Parallel()
	tests := map[string]func(d *btDouble){
		"http 500": func(d *btDouble) { d.statuses = []int{500} },
		"http 503": func(d *btDouble) { d.statuses = []int{503} },
		"http 429": func(d *btDouble) { d.statuses = []int{429} },
		"http 401": func(d *btDouble) { d.statuses = []int{401} },
		"INTERNAL": func(d *btDouble) { d.errorClass = "INTERNAL" },
		// Braintree's GraphQL API reports unavailability with HTTP 200 and an error class.
		"SERVICE_AVAILABILITY": func(d *btDouble) { d.errorClass = "SERVICE_AVAILABILITY" },
		"RESOURCE_LIMIT":       func(d *btDouble) { d.errorClass = "RESOURCE_LIMIT" },
	}
	for name, fault := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newBTDouble(t)
			d.inject(fault)
			gw := d.gateway(5 * time.Second)
			_, err := gw.Charge(t.Context(), btCharge("faults/"+name, "fake-valid-nonce"))
			if err == nil || billing.IsFinal(err) {
				t.Fatalf("Charge error = %v, want a retryable error", err)
			}
			if txs, _ := d.snapshot(); len(txs) != 0 {
				t.Fatalf("transactions at Braintree = %+v, want none", txs)
			}
			// The retry looks up first, finds nothing, and charges once.
			req := btCharge("faults/"+name, "fake-valid-nonce")
			req.Resume = true
			if _, err := gw.Charge(t.Context(), req); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if txs, _ := d.snapshot(); len(txs) != 1 || d.count("BraintreeFindCharge") != 1 {
				t.Errorf("after the retry: transactions %+v, lookups %d; want one of each", txs, d.count("BraintreeFindCharge"))
			}
		})
	}
}

func TestBraintreeChargeWrongKeysAreRetryable(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := billing.NewBraintree(billing.BraintreeConfig{
		APIURL: d.srv.URL + "/graphql", PublicKey: btPublicKey, PrivateKey: "revoked", Version: btVersion, Timeout: 5 * time.Second,
	})
	_, err := gw.Charge(t.Context(), btCharge("keys/charge", "fake-valid-nonce"))
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("Charge error = %v, want a retryable error so that ops can fix the keys", err)
	}
	if strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), btPublicKey) {
		t.Errorf("error %q reveals a key", err)
	}
	d.mu.Lock()
	bad := d.badAuth
	d.mu.Unlock()
	if txs, _ := d.snapshot(); bad != 1 || len(txs) != 0 {
		t.Errorf("double saw %d bad logins and %d transactions, want 1 and 0", bad, len(txs))
	}
}

// A charge whose answer is lost: the client times out while Braintree goes on to charge. The
// retry finds the transaction by its orderId and does not charge again.
func TestBraintreeChargeTimeoutThenResumeChargesOnce(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	d.chargeDelay = 500 * time.Millisecond
	gw := d.gateway(100 * time.Millisecond)
	key := "timeout/charge"
	_, err := gw.Charge(t.Context(), btCharge(key, "fake-valid-nonce"))
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("Charge error = %v, want a retryable timeout", err)
	}
	req := btCharge(key, "fake-valid-nonce")
	req.Resume = true
	res, err := gw.Charge(t.Context(), req)
	if err != nil {
		t.Fatalf("resumed Charge: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs) != 1 || d.count("BraintreeCharge") != 1 {
		t.Fatalf("transactions %+v after %d charge calls, want exactly one charge", txs, d.count("BraintreeCharge"))
	}
	if res.ProviderRef != txs[0].legacyID {
		t.Errorf("resumed result = %+v, want %s", res, txs[0].legacyID)
	}
}

// The search lags behind the charge: the resumed charge finds nothing, sends the nonce again and
// is told it was consumed. That is no refusal: the charge exists, so the gateway looks again and
// never charges twice.
func TestBraintreeChargeResumeWithLaggingSearch(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	d.chargeDelay = 500 * time.Millisecond
	gw := d.gateway(100 * time.Millisecond)
	key := "lag/charge"
	if _, err := gw.Charge(t.Context(), btCharge(key, "tokencc_lagging")); err == nil {
		t.Fatal("the first charge should have timed out")
	}
	d.inject(func(d *btDouble) { d.chargeDelay, d.hideSearch = 0, 2 })
	req := btCharge(key, "tokencc_lagging")
	req.Resume = true
	_, err := gw.Charge(t.Context(), req)
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("resumed Charge while the search lags: %v, want a retryable error", err)
	}
	res, err := gw.Charge(t.Context(), req)
	if err != nil {
		t.Fatalf("second resumed Charge: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs) != 1 || res.ProviderRef != txs[0].legacyID {
		t.Fatalf("transactions %+v, result %+v: want one charge, found again", txs, res)
	}
}

func TestBraintreeChargeResumeFindsDecline(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	key := "resume-decline/charge"
	if _, err := gw.Charge(t.Context(), btCharge(key, "fake-processor-declined-2001")); err == nil {
		t.Fatal("want a decline")
	}
	req := btCharge(key, "fake-processor-declined-2001")
	req.Resume = true
	_, err := gw.Charge(t.Context(), req)
	var decline *billing.DeclineError
	if !errors.As(err, &decline) || decline.DeclineCode != "insufficient_funds" {
		t.Fatalf("resumed Charge error = %v, want the recorded decline", err)
	}
	if n := d.count("BraintreeCharge"); n != 1 {
		t.Errorf("charge calls = %d, want 1", n)
	}
}

func TestBraintreeChargeOtherKeysDoNotMatch(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	if _, err := gw.Charge(t.Context(), btCharge("order-a/charge", "nonce-a")); err != nil {
		t.Fatal(err)
	}
	req := btCharge("order-b/charge", "nonce-b")
	req.Resume = true
	if _, err := gw.Charge(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if txs, _ := d.snapshot(); len(txs) != 2 {
		t.Errorf("transactions = %d, want 2: another key's charge is not this one", len(txs))
	}
}

// A merchant account in another currency would charge a wrong sum: the transaction is voided.
func TestBraintreeChargeCurrencyMismatchIsVoided(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	d.currency = "EUR"
	_, err := d.gateway(5*time.Second).Charge(t.Context(), btCharge("currency/charge", "fake-valid-nonce"))
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "currency_mismatch" {
		t.Fatalf("Charge error = %v, want currency_mismatch", err)
	}
	if txs, _ := d.snapshot(); len(txs) != 1 || txs[0].status != "VOIDED" {
		t.Errorf("transactions = %+v, want the charge voided", txs)
	}
}

// chargeSettled charges 25.00 under key and, when settled is true, settles it.
func chargeSettled(t *testing.T, d *btDouble, gw *billing.Braintree, key string, settled bool) string {
	t.Helper()
	res, err := gw.Charge(t.Context(), btCharge(key, "nonce-"+key))
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	if settled {
		d.settle(res.ProviderRef)
	}
	return res.ProviderRef
}

func TestBraintreeRefundFullOnce(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "refund-full/charge", true)
	req := billing.RefundRequest{IdempotencyKey: "refund-full/refund", PaymentRef: ref, Amount: 2500, Currency: "usd"}
	res, err := gw.Refund(t.Context(), req)
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	// The retry of the same refund finds it on the payment and refunds nothing more.
	again, err := gw.Refund(t.Context(), req)
	if err != nil {
		t.Fatalf("repeated Refund: %v", err)
	}
	txs, calls := d.snapshot()
	if len(txs[0].refunds) != 1 {
		t.Fatalf("refunds at Braintree = %d, want 1", len(txs[0].refunds))
	}
	r := txs[0].refunds[0]
	if res != (billing.RefundResult{ProviderRef: r.legacyID, Amount: 2500}) || again != res {
		t.Errorf("results %+v and %+v, want %s for 2500", res, again, r.legacyID)
	}
	if r.amount != "25.00" || r.orderID != btOrderID+"/"+btDigest("refund-full/refund") {
		t.Errorf("refund sent as %+v", r)
	}
	// The legacy id that Charge returned is turned into a GraphQL id before each lookup.
	for _, c := range calls {
		if c.op != "BraintreeTransactionID" {
			continue
		}
		ids, _ := c.variables["input"].(map[string]any)["ids"].([]any)
		if len(ids) != 1 || ids[0].(map[string]any)["legacyId"] != ref {
			t.Errorf("idsFromLegacyIds input = %v, want %s", c.variables, ref)
		}
	}
	if n := d.count("BraintreeTransactionID"); n != 2 {
		t.Errorf("legacy id conversions = %d, want one per Refund", n)
	}
	if n := d.count("BraintreeReverse"); n != 0 {
		t.Errorf("reversals = %d, want none for a settled payment", n)
	}
}

func TestBraintreeRefundPartials(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "partial/charge", true)
	first, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "partial/refund-1", PaymentRef: ref, Amount: 1000, Currency: "usd"})
	if err != nil || first.Amount != 1000 {
		t.Fatalf("first partial refund = %+v, %v", first, err)
	}
	// Its retry finds the refund by the orderId it carries and refunds nothing more.
	again, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "partial/refund-1", PaymentRef: ref, Amount: 1000, Currency: "usd"})
	if err != nil || again != first {
		t.Fatalf("repeated partial refund = %+v, %v; want %+v", again, err, first)
	}
	// Zero refunds whatever remains.
	rest, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "partial/refund-2", PaymentRef: ref, Currency: "usd"})
	if err != nil || rest.Amount != 1500 {
		t.Fatalf("refund of the rest = %+v, %v; want 1500", rest, err)
	}
	_, err = gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "partial/refund-3", PaymentRef: ref, Amount: 100, Currency: "usd"})
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "refund_exceeds_payment" {
		t.Errorf("refund beyond the payment: %v, want refund_exceeds_payment", err)
	}
	txs, _ := d.snapshot()
	var amounts []string
	for _, r := range txs[0].refunds {
		amounts = append(amounts, r.amount)
	}
	if strings.Join(amounts, ",") != "10.00,15.00" {
		t.Errorf("refunds at Braintree = %v, want 10.00 and 15.00", amounts)
	}
}

// An unsettled payment cannot be refunded, only voided: a full refund voids it, once.
func TestBraintreeRefundUnsettledVoids(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "void/charge", false)
	req := billing.RefundRequest{IdempotencyKey: "void/refund", PaymentRef: ref, Amount: 2500, Currency: "usd"}
	res, err := gw.Refund(t.Context(), req)
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if res != (billing.RefundResult{ProviderRef: ref, Amount: 2500}) {
		t.Errorf("result = %+v, want the voided transaction %s for 2500", res, ref)
	}
	if again, err := gw.Refund(t.Context(), req); err != nil || again != res {
		t.Errorf("repeated Refund = %+v, %v", again, err)
	}
	txs, _ := d.snapshot()
	if txs[0].status != "VOIDED" || len(txs[0].refunds) != 0 || d.count("BraintreeReverse") != 1 {
		t.Errorf("transaction %+v after %d reversals, want voided once without refunds", txs[0], d.count("BraintreeReverse"))
	}
	// The lookup told the payment is unsettled, so no refund that Braintree must refuse was sent.
	if n := d.count("BraintreeRefund"); n != 0 {
		t.Errorf("refundTransaction calls = %d, want none", n)
	}
}

func TestBraintreeRefundUnsettledPartialWaitsForSettlement(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "wait/charge", false)
	req := billing.RefundRequest{IdempotencyKey: "wait/refund", PaymentRef: ref, Amount: 1000, Currency: "usd"}
	_, err := gw.Refund(t.Context(), req)
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("partial refund before settlement: %v, want a retryable error", err)
	}
	if txs, _ := d.snapshot(); txs[0].status != "SUBMITTED_FOR_SETTLEMENT" || len(txs[0].refunds) != 0 {
		t.Fatalf("transaction = %+v, want it untouched", txs[0])
	}
	d.settle(ref)
	res, err := gw.Refund(t.Context(), req)
	if err != nil || res.Amount != 1000 {
		t.Fatalf("partial refund after settlement = %+v, %v", res, err)
	}
}

// Braintree refuses the refund as unsettled though the lookup saw it settled; the reversal
// that follows refunds it in full.
func TestBraintreeRefundFallsBackToReversal(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "fallback/charge", true)
	d.inject(func(d *btDouble) { d.refuse91506 = true })
	res, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "fallback/refund", PaymentRef: ref, Amount: 2500, Currency: "usd"})
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs[0].refunds) != 1 || res != (billing.RefundResult{ProviderRef: txs[0].refunds[0].legacyID, Amount: 2500}) {
		t.Errorf("result %+v, refunds %+v", res, txs[0].refunds)
	}
	// The reversal's refund cannot carry this key; a retry still sees the payment fully refunded.
	again, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "fallback/refund", PaymentRef: ref, Amount: 2500, Currency: "usd"})
	if err != nil || again.ProviderRef != res.ProviderRef {
		t.Errorf("repeated Refund = %+v, %v", again, err)
	}
	if txs, _ := d.snapshot(); len(txs[0].refunds) != 1 {
		t.Errorf("refunds = %d after the retry, want 1", len(txs[0].refunds))
	}
}

func TestBraintreeRefundByChargeKey(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	ref := chargeSettled(t, d, gw, "by-key/charge", true)
	res, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "by-key/refund", ChargeKey: "by-key/charge", Currency: "usd"})
	if err != nil || res.Amount != 2500 || res.NothingCharged {
		t.Fatalf("Refund by charge key = %+v, %v", res, err)
	}
	if n := d.count("BraintreeTransactionID"); n != 0 {
		t.Errorf("legacy id conversions = %d, want 0 when refunding by charge key", n)
	}
	if txs, _ := d.snapshot(); txs[0].legacyID != ref || len(txs[0].refunds) != 1 {
		t.Errorf("transaction %+v", txs[0])
	}
}

func TestBraintreeRefundNothingCharged(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := d.gateway(5 * time.Second)
	if _, err := gw.Charge(t.Context(), btCharge("declined/charge", "fake-processor-declined-2001")); err == nil {
		t.Fatal("want a decline")
	}
	for _, chargeKey := range []string{"never-sent/charge", "declined/charge"} {
		res, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: chargeKey + "/refund", ChargeKey: chargeKey, Amount: 2500, Currency: "usd"})
		if err != nil || !res.NothingCharged {
			t.Errorf("%s: Refund = %+v, %v; want NothingCharged", chargeKey, res, err)
		}
	}
	if n := d.count("BraintreeRefund") + d.count("BraintreeReverse"); n != 0 {
		t.Errorf("refund or reversal calls = %d, want none", n)
	}
}

func TestBraintreeRefundUnknownPayment(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	_, err := d.gateway(5*time.Second).Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "unknown/refund", PaymentRef: "nosuch", Amount: 100, Currency: "usd"})
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "payment_not_found" {
		t.Fatalf("Refund of an unknown payment: %v, want payment_not_found", err)
	}
}
