package braintree_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
	"github.com/cartflow/cartflow/internal/dev/fake/kit"
	"github.com/cartflow/cartflow/internal/domain"
)

// These tests speak GraphQL to the double directly, the way Braintree's API is documented; the
// gateway's own tests (internal/billing) run the gateway against it.

const (
	publicKey  = "pub_mock"
	privateKey = "priv_mock"
	version    = "2026-11-01"
)

func start(t *testing.T) (*braintreefake.Server, string) {
	t.Helper()
	s := braintreefake.New(braintreefake.Config{PublicKey: publicKey, PrivateKey: privateKey})
	return s, kit.Serve(t, s)
}

var auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(publicKey+":"+privateKey))

// gqlResponse is a GraphQL answer.
type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			ErrorClass string `json:"errorClass"`
			LegacyCode string `json:"legacyCode"`
		} `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		RequestID string `json:"requestId"`
	} `json:"extensions"`
}

// errorTag is the first error as "CLASS:code", or "" without errors.
func (r gqlResponse) errorTag() string {
	if len(r.Errors) == 0 {
		return ""
	}
	e := r.Errors[0].Extensions
	if e.LegacyCode != "" {
		return e.ErrorClass + ":" + e.LegacyCode
	}
	return e.ErrorClass
}

// field decodes the data's root field into out.
func (r gqlResponse) field(t *testing.T, name string, out any) {
	t.Helper()
	if err := json.Unmarshal(r.Data[name], out); err != nil {
		t.Fatalf("data.%s = %s: %v", name, r.Data[name], err)
	}
}

// gql posts a GraphQL request with valid credentials and returns the HTTP status and the answer.
func gql(t *testing.T, base, query string, variables map[string]any) (int, gqlResponse) {
	t.Helper()
	return gqlWith(t, http.DefaultClient, base, query, variables)
}

func gqlWith(t *testing.T, client *http.Client, base, query string, variables map[string]any) (int, gqlResponse) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Braintree-Version", version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, gqlResponse{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out gqlResponse
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer is not JSON: %s", raw)
		}
	}
	return resp.StatusCode, out
}

const chargeQuery = `mutation Charge($input: ChargePaymentMethodInput!) {
  chargePaymentMethod(input: $input) { transaction { id legacyId orderId status amount { value currencyCode }
    statusHistory { status ... on ProcessorDeclinedEvent { declineType processorResponse { legacyCode message } } } } }
}`

type txJSON struct {
	ID            string `json:"id"`
	LegacyID      string `json:"legacyId"`
	OrderID       string `json:"orderId"`
	Status        string `json:"status"`
	TypeName      string `json:"__typename"`
	Amount        struct{ Value, CurrencyCode string }
	StatusHistory []struct {
		Status            string
		DeclineType       string
		ProcessorResponse *struct{ LegacyCode, Message string }
	}
	Refunds []struct {
		LegacyID string `json:"legacyId"`
		Amount   struct{ Value string }
	}
}

// charge charges nonce for amount under orderID and returns the transaction, or the error tag.
func charge(t *testing.T, base, nonce, amount, orderID string) (txJSON, string) {
	t.Helper()
	_, res := gql(t, base, chargeQuery, map[string]any{"input": map[string]any{
		"paymentMethodId": nonce, "transaction": map[string]any{"amount": amount, "orderId": orderID},
	}})
	var data struct {
		Transaction txJSON `json:"transaction"`
	}
	if tag := res.errorTag(); tag != "" {
		return txJSON{}, tag
	}
	res.field(t, "chargePaymentMethod", &data)
	return data.Transaction, ""
}

func TestRefusesWhatBraintreeRefuses(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	valid := `{"query":"mutation C($input: ChargePaymentMethodInput!) { chargePaymentMethod(input: $input) { transaction { id } } }",
		"variables":{"input":{"paymentMethodId":"fake-valid-nonce","transaction":{"amount":"10.00"}}}}`
	tests := []struct {
		name, method, path, contentType, version, auth, body string
		status                                               int
		errorClass                                           string
	}{
		{"wrong path", "POST", "/graphql/v2", "application/json", version, auth, valid, 404, ""},
		{"GET", "GET", "/graphql", "application/json", version, auth, valid, 405, ""},
		{"form body", "POST", "/graphql", "application/x-www-form-urlencoded", version, auth, valid, 415, ""},
		{"no version", "POST", "/graphql", "application/json", "", auth, valid, 400, ""},
		{"version not a date", "POST", "/graphql", "application/json", "latest", auth, valid, 400, ""},
		{"not JSON", "POST", "/graphql", "application/json", version, auth, "query { ping }", 400, ""},
		{"wrong keys", "POST", "/graphql", "application/json", version, "Basic " + base64.StdEncoding.EncodeToString([]byte(publicKey+":nope")), valid, 200, "AUTHENTICATION"},
		{"no keys", "POST", "/graphql", "application/json", version, "", valid, 200, "AUTHENTICATION"},
		{"unknown field", "POST", "/graphql", "application/json", version, auth, `{"query":"mutation { chargeCreditCard(input: $i) { id } }","variables":{}}`, 200, ""},
		{"mutation as query", "POST", "/graphql", "application/json", version, auth, `{"query":"query Q($input: X!) { chargePaymentMethod(input: $input) { transaction { id } } }","variables":{"input":{}}}`, 200, ""},
		{"inline object", "POST", "/graphql", "application/json", version, auth, `{"query":"mutation { chargePaymentMethod(input: {paymentMethodId: \"fake-valid-nonce\"}) { transaction { id } } }"}`, 200, ""},
		{"undefined variable", "POST", "/graphql", "application/json", version, auth, `{"query":"mutation M { chargePaymentMethod(input: $input) { transaction { id } } }","variables":{}}`, 200, ""},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.version != "" {
			req.Header.Set("Braintree-Version", tc.version)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res gqlResponse
		_ = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != tc.status || len(res.Errors) != 1 || res.Errors[0].Extensions.ErrorClass != tc.errorClass || res.Errors[0].Message == "" {
			t.Errorf("%s: %d %+v, want %d with one %q error", tc.name, resp.StatusCode, res.Errors, tc.status, tc.errorClass)
		}
	}
	if txs := s.Transactions(); len(txs) != 0 {
		t.Errorf("transactions after refused requests: %+v", txs)
	}
	reqs := s.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("%d requests recorded, want %d", len(reqs), len(tests))
	}
	for i, r := range reqs {
		if r.Executed || r.Status != tests[i].status {
			t.Errorf("%s recorded as %+v", tests[i].name, r)
		}
	}
	for i, r := range reqs {
		if wantAuth := i >= 8; r.Authenticated != wantAuth {
			t.Errorf("%s: authenticated %v, want %v", tests[i].name, r.Authenticated, wantAuth)
		}
	}
}

func TestSandboxNonces(t *testing.T) {
	t.Parallel()
	_, base := start(t)
	tests := []struct {
		nonce, status, code, declineType, refusal string
	}{
		{"fake-valid-nonce", "SUBMITTED_FOR_SETTLEMENT", "", "", ""},
		{"fake-valid-visa-nonce", "SUBMITTED_FOR_SETTLEMENT", "", "", ""},
		{"fake-apple-pay-mastercard-nonce", "SUBMITTED_FOR_SETTLEMENT", "", "", ""},
		{"tokencc_bc_abc123", "SUBMITTED_FOR_SETTLEMENT", "", "", ""},
		{"fake-processor-declined-visa-nonce", "PROCESSOR_DECLINED", "2000", "SOFT", ""},
		{"fake-processor-declined-mastercard-nonce", "PROCESSOR_DECLINED", "2000", "SOFT", ""},
		{"fake-processor-declined-2001-nonce", "PROCESSOR_DECLINED", "2001", "SOFT", ""},
		{"fake-processor-declined-2013", "PROCESSOR_DECLINED", "2013", "HARD", ""},
		{"fake-processor-failure-jcb-nonce", "FAILED", "", "", ""},
		{"fake-gateway-rejected-fraud-nonce", "GATEWAY_REJECTED", "", "", ""},
		{"fake-gateway-rejected-avs-and-cvv-nonce", "GATEWAY_REJECTED", "", "", ""},
		{"fake-luhn-invalid-nonce", "", "", "", "VALIDATION:81715"},
		{"fake-consumed-nonce", "", "", "", "VALIDATION:91564"},
		{"fake-invalid-nonce", "", "", "", "VALIDATION:91565"},
		{"fake-made-up-nonce", "", "", "", "VALIDATION:91565"},
	}
	for _, tc := range tests {
		tx, refusal := charge(t, base, tc.nonce, "62.00", "order-1/abc")
		if refusal != tc.refusal || tx.Status != tc.status {
			t.Errorf("%s: status %q, refusal %q; want %q, %q", tc.nonce, tx.Status, refusal, tc.status, tc.refusal)
			continue
		}
		if tc.refusal != "" {
			continue
		}
		if tx.LegacyID == "" || tx.Amount.Value != "62.00" || tx.Amount.CurrencyCode != "USD" || tx.OrderID != "order-1/abc" || len(tx.StatusHistory) == 0 {
			t.Errorf("%s: transaction %+v", tc.nonce, tx)
		}
		if got := tx.StatusHistory[0]; tc.code != "" && (got.ProcessorResponse == nil || got.ProcessorResponse.LegacyCode != tc.code || got.DeclineType != tc.declineType) {
			t.Errorf("%s: newest status event %+v, want code %s %s", tc.nonce, got, tc.code, tc.declineType)
		}
	}
}

func TestClientNoncesAreSingleUseAndSandboxNoncesReusable(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	if _, refusal := charge(t, base, "tokencc_once", "10.00", "a"); refusal != "" {
		t.Fatalf("first charge refused: %s", refusal)
	}
	if _, refusal := charge(t, base, "tokencc_once", "10.00", "a"); refusal != "VALIDATION:91564" {
		t.Fatalf("second charge with a consumed nonce: %q, want VALIDATION:91564", refusal)
	}
	for range 2 {
		if _, refusal := charge(t, base, "fake-valid-nonce", "10.00", "b"); refusal != "" {
			t.Fatalf("fake-valid-nonce refused: %s", refusal)
		}
	}
	if txs := s.Transactions(); len(txs) != 3 {
		t.Fatalf("%d transactions, want 3", len(txs))
	}
}

func TestChargeValidatesTheAmount(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	for amount, want := range map[string]string{"": "VALIDATION:81502", "10": "", "10.5": "VALIDATION:81503", "1,00": "VALIDATION:81503", "0.00": "VALIDATION:81531", "1.234": ""} {
		if _, refusal := charge(t, base, "fake-valid-nonce", amount, "x"); refusal != want {
			t.Errorf("amount %q: %q, want %q", amount, refusal, want)
		}
	}
	if n := len(s.Transactions()); n != 2 {
		t.Errorf("%d transactions, want the 2 valid amounts", n)
	}
}

const searchQuery = `query Find($input: TransactionSearchInput!) {
  transactions(input: $input, first: 50) { edges { node { legacyId orderId status } } }
}`

func search(t *testing.T, base string, input map[string]any) []string {
	t.Helper()
	_, res := gql(t, base, searchQuery, map[string]any{"input": input})
	if len(res.Errors) > 0 {
		t.Fatalf("search %v: %+v", input, res.Errors)
	}
	var data struct {
		Edges []struct{ Node txJSON }
	}
	res.field(t, "transactions", &data)
	var ids []string
	for _, e := range data.Edges {
		ids = append(ids, e.Node.OrderID)
	}
	return ids
}

func TestSearchAndLookup(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	a, _ := charge(t, base, "fake-valid-nonce", "10.00", "order-a/1111")
	charge(t, base, "fake-processor-declined-visa-nonce", "10.00", "order-b/2222")
	charge(t, base, "fake-valid-nonce", "10.00", "order-c/1111")

	for _, tc := range []struct {
		input map[string]any
		want  string
	}{
		{map[string]any{"orderId": map[string]any{"endsWith": "1111"}}, "order-a/1111,order-c/1111"},
		{map[string]any{"orderId": map[string]any{"is": "order-b/2222"}}, "order-b/2222"},
		{map[string]any{"orderId": map[string]any{"startsWith": "order-c"}}, "order-c/1111"},
		{map[string]any{"orderId": map[string]any{"contains": "der-"}, "status": map[string]any{"in": []any{"PROCESSOR_DECLINED"}}}, "order-b/2222"},
		{map[string]any{"id": map[string]any{"is": a.LegacyID}}, "order-a/1111"},
		{map[string]any{"orderId": map[string]any{"endsWith": "9999"}}, ""},
	} {
		if got := strings.Join(search(t, base, tc.input), ","); got != tc.want {
			t.Errorf("search %v = %q, want %q", tc.input, got, tc.want)
		}
	}
	if _, res := gql(t, base, searchQuery, map[string]any{"input": map[string]any{"orderID": map[string]any{"is": "x"}}}); len(res.Errors) != 1 {
		t.Errorf("a search by an unknown criterion must be refused: %+v", res)
	}
	_, res := gql(t, base, `query { transactions(input: $input, first: 1) { edges { node { legacyId } } } }`, map[string]any{"input": map[string]any{}})
	var page struct{ Edges []any }
	res.field(t, "transactions", &page)
	if len(page.Edges) != 1 {
		t.Errorf("first: 1 returned %d edges", len(page.Edges))
	}

	// idsFromLegacyIds, then node, as the gateway fetches a transaction by its legacy id.
	_, res = gql(t, base, `query Ids($input: IdsFromLegacyIdsInput!) { idsFromLegacyIds(input: $input) }`,
		map[string]any{"input": map[string]any{"ids": []any{map[string]any{"legacyId": a.LegacyID, "type": "TRANSACTION"}, map[string]any{"legacyId": "nosuch", "type": "TRANSACTION"}}}})
	var ids []string
	res.field(t, "idsFromLegacyIds", &ids)
	if len(ids) != 2 || ids[0] != a.ID || ids[1] == "" {
		t.Fatalf("idsFromLegacyIds = %v, want [%s, a global id]", ids, a.ID)
	}
	nodeQuery := `query Node($id: ID!) { node(id: $id) { ... on Transaction { id legacyId status } } }`
	_, res = gql(t, base, nodeQuery, map[string]any{"id": ids[0]})
	var node txJSON
	res.field(t, "node", &node)
	if node.LegacyID != a.LegacyID || node.Status != "SUBMITTED_FOR_SETTLEMENT" || node.TypeName != "Transaction" {
		t.Errorf("node = %+v", node)
	}
	_, res = gql(t, base, nodeQuery, map[string]any{"id": ids[1]})
	if res.errorTag() != "NOT_FOUND" || string(res.Data["node"]) != "null" {
		t.Errorf("node of an unknown id: %s %+v", res.Data["node"], res.Errors)
	}
	// A legacy id is not a node id.
	if _, res = gql(t, base, nodeQuery, map[string]any{"id": a.LegacyID}); res.errorTag() != "NOT_FOUND" {
		t.Errorf("node of a legacy id: %+v", res)
	}

	// A refund asked for as a Transaction is an empty object, as in GraphQL.
	if err := s.Settle(a.LegacyID); err != nil {
		t.Fatal(err)
	}
	_, res = gql(t, base, refundQuery, map[string]any{"input": map[string]any{"transactionId": a.ID, "refund": map[string]any{"amount": "1.00"}}})
	var refund struct{ Refund struct{ ID, LegacyID string } }
	res.field(t, "refundTransaction", &refund)
	_, res = gql(t, base, nodeQuery, map[string]any{"id": refund.Refund.ID})
	if got := string(res.Data["node"]); got != `{"__typename":"Refund"}` {
		t.Errorf("node of a refund selected as Transaction = %s", got)
	}
	_, res = gql(t, base, `query Node($id: ID!) { node(id: $id) { ... on Refund { legacyId } } }`, map[string]any{"id": refund.Refund.ID})
	if !strings.Contains(string(res.Data["node"]), refund.Refund.LegacyID) {
		t.Errorf("node of a refund selected as Refund = %s", res.Data["node"])
	}
}

const refundQuery = `mutation Refund($input: RefundTransactionInput!) {
  refundTransaction(input: $input) { refund { id legacyId orderId status amount { value currencyCode } } }
}`

const reverseQuery = `mutation Reverse($input: ReverseTransactionInput!) {
  reverseTransaction(input: $input) { reversal { __typename ... on Transaction { id legacyId status } ... on Refund { id legacyId status amount { value } } } }
}`

func refundTx(t *testing.T, base, txID, amount string) string {
	t.Helper()
	refund := map[string]any{"orderId": "refund-order"}
	if amount != "" {
		refund["amount"] = amount
	}
	_, res := gql(t, base, refundQuery, map[string]any{"input": map[string]any{"transactionId": txID, "refund": refund}})
	return res.errorTag()
}

func TestRefundsAndReversals(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tx, _ := charge(t, base, "fake-valid-nonce", "62.00", "order/1")

	if got := refundTx(t, base, tx.ID, "10.00"); got != "VALIDATION:91506" {
		t.Fatalf("refund before settlement: %q, want VALIDATION:91506", got)
	}
	if err := s.Settle(tx.LegacyID); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ id, amount, want string }{
		{tx.ID, "20.00", ""},
		{tx.LegacyID, "50.00", "VALIDATION:91521"}, // only 42.00 remain; a legacy id is accepted too
		{tx.ID, "10.005", "VALIDATION:81503"},
		{"nosuch", "1.00", "NOT_FOUND"},
		{tx.ID, "", ""}, // the rest
		{tx.ID, "1.00", "VALIDATION:91512"},
	} {
		if got := refundTx(t, base, step.id, step.amount); got != step.want {
			t.Errorf("refund %s of %s: %q, want %q", step.amount, step.id, got, step.want)
		}
	}
	got, _ := s.Transaction(tx.LegacyID)
	if len(got.Refunds) != 2 || got.Refunds[0].Amount != "20.00" || got.Refunds[1].Amount != "42.00" ||
		got.Refunds[0].OrderID != "refund-order" || got.Refunds[0].TransactionID != tx.LegacyID || got.Status != "SETTLED" {
		t.Errorf("transaction after refunds = %+v", got)
	}
	if refunds := s.Refunds(); len(refunds) != 2 || refunds[1].LegacyID != got.Refunds[1].LegacyID {
		t.Errorf("Refunds() = %+v", refunds)
	}
	if _, res := gql(t, base, reverseQuery, map[string]any{"input": map[string]any{"transactionId": tx.ID}}); res.errorTag() != "VALIDATION:91512" {
		t.Errorf("reversal of a fully refunded payment: %+v", res.Errors)
	}

	// Unsettled: the reversal voids; a second one is refused.
	unsettled, _ := charge(t, base, "fake-valid-nonce", "2500", "order/2")
	_, res := gql(t, base, reverseQuery, map[string]any{"input": map[string]any{"transactionId": unsettled.ID}})
	var rev struct{ Reversal txJSON }
	res.field(t, "reverseTransaction", &rev)
	if rev.Reversal.TypeName != "Transaction" || rev.Reversal.Status != "VOIDED" {
		t.Errorf("reversal of an unsettled payment = %+v", rev.Reversal)
	}
	if _, res = gql(t, base, reverseQuery, map[string]any{"input": map[string]any{"transactionId": unsettled.ID}}); res.errorTag() != "VALIDATION:91504" {
		t.Errorf("second reversal: %+v", res.Errors)
	}
	if err := s.Settle(unsettled.LegacyID); !errors.Is(err, braintreefake.ErrInvalidState) {
		t.Errorf("settling a voided transaction: %v", err)
	}

	// Settled: the reversal refunds what remains, in the amount's own format (no decimals here).
	settled, _ := charge(t, base, "fake-valid-nonce", "2500", "order/3")
	// The daily batch settles the waiting transaction and the two refunds made above.
	if settledIDs := s.SettleAll(); len(settledIDs) != 3 || !slices.Contains(settledIDs, settled.LegacyID) {
		t.Fatalf("SettleAll = %v, want %s and two refunds", settledIDs, settled.LegacyID)
	}
	if refunds := s.Refunds(); refunds[0].Status != "SETTLED" || refunds[1].Status != "SETTLED" {
		t.Errorf("refunds after SettleAll = %+v", refunds)
	}
	_, res = gql(t, base, reverseQuery, map[string]any{"input": map[string]any{"transactionId": settled.ID}})
	res.field(t, "reverseTransaction", &rev)
	if rev.Reversal.TypeName != "Refund" || rev.Reversal.Amount.Value != "2500" {
		t.Errorf("reversal of a settled payment = %+v", rev.Reversal)
	}
	if err := s.Settle("nosuch"); !errors.Is(err, braintreefake.ErrNotFound) {
		t.Errorf("Settle of an unknown id: %v", err)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s, base := start(t)

	s.AddFault(braintreefake.Fault{Operation: "chargePaymentMethod", Count: 2, Status: http.StatusServiceUnavailable})
	// A fault for another operation leaves charges alone, and the order of faults decides.
	s.AddFault(braintreefake.Fault{Operation: "BraintreeFindCharge", ErrorClass: "INTERNAL"})
	for i := range 2 {
		if status, _ := gql(t, base, chargeQuery, map[string]any{"input": map[string]any{"paymentMethodId": "fake-valid-nonce", "transaction": map[string]any{"amount": "1.00"}}}); status != 503 {
			t.Fatalf("charge %d: status %d, want 503", i, status)
		}
	}
	if len(s.Transactions()) != 0 {
		t.Fatal("a faulted charge made a transaction")
	}
	if _, refusal := charge(t, base, "fake-valid-nonce", "1.00", "x"); refusal != "" {
		t.Fatalf("third charge: %s, want the fault used up", refusal)
	}
	_, res := gql(t, base, strings.Replace(searchQuery, "query Find", "query BraintreeFindCharge", 1), map[string]any{"input": map[string]any{}})
	if res.errorTag() != "INTERNAL" {
		t.Errorf("search with an INTERNAL fault: %+v", res)
	}
	if faults := s.Faults(); len(faults) != 1 || faults[0].ErrorClass != "INTERNAL" {
		t.Errorf("faults left = %+v, want the one without a count", faults)
	}
	s.ClearFaults()

	// A hang longer than the client waits: the client gives up and nothing happens.
	s.AddFault(braintreefake.Fault{Count: 1, DelayMS: 2000})
	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	if status, _ := gqlWith(t, impatient, base, chargeQuery, map[string]any{"input": map[string]any{"paymentMethodId": "tokencc_hang", "transaction": map[string]any{"amount": "1.00"}}}); status != 0 {
		t.Fatalf("hung charge answered %d", status)
	}
	// A late answer: the charge happens, the client never hears of it.
	s.AddFault(braintreefake.Fault{Count: 1, DelayAfterMS: 2000})
	if status, _ := gqlWith(t, impatient, base, chargeQuery, map[string]any{"input": map[string]any{"paymentMethodId": "tokencc_late", "transaction": map[string]any{"amount": "2.00"}}}); status != 0 {
		t.Fatalf("late charge answered %d", status)
	}
	waitFor(t, func() bool { return len(s.Requests()) == 6 })
	txs := s.Transactions()
	if len(txs) != 2 || txs[1].Amount != "2.00" {
		t.Fatalf("transactions = %+v, want the late one only besides the first", txs)
	}
	reqs := s.Requests()
	// By nonce, though the hung request is recorded as its fault applies, before the late one:
	// the order of requests is not what this checks.
	byNonce := map[string]braintreefake.Request{}
	for _, r := range reqs[4:] {
		input, _ := r.Variables["input"].(map[string]any)
		nonce, _ := input["paymentMethodId"].(string)
		byNonce[nonce] = r
	}
	hung, late := byNonce["tokencc_hang"], byNonce["tokencc_late"]
	if hung.Executed || hung.Status != 0 || hung.Fault == "" || !late.Executed || late.Fault == "" {
		t.Errorf("hung request %+v, late request %+v", hung, late)
	}
	if reqs[0].Status != 503 || reqs[0].Executed || reqs[0].Fault == "" || reqs[0].Field != "chargePaymentMethod" || reqs[0].Operation != "Charge" {
		t.Errorf("faulted request recorded as %+v", reqs[0])
	}

	// A search that lags behind the charges.
	s.AddFault(braintreefake.Fault{Operation: "transactions", Count: 1, StaleSearch: true})
	if got := search(t, base, map[string]any{}); len(got) != 0 {
		t.Errorf("stale search found %v", got)
	}
	if got := search(t, base, map[string]any{}); len(got) != 2 {
		t.Errorf("search after the lag found %v", got)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

// receiver is a webhook endpoint that verifies what it gets as the BFF does.
type receiver struct {
	mu     sync.Mutex
	events []domain.WebhookEvent
	status int
	url    string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	verifier := billing.NewBraintreeWebhookVerifier(publicKey, privateKey, time.Now)
	rcv := &receiver{status: http.StatusOK}
	url := kit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		event, err := verifier.Verify(r.Context(), r.Header, body)
		if err != nil {
			t.Errorf("webhook does not verify: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		rcv.events = append(rcv.events, event)
		w.WriteHeader(rcv.status)
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	rcv.url = url + "/webhooks/braintree"
	return rcv
}

func (r *receiver) got() []domain.WebhookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]domain.WebhookEvent(nil), r.events...)
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	ctx := context.Background()
	tx, _ := charge(t, base, "fake-valid-nonce", "62.00", "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b/0123456789abcdef0123456789abcdef")
	if _, err := s.SendWebhook(ctx, "dispute_opened", tx.LegacyID); !errors.Is(err, braintreefake.ErrNoWebhook) {
		t.Fatalf("SendWebhook without a destination: %v", err)
	}
	rcv := newReceiver(t)
	s.SetWebhook(rcv.url, publicKey, privateKey)

	n, err := s.SendWebhook(ctx, "dispute_opened", tx.LegacyID)
	if err != nil {
		t.Fatalf("SendWebhook: %v", err)
	}
	if len(n.Deliveries) != 1 || n.Deliveries[0].Status != 200 || n.Deliveries[0].Response != `{"received":true}` || n.TransactionID != tx.LegacyID {
		t.Errorf("notification = %+v", n)
	}
	events := rcv.got()
	if len(events) != 1 {
		t.Fatalf("receiver got %d events", len(events))
	}
	e := events[0]
	if e.Type != domain.EventDisputeOpened || e.ProviderType != "dispute_opened" || e.PaymentRef != tx.LegacyID ||
		e.OrderID != "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b" || e.Amount != 6200 || e.Currency != "usd" || e.Reason != "fraud" {
		t.Errorf("event = %+v", e)
	}
	if got, _ := s.Transaction(tx.LegacyID); got.Dispute == nil || got.Dispute.Status != "open" || got.Dispute.Amount != "62.00" {
		t.Errorf("dispute at the double = %+v", got.Dispute)
	}

	// A resend is the same notification: the receiver sees the same event id.
	again, err := s.ResendWebhook(ctx, n.ID)
	if err != nil || len(again.Deliveries) != 2 || again.Payload != n.Payload {
		t.Fatalf("ResendWebhook = %+v, %v", again, err)
	}
	if events = rcv.got(); len(events) != 2 || events[1].ID != events[0].ID {
		t.Errorf("resent event id %s, first %s: want the same", events[1].ID, events[0].ID)
	}

	// Deciding the dispute, then a settlement notification that settles the transaction.
	if _, err := s.SendWebhook(ctx, "dispute_won", tx.LegacyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendWebhook(ctx, "transaction_settled", tx.LegacyID); err != nil {
		t.Fatal(err)
	}
	events = rcv.got()
	if won, settled := events[2], events[3]; won.Type != domain.EventDisputeClosed || won.Reason != "won" ||
		settled.Type != domain.EventPaymentSucceeded || settled.PaymentRef != tx.LegacyID || settled.Amount != 6200 {
		t.Errorf("events = %+v, %+v", won, settled)
	}
	if got, _ := s.Transaction(tx.LegacyID); got.Status != "SETTLED" || got.Dispute.Status != "won" {
		t.Errorf("transaction after the notifications = %+v", got)
	}
	if _, err := s.SendWebhook(ctx, "transaction_settlement_declined", tx.LegacyID); !errors.Is(err, braintreefake.ErrInvalidState) {
		t.Errorf("settlement declined for a settled transaction: %v", err)
	}
	pending, _ := charge(t, base, "fake-valid-nonce", "5.00", "x")
	if _, err := s.SendWebhook(ctx, "transaction_settlement_declined", pending.LegacyID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Transaction(pending.LegacyID); got.Status != "SETTLEMENT_DECLINED" || rcv.got()[4].Type != domain.EventPaymentFailed {
		t.Errorf("settlement declined: %+v", got)
	}
	declined, _ := charge(t, base, "fake-processor-declined-visa-nonce", "5.00", "y")
	if _, err := s.SendWebhook(ctx, "dispute_opened", declined.LegacyID); !errors.Is(err, braintreefake.ErrInvalidState) {
		t.Errorf("dispute of a declined transaction: %v", err)
	}
	if _, err := s.SendWebhook(ctx, "subscription_charged_successfully", tx.LegacyID); !errors.Is(err, braintreefake.ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := s.SendWebhook(ctx, "dispute_opened", "nosuch"); !errors.Is(err, braintreefake.ErrNotFound) {
		t.Errorf("unknown transaction: %v", err)
	}
	if _, err := s.SendWebhook(ctx, "check", ""); err != nil || rcv.got()[5].ProviderType != "check" {
		t.Errorf("check notification: %v", err)
	}

	// A receiver that fails: the error says so, the delivery is recorded, the state changed.
	rcv.mu.Lock()
	rcv.status = http.StatusServiceUnavailable
	rcv.mu.Unlock()
	other, _ := charge(t, base, "fake-valid-nonce", "5.00", "z")
	failed, err := s.SendWebhook(ctx, "dispute_opened", other.LegacyID)
	if err == nil || len(failed.Deliveries) != 1 || failed.Deliveries[0].Status != 503 || failed.Deliveries[0].Error == "" {
		t.Errorf("failed delivery: %+v, %v", failed, err)
	}
	if got, _ := s.Transaction(other.LegacyID); got.Dispute == nil {
		t.Error("the dispute must exist although its notification was not acknowledged")
	}
	if all := s.Notifications(); len(all) != 6 || all[0].ID != n.ID || len(all[0].Deliveries) != 2 {
		t.Errorf("Notifications() = %d, first %+v", len(all), all[0])
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	tx, _ := charge(t, base, "fake-valid-nonce", "10.00", "admin/1")
	other, _ := charge(t, base, "fake-valid-nonce", "11.00", "admin/2")

	if code, body := call("POST", "/__cartflow/faults", `{"operation":"chargePaymentMethod","count":1,"status":502}`); code != 201 || !strings.Contains(body, `"status":502`) {
		t.Fatalf("POST faults: %d %s", code, body)
	}
	if code, body := call("POST", "/__cartflow/faults", `{"stauts":502}`); code != 400 {
		t.Errorf("a misspelt fault: %d %s", code, body)
	}
	if status, _ := gql(t, base, chargeQuery, map[string]any{"input": map[string]any{"paymentMethodId": "fake-valid-nonce", "transaction": map[string]any{"amount": "1.00"}}}); status != 502 {
		t.Errorf("charge with the admin's fault: %d", status)
	}
	if code, body := call("POST", "/__cartflow/transactions/"+tx.LegacyID+"/settle", ""); code != 200 || !strings.Contains(body, `"status":"SETTLED"`) {
		t.Errorf("settle: %d %s", code, body)
	}
	if code, _ := call("POST", "/__cartflow/transactions/nosuch/settle", ""); code != 404 {
		t.Errorf("settle unknown: %d", code)
	}
	if code, body := call("POST", "/__cartflow/settle", ""); code != 200 || body != `{"settled":["`+other.LegacyID+`"]}`+"\n" {
		t.Errorf("settle all: %d %s", code, body)
	}
	if code, _ := call("POST", "/__cartflow/transactions/"+tx.LegacyID+"/webhooks", `{"kind":"dispute_opened"}`); code != 409 {
		t.Errorf("webhook without a destination: %d", code)
	}
	rcv := newReceiver(t)
	s.SetWebhook(rcv.url, publicKey, privateKey)
	code, body := call("POST", "/__cartflow/transactions/"+tx.LegacyID+"/webhooks", `{"kind":"dispute_opened"}`)
	var n braintreefake.Notification
	if err := json.Unmarshal([]byte(body), &n); code != 201 || err != nil || n.Kind != "dispute_opened" || len(rcv.got()) != 1 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	if code, _ := call("POST", "/__cartflow/notifications/"+n.ID+"/resend", ""); code != 201 || len(rcv.got()) != 2 {
		t.Errorf("resend: %d, receiver has %d", code, len(rcv.got()))
	}
	if code, _ := call("POST", "/__cartflow/transactions/"+tx.LegacyID+"/webhooks", `{"kind":"nonsense"}`); code != 422 {
		t.Errorf("unknown kind: %d", code)
	}

	code, body = call("GET", "/__cartflow/state", "")
	var state struct {
		Transactions  []braintreefake.Transaction
		Notifications []braintreefake.Notification
		WebhookURL    string `json:"webhook_url"`
	}
	if err := json.Unmarshal([]byte(body), &state); code != 200 || err != nil || len(state.Transactions) != 2 ||
		state.Transactions[0].Dispute == nil || len(state.Notifications) != 1 || state.WebhookURL != rcv.url {
		t.Errorf("state: %d %s", code, body)
	}
	if code, body = call("GET", "/__cartflow/requests", ""); code != 200 || !strings.Contains(body, `"fault":"status Bad Gateway"`) {
		t.Errorf("requests: %d %s", code, body)
	}
	if code, _ = call("DELETE", "/__cartflow/requests", ""); code != 204 || len(s.Requests()) != 0 {
		t.Errorf("DELETE requests: %d, %d left", code, len(s.Requests()))
	}
	s.AddFault(braintreefake.Fault{Status: 500})
	if code, _ = call("DELETE", "/__cartflow/faults", ""); code != 204 || len(s.Faults()) != 0 {
		t.Errorf("DELETE faults: %d, %d left", code, len(s.Faults()))
	}
	if code, _ = call("GET", "/__cartflow/nothing", ""); code != 404 {
		t.Errorf("unknown admin endpoint: %d", code)
	}
}
