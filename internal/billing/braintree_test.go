package billing_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
)

// The Braintree tests run the gateway against internal/dev/fake/braintree, the local double of
// Braintree's GraphQL API that the development stack serves too. It checks what Braintree documents
// for every request (POST, Basic authentication with the key pair, a Braintree-Version date, a JSON
// body of query and variables) and keeps the state the operations need: transactions charged from
// nonces, searchable by orderId, refundable once settled, voidable before. Faults make it answer
// with 5xx statuses, GraphQL error classes, slow answers and a search that lags behind. When a test
// ends, btDouble also checks that every request was one the gateway means to send.

const (
	btPublicKey  = "pubkey_test"
	btPrivateKey = "privkey_test"
	btVersion    = "2025-06-01"
	btOrderID    = "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b"
)

// btDouble is a Braintree double served for one test.
type btDouble struct {
	*braintreefake.Server
	t   *testing.T
	url string
}

func newBTDouble(t *testing.T) *btDouble {
	t.Helper()
	return newBTDoubleIn(t, "USD")
}

// newBTDoubleIn returns a double whose merchant account charges in currency.
func newBTDoubleIn(t *testing.T, currency string) *btDouble {
	t.Helper()
	d := &btDouble{t: t, Server: braintreefake.New(braintreefake.Config{
		PublicKey: btPublicKey, PrivateKey: btPrivateKey, Currency: currency,
	})}
	srv := httptest.NewServer(d.Server)
	d.url = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(d.checkRequests)
	return d
}

// btOperations are the operations the gateway sends, with the root field each must ask for.
var btOperations = map[string]string{
	"BraintreeAuthorize":         "authorizePaymentMethod",
	"BraintreeCapture":           "captureTransaction",
	"BraintreeFindCharge":        "transactions",
	"BraintreeSucceededPayments": "transactions",
	"BraintreeTransactionID":     "idsFromLegacyIds",
	"BraintreeTransaction":       "node",
	"BraintreeRefund":            "refundTransaction",
	"BraintreeReverse":           "reverseTransaction",
}

// checkRequests fails the test for any request that is not what the gateway means to send:
// a POST to /graphql with the configured version, JSON, and a named operation with variables.
func (d *btDouble) checkRequests() {
	for _, r := range d.Requests() {
		if r.Method != http.MethodPost || r.Path != "/graphql" {
			d.t.Errorf("braintree double: %s %s, want POST /graphql", r.Method, r.Path)
		}
		if r.Version != btVersion {
			d.t.Errorf("braintree double: Braintree-Version %q, want %q", r.Version, btVersion)
		}
		if r.ContentType != "application/json" {
			d.t.Errorf("braintree double: Content-Type %q, want application/json", r.ContentType)
		}
		if r.Operation == "" || r.Variables == nil {
			d.t.Errorf("braintree double: want a named operation with variables, got %q", r.Query)
			continue
		}
		if field, ok := btOperations[r.Operation]; !ok || r.Field != field {
			d.t.Errorf("braintree double: operation %s asks for %q", r.Operation, r.Field)
		}
		switch r.Operation {
		case "BraintreeFindCharge":
			if str(r.Variables, "input", "orderId", "endsWith") == "" {
				d.t.Errorf("braintree double: search without orderId.endsWith: %v", r.Variables)
			}
		case "BraintreeSucceededPayments":
			if str(r.Variables, "input", "createdAt", "greaterThanOrEqualTo") == "" {
				d.t.Errorf("braintree double: reconciliation search without createdAt.greaterThanOrEqualTo: %v", r.Variables)
			}
		case "BraintreeCapture":
			// The capture takes what was authorized, which the gateway checked is what was asked.
			if str(r.Variables, "input", "transactionId") == "" || str(r.Variables, "input", "transaction", "amount") != "" {
				d.t.Errorf("braintree double: capture of %v", r.Variables)
			}
		case "BraintreeTransactionID":
			ids, _ := r.Variables["input"].(map[string]any)["ids"].([]any)
			for _, id := range ids {
				if typ := id.(map[string]any)["type"]; typ != "TRANSACTION" {
					d.t.Errorf("braintree double: legacy id type %v, want TRANSACTION", typ)
				}
			}
		}
	}
}

// newBTGateway returns a USD double and a gateway to it with a 5 second timeout.
func newBTGateway(t *testing.T) (*btDouble, *billing.Braintree) {
	t.Helper()
	d := newBTDouble(t)
	return d, d.gateway(5 * time.Second)
}

// gateway returns a gateway that talks to the double with the right keys.
func (d *btDouble) gateway(timeout time.Duration) *billing.Braintree {
	return billing.NewBraintree(billing.BraintreeConfig{
		APIURL: d.url + "/graphql", PublicKey: btPublicKey, PrivateKey: btPrivateKey,
		MerchantAccountID: "cartflow_usd", Version: btVersion, Timeout: timeout,
	})
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

// settle moves a transaction to SETTLED, as Braintree's daily settlement does.
func (d *btDouble) settle(legacyID string) {
	d.t.Helper()
	if err := d.Settle(legacyID); err != nil {
		d.t.Fatalf("braintree double: %v", err)
	}
}

// snapshot returns the transactions and the operations that ran so far (not the requests that
// were refused or answered by a fault).
func (d *btDouble) snapshot() ([]braintreefake.Transaction, []braintreefake.Request) {
	return d.Transactions(), filter(d.Requests(), func(r braintreefake.Request) bool { return r.Executed })
}

func (d *btDouble) count(op string) int {
	_, calls := d.snapshot()
	return len(filter(calls, func(c braintreefake.Request) bool { return c.Operation == op }))
}

// operations names the operations of calls, in order, joined by commas.
func operations(calls []braintreefake.Request) string {
	names := make([]string, len(calls))
	for i, c := range calls {
		names[i] = c.Operation
	}
	return strings.Join(names, ",")
}

func btCharge(key, nonce string) billing.ChargeRequest {
	return billing.ChargeRequest{IdempotencyKey: key, Amount: 2500, Currency: "usd", Token: nonce,
		OrderID: btOrderID, Description: "cartflow order"}
}

// btResume is btCharge sent again after an unknown outcome: it looks up before it charges.
func btResume(key, nonce string) billing.ChargeRequest {
	req := btCharge(key, nonce)
	req.Resume = true
	return req
}

// btRefund is a refund of amount cents (0: whatever remains) of the usd payment ref under key.
func btRefund(key, ref string, amount int64) billing.RefundRequest {
	return billing.RefundRequest{IdempotencyKey: key, PaymentRef: ref, Amount: amount, Currency: "usd"}
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
	if len(txs) != 1 || txs[0].Status != "SUBMITTED_FOR_SETTLEMENT" || strings.Join(txs[0].StatusHistory, ",") != "SUBMITTED_FOR_SETTLEMENT,AUTHORIZED" {
		t.Fatalf("transactions at Braintree = %+v, want one authorized, then submitted for settlement", txs)
	}
	if res.ProviderRef != txs[0].LegacyID || res.Action != nil {
		t.Errorf("result = %+v, want the legacy id %s and no action", res, txs[0].LegacyID)
	}
	// The lookup comes before every authorization, the first attempt's too.
	if got := operations(calls); got != "BraintreeFindCharge,BraintreeAuthorize,BraintreeCapture" {
		t.Fatalf("calls = %s, want a lookup, an authorization and its capture", got)
	}
	if got := str(calls[2].Variables, "input", "transactionId"); got != txs[0].ID {
		t.Errorf("captured %q, want the authorization %s", got, txs[0].ID)
	}
	v := calls[1].Variables
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
			d := newBTDoubleIn(t, strings.ToUpper(tc.currency))
			req := btCharge("amounts/"+tc.currency, "fake-valid-nonce")
			req.Amount, req.Currency = tc.amount, tc.currency
			if _, err := d.gateway(5*time.Second).Charge(t.Context(), req); err != nil {
				t.Fatalf("Charge: %v", err)
			}
			authorizations := filter(d.Requests(), func(r braintreefake.Request) bool { return r.Operation == "BraintreeAuthorize" })
			if got := str(authorizations[0].Variables, "input", "transaction", "amount"); got != tc.want {
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
		// Braintree's documented sandbox nonces.
		{"fake-processor-declined-visa-nonce", "processor_declined", "do_not_honor", false, "PROCESSOR_DECLINED"},
		{"fake-processor-declined-amex-nonce", "processor_declined", "do_not_honor", false, "PROCESSOR_DECLINED"},
		{"fake-processor-failure-jcb-nonce", "failed", "processing_error", false, "FAILED"},
		{"fake-gateway-rejected-fraud-nonce", "gateway_rejected", "fraudulent", true, "GATEWAY_REJECTED"},
		{"fake-gateway-rejected-risk-thresholds-nonce", "gateway_rejected", "fraudulent", true, "GATEWAY_REJECTED"},
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
			if !billing.IsFinal(err) {
				t.Error("a decline must be final")
			}
			txs, _ := d.snapshot()
			if len(txs) != 1 || txs[0].Status != tc.status {
				t.Fatalf("transactions at Braintree = %+v, want one %s", txs, tc.status)
			}
			processorText := txs[0].ProcessorResponseText
			if decline.Message == "" || strings.Contains(decline.Message, "Declined") ||
				processorText != "" && strings.Contains(decline.Message, processorText) {
				t.Errorf("customer message %q is empty or leaks the processor's text %q", decline.Message, processorText)
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
	d, gw := newBTGateway(t)
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
	tests := map[string]braintreefake.Fault{
		"http 500": {Count: 1, Status: 500},
		"http 503": {Count: 1, Status: 503},
		"http 429": {Count: 1, Status: 429},
		"http 401": {Count: 1, Status: 401},
		"INTERNAL": {Count: 1, ErrorClass: "INTERNAL"},
		// Braintree's GraphQL API reports unavailability with HTTP 200 and an error class.
		"SERVICE_AVAILABILITY": {Count: 1, ErrorClass: "SERVICE_AVAILABILITY"},
		"RESOURCE_LIMIT":       {Count: 1, ErrorClass: "RESOURCE_LIMIT"},
	}
	for name, fault := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newBTDouble(t)
			fault.Operation = "authorizePaymentMethod"
			d.AddFault(fault)
			gw := d.gateway(5 * time.Second)
			_, err := gw.Charge(t.Context(), btCharge("faults/"+name, "fake-valid-nonce"))
			wantRetryable(t, err)
			if txs, _ := d.snapshot(); len(txs) != 0 {
				t.Fatalf("transactions at Braintree = %+v, want none", txs)
			}
			// The retry looks up first, finds nothing, and charges once.
			req := btResume("faults/"+name, "fake-valid-nonce")
			if _, err := gw.Charge(t.Context(), req); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if txs, _ := d.snapshot(); len(txs) != 1 || d.count("BraintreeFindCharge") != 2 {
				t.Errorf("after the retry: transactions %+v, lookups %d; want one transaction and a lookup per attempt", txs, d.count("BraintreeFindCharge"))
			}
		})
	}
}

func TestBraintreeChargeWrongKeysAreRetryable(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	gw := billing.NewBraintree(billing.BraintreeConfig{
		APIURL: d.url + "/graphql", PublicKey: btPublicKey, PrivateKey: "revoked", Version: btVersion, Timeout: 5 * time.Second,
	})
	_, err := gw.Charge(t.Context(), btCharge("keys/charge", "fake-valid-nonce"))
	wantRetryable(t, err) // so that ops can fix the keys
	if strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), btPublicKey) {
		t.Errorf("error %q reveals a key", err)
	}
	bad := 0
	for _, r := range d.Requests() {
		if !r.Authenticated {
			bad++
		}
	}
	if txs, _ := d.snapshot(); bad != 1 || len(txs) != 0 {
		t.Errorf("double saw %d bad logins and %d transactions, want 1 and 0", bad, len(txs))
	}
}

// A charge whose answer is lost: the client times out while Braintree goes on to charge. The
// retry finds the transaction by its orderId and does not charge again.
func TestBraintreeChargeTimeoutThenResumeChargesOnce(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	d.AddFault(braintreefake.Fault{Operation: "authorizePaymentMethod", Count: 1, DelayAfterMS: 500})
	gw := d.gateway(100 * time.Millisecond)
	key := "timeout/charge"
	_, err := gw.Charge(t.Context(), btCharge(key, "fake-valid-nonce"))
	wantRetryable(t, err) // the timeout
	req := btResume(key, "fake-valid-nonce")
	res, err := gw.Charge(t.Context(), req)
	if err != nil {
		t.Fatalf("resumed Charge: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs) != 1 || d.count("BraintreeAuthorize") != 1 || d.count("BraintreeCapture") != 1 {
		t.Fatalf("transactions %+v after %d authorizations and %d captures, want exactly one of each", txs,
			d.count("BraintreeAuthorize"), d.count("BraintreeCapture"))
	}
	if res.ProviderRef != txs[0].LegacyID {
		t.Errorf("resumed result = %+v, want %s", res, txs[0].LegacyID)
	}
}

// The search lags behind the charge: the resumed charge finds nothing, sends the nonce again and
// is told it was consumed. That is no refusal: the charge exists, so the gateway looks again and
// never charges twice.
func TestBraintreeChargeResumeWithLaggingSearch(t *testing.T) {
	t.Parallel()
	d := newBTDouble(t)
	d.AddFault(braintreefake.Fault{Operation: "authorizePaymentMethod", Count: 1, DelayAfterMS: 500})
	gw := d.gateway(100 * time.Millisecond)
	key := "lag/charge"
	if _, err := gw.Charge(t.Context(), btCharge(key, "tokencc_lagging")); err == nil {
		t.Fatal("the first charge should have timed out")
	}
	d.AddFault(braintreefake.Fault{Operation: "transactions", Count: 2, StaleSearch: true})
	req := btResume(key, "tokencc_lagging")
	_, err := gw.Charge(t.Context(), req)
	wantRetryable(t, err) // the resumed charge while the search lags
	res, err := gw.Charge(t.Context(), req)
	if err != nil {
		t.Fatalf("second resumed Charge: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs) != 1 || res.ProviderRef != txs[0].LegacyID {
		t.Fatalf("transactions %+v, result %+v: want one charge, found again", txs, res)
	}
}

func TestBraintreeChargeResumeFindsDecline(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	key := "resume-decline/charge"
	if _, err := gw.Charge(t.Context(), btCharge(key, "fake-processor-declined-2001")); err == nil {
		t.Fatal("want a decline")
	}
	req := btResume(key, "fake-processor-declined-2001")
	_, err := gw.Charge(t.Context(), req)
	var decline *billing.DeclineError
	if !errors.As(err, &decline) || decline.DeclineCode != "insufficient_funds" {
		t.Fatalf("resumed Charge error = %v, want the recorded decline", err)
	}
	if n := d.count("BraintreeAuthorize"); n != 1 {
		t.Errorf("charge calls = %d, want 1", n)
	}
}

func TestBraintreeChargeOtherKeysDoNotMatch(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	if _, err := gw.Charge(t.Context(), btCharge("order-a/charge", "nonce-a")); err != nil {
		t.Fatal(err)
	}
	req := btResume("order-b/charge", "nonce-b")
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
	d := newBTDoubleIn(t, "EUR")
	_, err := d.gateway(5*time.Second).Charge(t.Context(), btCharge("currency/charge", "fake-valid-nonce"))
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "currency_mismatch" {
		t.Fatalf("Charge error = %v, want currency_mismatch", err)
	}
	if txs, _ := d.snapshot(); len(txs) != 1 || txs[0].Status != "VOIDED" {
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
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "refund-full/charge", true)
	req := btRefund("refund-full/refund", ref, 2500)
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
	if len(txs[0].Refunds) != 1 {
		t.Fatalf("refunds at Braintree = %d, want 1", len(txs[0].Refunds))
	}
	r := txs[0].Refunds[0]
	if res != (billing.RefundResult{ProviderRef: r.LegacyID, Amount: 2500}) || again != res {
		t.Errorf("results %+v and %+v, want %s for 2500", res, again, r.LegacyID)
	}
	if r.Amount != "25.00" || r.OrderID != btOrderID+"/"+btDigest("refund-full/refund") {
		t.Errorf("refund sent as %+v", r)
	}
	// The legacy id that Charge returned is turned into a GraphQL id before each lookup.
	for _, c := range calls {
		if c.Operation != "BraintreeTransactionID" {
			continue
		}
		ids, _ := c.Variables["input"].(map[string]any)["ids"].([]any)
		if len(ids) != 1 || ids[0].(map[string]any)["legacyId"] != ref {
			t.Errorf("idsFromLegacyIds input = %v, want %s", c.Variables, ref)
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
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "partial/charge", true)
	first, err := gw.Refund(t.Context(), btRefund("partial/refund-1", ref, 1000))
	if err != nil || first.Amount != 1000 {
		t.Fatalf("first partial refund = %+v, %v", first, err)
	}
	// Its retry finds the refund by the orderId it carries and refunds nothing more.
	again, err := gw.Refund(t.Context(), btRefund("partial/refund-1", ref, 1000))
	if err != nil || again != first {
		t.Fatalf("repeated partial refund = %+v, %v; want %+v", again, err, first)
	}
	// Zero refunds whatever remains.
	rest, err := gw.Refund(t.Context(), btRefund("partial/refund-2", ref, 0))
	if err != nil || rest.Amount != 1500 {
		t.Fatalf("refund of the rest = %+v, %v; want 1500", rest, err)
	}
	_, err = gw.Refund(t.Context(), btRefund("partial/refund-3", ref, 100))
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "refund_exceeds_payment" {
		t.Errorf("refund beyond the payment: %v, want refund_exceeds_payment", err)
	}
	txs, _ := d.snapshot()
	var amounts []string
	for _, r := range txs[0].Refunds {
		amounts = append(amounts, r.Amount)
	}
	if strings.Join(amounts, ",") != "10.00,15.00" {
		t.Errorf("refunds at Braintree = %v, want 10.00 and 15.00", amounts)
	}
}

// An unsettled payment cannot be refunded, only voided: a full refund voids it, once.
func TestBraintreeRefundUnsettledVoids(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "void/charge", false)
	req := btRefund("void/refund", ref, 2500)
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
	if txs[0].Status != "VOIDED" || len(txs[0].Refunds) != 0 || d.count("BraintreeReverse") != 1 {
		t.Errorf("transaction %+v after %d reversals, want voided once without refunds", txs[0], d.count("BraintreeReverse"))
	}
	// The lookup told the payment is unsettled, so no refund that Braintree must refuse was sent.
	if n := d.count("BraintreeRefund"); n != 0 {
		t.Errorf("refundTransaction calls = %d, want none", n)
	}
}

func TestBraintreeRefundUnsettledPartialWaitsForSettlement(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "wait/charge", false)
	req := btRefund("wait/refund", ref, 1000)
	_, err := gw.Refund(t.Context(), req)
	wantRetryable(t, err) // a partial refund before the settlement
	if txs, _ := d.snapshot(); txs[0].Status != "SUBMITTED_FOR_SETTLEMENT" || len(txs[0].Refunds) != 0 {
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
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "fallback/charge", true)
	d.AddFault(braintreefake.Fault{Operation: "refundTransaction", ErrorClass: "VALIDATION", LegacyCode: "91506",
		Message: "Cannot refund transaction unless it is settled."})
	res, err := gw.Refund(t.Context(), btRefund("fallback/refund", ref, 2500))
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	txs, _ := d.snapshot()
	if len(txs[0].Refunds) != 1 || res != (billing.RefundResult{ProviderRef: txs[0].Refunds[0].LegacyID, Amount: 2500}) {
		t.Errorf("result %+v, refunds %+v", res, txs[0].Refunds)
	}
	// The reversal's refund cannot carry this key; a retry still sees the payment fully refunded.
	again, err := gw.Refund(t.Context(), btRefund("fallback/refund", ref, 2500))
	if err != nil || again.ProviderRef != res.ProviderRef {
		t.Errorf("repeated Refund = %+v, %v", again, err)
	}
	if txs, _ := d.snapshot(); len(txs[0].Refunds) != 1 {
		t.Errorf("refunds = %d after the retry, want 1", len(txs[0].Refunds))
	}
}

func TestBraintreeRefundByChargeKey(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	ref := chargeSettled(t, d, gw, "by-key/charge", true)
	res, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: "by-key/refund", ChargeKey: "by-key/charge", Currency: "usd"})
	if err != nil || res.Amount != 2500 || res.NothingCharged {
		t.Fatalf("Refund by charge key = %+v, %v", res, err)
	}
	if n := d.count("BraintreeTransactionID"); n != 0 {
		t.Errorf("legacy id conversions = %d, want 0 when refunding by charge key", n)
	}
	if txs, _ := d.snapshot(); txs[0].LegacyID != ref || len(txs[0].Refunds) != 1 {
		t.Errorf("transaction %+v", txs[0])
	}
}

func TestBraintreeRefundNothingCharged(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
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
	_, err := d.gateway(5*time.Second).Refund(t.Context(), btRefund("unknown/refund", "nosuch", 100))
	var rejected *billing.RejectedError
	if !errors.As(err, &rejected) || rejected.Code != "payment_not_found" {
		t.Fatalf("Refund of an unknown payment: %v, want payment_not_found", err)
	}
}
