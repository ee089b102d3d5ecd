package braintree_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
)

// The two-step charge, as the gateway makes it: authorizePaymentMethod, then captureTransaction.

const authorizeQuery = `mutation Authorize($input: AuthorizePaymentMethodInput!) {
  authorizePaymentMethod(input: $input) { transaction { id legacyId orderId status amount { value currencyCode } } }
}`

const captureQuery = `mutation Capture($input: CaptureTransactionInput!) {
  captureTransaction(input: $input) { transaction { id legacyId orderId status amount { value currencyCode } } }
}`

// authorize authorizes nonce for amount under orderID and returns the transaction, or the error tag.
func authorize(t *testing.T, base, nonce, amount, orderID string) (txJSON, string) {
	t.Helper()
	_, res := gql(t, base, authorizeQuery, map[string]any{"input": map[string]any{
		"paymentMethodId": nonce, "transaction": map[string]any{"amount": amount, "orderId": orderID},
	}})
	if tag := res.errorTag(); tag != "" {
		return txJSON{}, tag
	}
	var data struct{ Transaction txJSON }
	res.field(t, "authorizePaymentMethod", &data)
	return data.Transaction, ""
}

// capture captures the transaction (amount "" for all of it) and returns it, or the error tag.
func capture(t *testing.T, base, txID, amount string) (txJSON, string) {
	t.Helper()
	input := map[string]any{"transactionId": txID}
	if amount != "" {
		input["transaction"] = map[string]any{"amount": amount}
	}
	_, res := gql(t, base, captureQuery, map[string]any{"input": input})
	if tag := res.errorTag(); tag != "" {
		return txJSON{}, tag
	}
	var data struct{ Transaction txJSON }
	res.field(t, "captureTransaction", &data)
	return data.Transaction, ""
}

func TestAuthorizeThenCapture(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	tx, tag := authorize(t, base, "tokencc_authorize", "25.00", "auth/1")
	if tag != "" || tx.Status != "AUTHORIZED" || tx.Amount.Value != "25.00" {
		t.Fatalf("authorize = %+v %s, want AUTHORIZED for 25.00", tx, tag)
	}
	// An authorization consumes the nonce like a charge does.
	if _, tag := authorize(t, base, "tokencc_authorize", "25.00", "auth/1"); tag != "VALIDATION:91564" {
		t.Errorf("authorizing a consumed nonce: %q, want VALIDATION:91564", tag)
	}
	// Nothing is refundable before the capture: a void is the only way back.
	if _, res := gql(t, base, refundQuery, map[string]any{"input": map[string]any{"transactionId": tx.ID}}); res.errorTag() != "VALIDATION:91506" {
		t.Errorf("refund of an authorization: %+v", res.Errors)
	}
	if _, tag := capture(t, base, tx.ID, "25.01"); tag != "VALIDATION:91522" {
		t.Errorf("capture beyond the authorization: %q, want VALIDATION:91522", tag)
	}
	if _, tag := capture(t, base, tx.ID, "10.005"); tag != "VALIDATION:81503" {
		t.Errorf("capture with more decimals than the currency: %q, want VALIDATION:81503", tag)
	}
	if got, _ := s.Transaction(tx.LegacyID); got.Status != "AUTHORIZED" || got.Amount != "25.00" {
		t.Fatalf("refused captures changed the transaction: %+v", got)
	}
	// By legacy id, as Braintree's mutations accept either id.
	captured, tag := capture(t, base, tx.LegacyID, "")
	if tag != "" || captured.Status != "SUBMITTED_FOR_SETTLEMENT" || captured.Amount.Value != "25.00" {
		t.Fatalf("capture = %+v %s", captured, tag)
	}
	if _, tag := capture(t, base, tx.ID, ""); tag != "VALIDATION:91507" {
		t.Errorf("a second capture: %q, want VALIDATION:91507", tag)
	}
	got, _ := s.Transaction(tx.LegacyID)
	if strings.Join(got.StatusHistory, ",") != "SUBMITTED_FOR_SETTLEMENT,AUTHORIZED" {
		t.Errorf("history = %v", got.StatusHistory)
	}

	// A partial capture leaves the transaction at the captured amount, as Braintree does.
	part, _ := authorize(t, base, "fake-valid-nonce", "30.00", "auth/2")
	if c, tag := capture(t, base, part.ID, "12.50"); tag != "" || c.Amount.Value != "12.50" || c.Status != "SUBMITTED_FOR_SETTLEMENT" {
		t.Errorf("partial capture = %+v %s, want 12.50 submitted for settlement", c, tag)
	}
	// A declined authorization is final and cannot be captured.
	declined, _ := authorize(t, base, "fake-processor-declined-visa-nonce", "30.00", "auth/3")
	if declined.Status != "PROCESSOR_DECLINED" {
		t.Fatalf("declined authorization = %+v", declined)
	}
	if _, tag := capture(t, base, declined.ID, ""); tag != "VALIDATION:91507" {
		t.Errorf("capture of a declined authorization: %q", tag)
	}
	if _, tag := capture(t, base, "nosuch", ""); tag != "NOT_FOUND" {
		t.Errorf("capture of an unknown transaction: %q", tag)
	}
	// An authorization that is voided holds nothing and cannot be captured later.
	voided, _ := authorize(t, base, "fake-valid-nonce", "5.00", "auth/4")
	if _, res := gql(t, base, reverseQuery, map[string]any{"input": map[string]any{"transactionId": voided.ID}}); len(res.Errors) > 0 {
		t.Fatalf("void: %+v", res.Errors)
	}
	if _, tag := capture(t, base, voided.ID, ""); tag != "VALIDATION:91507" {
		t.Errorf("capture of a voided authorization: %q", tag)
	}
}

// A captured transaction is a charge like any other: it settles and its webhooks fire.
func TestCapturedTransactionsSendWebhooks(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	rcv := newReceiver(t)
	s.SetWebhook(rcv.url, publicKey, privateKey)
	tx, _ := authorize(t, base, "fake-valid-nonce", "62.00", "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b/0123456789abcdef0123456789abcdef")
	ctx := context.Background()
	// An authorization has taken no money: it cannot be disputed, nor settled.
	if _, err := s.SendWebhook(ctx, "dispute_opened", tx.LegacyID); err == nil {
		t.Error("a dispute of an uncaptured authorization was sent")
	}
	if _, tag := capture(t, base, tx.ID, ""); tag != "" {
		t.Fatal(tag)
	}
	for _, kind := range []string{"transaction_settled", "dispute_opened"} {
		if _, err := s.SendWebhook(ctx, kind, tx.LegacyID); err != nil {
			t.Fatalf("SendWebhook(%s) of a captured transaction: %v", kind, err)
		}
	}
	events := rcv.got()
	if len(events) != 2 || events[0].Type != domain.EventPaymentSucceeded || events[0].PaymentRef != tx.LegacyID ||
		events[1].Type != domain.EventDisputeOpened || events[1].Amount != 6200 {
		t.Errorf("events = %+v", events)
	}
}

const pagedSearchQuery = `query Search($input: TransactionSearchInput!, $after: String) {
  transactions(input: $input, first: 2, after: $after) {
    edges { cursor node { legacyId createdAt status } }
    pageInfo { hasNextPage endCursor }
  }
}`

// searchPages runs a search through all its pages of two and returns the legacy ids.
func searchPages(t *testing.T, base string, input map[string]any) []string {
	t.Helper()
	var ids []string
	var after any
	for page := 0; ; page++ {
		_, res := gql(t, base, pagedSearchQuery, map[string]any{"input": input, "after": after})
		if len(res.Errors) > 0 {
			t.Fatalf("search %v: %+v", input, res.Errors)
		}
		var data struct {
			Edges []struct {
				Cursor string
				Node   struct{ LegacyID, CreatedAt string }
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
		res.field(t, "transactions", &data)
		for _, e := range data.Edges {
			if _, err := time.Parse(time.RFC3339Nano, e.Node.CreatedAt); err != nil {
				t.Errorf("createdAt %q: %v", e.Node.CreatedAt, err)
			}
			ids = append(ids, e.Node.LegacyID)
		}
		if !data.PageInfo.HasNextPage {
			return ids
		}
		if page > 10 || data.PageInfo.EndCursor == "" {
			t.Fatalf("pages never end: %+v", data.PageInfo)
		}
		after = data.PageInfo.EndCursor
	}
}

func TestSearchByCreationTimeAndStatusInPages(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	old, _ := charge(t, base, "fake-valid-nonce", "1.00", "window/old")
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC()
	var captured []string
	for i := range 3 {
		tx, _ := charge(t, base, "fake-valid-nonce", "2.00", "window/"+string(rune('a'+i)))
		captured = append(captured, tx.LegacyID)
	}
	authorized, _ := authorize(t, base, "fake-valid-nonce", "3.00", "window/authorized")
	charge(t, base, "fake-processor-declined-visa-nonce", "4.00", "window/declined")
	if err := s.Settle(captured[1]); err != nil {
		t.Fatal(err)
	}
	took := []any{"SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED"}
	got := searchPages(t, base, map[string]any{
		"createdAt": map[string]any{"greaterThanOrEqualTo": since.Format(time.RFC3339Nano)},
		"status":    map[string]any{"in": took},
	})
	if strings.Join(got, ",") != strings.Join(captured, ",") {
		t.Errorf("captured since %s = %v, want %v (not %s, authorized %s nor the decline)", since, got, captured, old.LegacyID, authorized.LegacyID)
	}
	until := searchPages(t, base, map[string]any{
		"createdAt": map[string]any{"lessThanOrEqualTo": since.Format(time.RFC3339Nano)},
	})
	if strings.Join(until, ",") != old.LegacyID {
		t.Errorf("created until %s = %v, want only %s", since, until, old.LegacyID)
	}
	if got := searchPages(t, base, map[string]any{"status": map[string]any{"is": "AUTHORIZED"}}); strings.Join(got, ",") != authorized.LegacyID {
		t.Errorf("status is AUTHORIZED = %v", got)
	}
	_, res := gql(t, base, pagedSearchQuery, map[string]any{"input": map[string]any{"createdAt": map[string]any{"greaterThanOrEqualTo": "yesterday"}}})
	if len(res.Errors) != 1 {
		t.Errorf("a search by a malformed timestamp must be refused: %+v", res)
	}
}

// While the search lags, new and changed transactions are missing from every search, and
// node reads them at once; the lag ends by itself for old enough writes, or when turned off.
func TestSearchLag(t *testing.T) {
	t.Parallel()
	s, base := start(t)
	before, _ := charge(t, base, "fake-valid-nonce", "1.00", "lag/before")
	time.Sleep(400 * time.Millisecond)
	// Older than the lag, so found; the search below runs well within the lag of the next write.
	s.SetSearchLag(300 * time.Millisecond)
	fresh, _ := authorize(t, base, "fake-valid-nonce", "2.00", "lag/fresh")
	all := map[string]any{"orderId": map[string]any{"startsWith": "lag/"}}
	if got := searchPages(t, base, all); strings.Join(got, ",") != before.LegacyID {
		t.Errorf("search with a lag = %v, want only the old %s", got, before.LegacyID)
	}
	_, res := gql(t, base, `query Node($id: ID!) { node(id: $id) { ... on Transaction { legacyId status } } }`, map[string]any{"id": fresh.ID})
	var node txJSON
	res.field(t, "node", &node)
	if node.LegacyID != fresh.LegacyID || node.Status != "AUTHORIZED" {
		t.Errorf("node during the lag = %+v, want it read at once", node)
	}
	// A change hides an old transaction too, until the index catches up.
	if err := s.Settle(before.LegacyID); err != nil {
		t.Fatal(err)
	}
	if got := searchPages(t, base, all); len(got) != 0 {
		t.Errorf("search after a change = %v, want nothing", got)
	}

	// The admin API sets it, reads it and turns it off.
	call := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, base+"/__cartflow/search_lag", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, body := call("GET", ""); code != 200 || !strings.Contains(body, `"lag_ms":300`) {
		t.Errorf("GET search_lag: %d %s", code, body)
	}
	if code, _ := call("POST", `{"lag_ms":-1}`); code != 400 {
		t.Errorf("a negative lag: %d", code)
	}
	if code, body := call("POST", `{"lag_ms":50}`); code != 200 || s.SearchLag() != 50*time.Millisecond {
		t.Errorf("POST search_lag 50: %d %s, lag %v", code, body, s.SearchLag())
	}
	time.Sleep(60 * time.Millisecond)
	if got := searchPages(t, base, all); len(got) != 2 {
		t.Errorf("search after the lag passed = %v, want both", got)
	}
	if code, _ := call("POST", `{"lag_ms":0}`); code != 200 || s.SearchLag() != 0 {
		t.Errorf("POST search_lag 0: %d, lag %v", code, s.SearchLag())
	}
}
