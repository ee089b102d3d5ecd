//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/cartflow/cartflow/workflows"
)

// rawAnswer is an answer as the client received it, body bytes included.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

// sendKeyed makes a request with an Idempotency-Key and extra header pairs, and reads the whole answer.
func sendKeyed(t testing.TB, method, path, key, body string, header ...string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, dev.APIURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return rawAnswer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// errorCode is the error code of a JSON error answer, or "".
func (a rawAnswer) errorCode() string {
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.body, &env)
	return env.Error.Code
}

// paidPIs counts the PaymentIntents with money that the Stripe layer holds for a checkout key.
func paidPIs(key string) int {
	n := 0
	for _, pi := range chargesFor(key) {
		if pi.Status == "succeeded" && pi.Amount > 0 {
			n++
		}
	}
	return n
}

// executedRefunds counts the refunds the Stripe layer created (not replayed) under a refund workflow's key.
func executedRefunds(workflowID string) int {
	n := 0
	for _, r := range dev.StripeProxy.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/refunds" && r.IdempotencyKey == workflowID+"/refund" && !r.Replayed {
			n++
		}
	}
	return n
}

// The key-reuse matrix of a checkout: the same request gets the first answer byte for byte,
// another body or another endpoint gets 422 idempotency_key_reused, and nothing more is charged
// or written.
func TestIdempotencyKeyReuseMatrix(t *testing.T) {
	key := newKey(t)
	body := validBody(strings.ToLower(key)+"@example.com", "pm_card_visa")
	raw, _ := json.Marshal(body)
	first := sendKeyed(t, http.MethodPost, "/api/v1/checkouts", key, string(raw))
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first checkout: %d %v %s", first.status, first.header, first.body)
	}
	var res checkoutResp
	if err := json.Unmarshal(first.body, &res); err != nil || res.Status != "completed" {
		t.Fatalf("first checkout: %v %s", err, first.body)
	}

	// The same request, written with other white space, once and again.
	for i, repeat := range []string{string(raw), " \n" + strings.ReplaceAll(string(raw), ",", ", ") + "\n"} {
		again := sendKeyed(t, http.MethodPost, "/api/v1/checkouts", key, repeat)
		if again.status != first.status || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("repeat %d: %d %v %s\nwant the first answer %s", i, again.status, again.header, again.body, first.body)
		}
	}

	other := body
	other.Items = []item{{SKU: "mug-enamel", Quantity: 3}}
	otherRaw, _ := json.Marshal(other)
	for name, a := range map[string]rawAnswer{
		"another cart": sendKeyed(t, http.MethodPost, "/api/v1/checkouts", key, string(otherRaw)),
		"a refund":     sendKeyed(t, http.MethodPost, "/api/v1/orders/"+res.OrderID+"/refunds", key, `{"amount":1000}`, "Authorization", "Bearer "+staffKey),
	} {
		if a.status != http.StatusUnprocessableEntity || a.errorCode() != "idempotency_key_reused" {
			t.Errorf("%s under the checkout's key: %d %s, want 422 idempotency_key_reused", name, a.status, a.body)
		}
	}

	if n := paidPIs(key); n != 1 {
		t.Errorf("%d PaymentIntents with money for the key, want 1", n)
	}
	if n := executedCreates(key); n != 1 {
		t.Errorf("%d PaymentIntent creations executed, want 1", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); n != 1 {
		t.Errorf("%d orders for the key, want 1", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund'`, res.OrderID); n != 0 {
		t.Errorf("%d refunds in the ledger after a refund under the checkout's key", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM idempotency_keys WHERE key = $1 AND scope = 'POST /api/v1/checkouts'
		AND response_status = 201 AND locked_until IS NULL`, key); n != 1 {
		t.Errorf("the key's row: %d, want one with the stored 201", n)
	}
}

// Concurrent identical checkouts under one key run once: every answer is the first result or
// 409 request_in_progress, and exactly one workflow, order and paid PaymentIntent exist.
func TestIdempotentConcurrentCheckoutsRunOnce(t *testing.T) {
	key := newKey(t)
	raw, _ := json.Marshal(validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	const n = 8
	answers := make([]rawAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = sendKeyed(t, http.MethodPost, "/api/v1/checkouts", key, string(raw)) })
	}
	wg.Wait()

	var results [][]byte
	for i, a := range answers {
		switch {
		case a.status == http.StatusCreated:
			results = append(results, a.body)
		case a.status == http.StatusConflict && a.errorCode() == "request_in_progress" && a.header.Get("Retry-After") != "":
		default:
			t.Errorf("answer %d: %d %s, want 201 or 409 request_in_progress with Retry-After", i, a.status, a.body)
		}
	}
	if len(results) == 0 {
		t.Fatal("no request got the result")
	}
	for _, r := range results[1:] {
		if !bytes.Equal(r, results[0]) {
			t.Errorf("two different results under one key:\n%s\n%s", results[0], r)
		}
	}
	// After the first has answered, a retry gets its answer.
	if again := sendKeyed(t, http.MethodPost, "/api/v1/checkouts", key, string(raw)); again.status != http.StatusCreated || !bytes.Equal(again.body, results[0]) {
		t.Errorf("retry after the storm: %d %s", again.status, again.body)
	}
	if got := paidPIs(key); got != 1 {
		t.Errorf("%d PaymentIntents with money, want 1", got)
	}
	if got := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, key); got != 1 {
		t.Errorf("%d orders, want 1", got)
	}
	runs, err := temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowId = '" + workflows.CheckoutWorkflowID(key) + "'"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(runs.GetExecutions()); got > 1 {
		t.Errorf("%d checkout workflow runs, want 1", got)
	}
}

// A refund key is bound to its amount, and outlives the refund's workflow: after Temporal has
// forgotten the workflow (retention, here a delete), the same request gets the stored answer
// and never reaches the provider again.
func TestIdempotentRefundKeyOutlivesItsWorkflow(t *testing.T) {
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	refundKey := newKey(t)
	path := "/api/v1/orders/" + res.OrderID + "/refunds"
	auth := []string{"Authorization", "Bearer " + staffKey}
	first := sendKeyed(t, http.MethodPost, path, refundKey, `{"amount":2000}`, auth...)
	if first.status != http.StatusCreated {
		t.Fatalf("refund: %d %s", first.status, first.body)
	}
	if a := sendKeyed(t, http.MethodPost, path, refundKey, `{"amount":2500}`, auth...); a.status != http.StatusUnprocessableEntity || a.errorCode() != "idempotency_key_reused" {
		t.Fatalf("the refund key with another amount: %d %s, want 422 idempotency_key_reused", a.status, a.body)
	}

	workflowID := workflows.RefundWorkflowID(res.OrderID, refundKey)
	ctx := context.Background()
	desc, err := temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()},
	}); err != nil {
		t.Fatalf("delete the refund workflow: %v", err)
	}
	// The dev server deletes asynchronously, which takes it about half a minute.
	waitFor(t, "the refund workflow to be gone", 90*time.Second, func() bool {
		_, err := temporal.DescribeWorkflowExecution(ctx, workflowID, "")
		var notFound *serviceerror.NotFound
		return errors.As(err, &notFound)
	})

	again := sendKeyed(t, http.MethodPost, path, refundKey, `{"amount":2000}`, auth...)
	if again.status != first.status || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the refund again after its workflow is gone: %d %v %s\nwant the first answer %s", again.status, again.header, again.body, first.body)
	}
	if _, err := temporal.DescribeWorkflowExecution(ctx, workflowID, ""); err == nil {
		t.Error("the repeat started the refund workflow again")
	}
	if n := executedRefunds(workflowID); n != 1 {
		t.Errorf("%d refunds created at Stripe under the key, want 1", n)
	}
	for _, pi := range chargesFor(key) {
		if pi.AmountRefunded != 2000 {
			t.Errorf("Stripe shows %d refunded of %s, want 2000", pi.AmountRefunded, pi.ID)
		}
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund'`, res.OrderID); n != 1 {
		t.Errorf("%d refunds in the ledger, want 1", n)
	}
}
