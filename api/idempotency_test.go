package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"

	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// fakeKeys is an in-memory idempotency_keys table with the store's semantics; claimErr makes
// every claim fail, as when Postgres is down.
type fakeKeys struct {
	keysMu   sync.Mutex
	keys     map[string]*fakeKey
	claimErr error
}

type fakeKey struct {
	req         store.IdempotencyRequest
	lockedUntil time.Time // zero: not locked
	resp        *store.IdempotentResponse
}

func (f *fakeKeys) ClaimIdempotencyKey(_ context.Context, req store.IdempotencyRequest, lease time.Duration) (store.IdempotencyClaim, error) {
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	if f.claimErr != nil {
		return store.IdempotencyClaim{}, f.claimErr
	}
	if f.keys == nil {
		f.keys = map[string]*fakeKey{}
	}
	now := time.Now()
	k, ok := f.keys[req.Key]
	switch {
	case !ok:
		k = &fakeKey{req: req}
		f.keys[req.Key] = k
	case k.req != req:
		return store.IdempotencyClaim{Outcome: store.IdempotencyMismatch}, nil
	case k.resp != nil:
		return store.IdempotencyClaim{Outcome: store.IdempotencyReplay, Response: *k.resp}, nil
	case k.lockedUntil.After(now):
		return store.IdempotencyClaim{Outcome: store.IdempotencyInProgress, LockedUntil: k.lockedUntil, RetryAfter: k.lockedUntil.Sub(now)}, nil
	}
	k.lockedUntil = now.Add(lease)
	return store.IdempotencyClaim{Outcome: store.IdempotencyClaimed, LockedUntil: k.lockedUntil}, nil
}

func (f *fakeKeys) SaveIdempotentResponse(_ context.Context, key string, resp store.IdempotentResponse) error {
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	if k, ok := f.keys[key]; ok && k.resp == nil {
		resp.Body = bytes.Clone(resp.Body)
		k.resp, k.lockedUntil = &resp, time.Time{}
	}
	return nil
}

func (f *fakeKeys) ReleaseIdempotencyKey(_ context.Context, key string, lockedUntil time.Time) error {
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	if k, ok := f.keys[key]; ok && k.resp == nil && k.lockedUntil.Equal(lockedUntil) {
		k.lockedUntil = time.Time{}
	}
	return nil
}

func (f *fakeKeys) ForgetIdempotencyKey(_ context.Context, key string, lockedUntil time.Time) error {
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	if k, ok := f.keys[key]; ok && k.resp == nil && k.lockedUntil.Equal(lockedUntil) {
		delete(f.keys, key)
	}
	return nil
}

// keyState is what the fake table holds for key: whether it exists, whether it is locked, and
// the status of its stored answer (0 for none).
func (f *fakeKeys) keyState(key string) (exists, locked bool, status int) {
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	k, ok := f.keys[key]
	if !ok {
		return false, false, 0
	}
	if k.resp != nil {
		status = k.resp.Status
	}
	return true, !k.lockedUntil.IsZero(), status
}

// memoCheckout describes a running checkout workflow whose memo names checkout2.
func memoCheckout(t *testing.T) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(checkout2)
	if err != nil {
		t.Fatal(err)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{workflows.MemoCheckoutID: p}},
	}}
}

// The same key with the same checkout, even written differently, gets the first answer byte
// for byte, and the workflow is asked once.
func TestIdempotentCheckoutReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	calls := env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
	first := postCheckout(env.handler, testKey, checkoutJSON(nil))
	if first.Code != http.StatusCreated || first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.Code, first.Header(), first.Body)
	}
	// The same request with other white space and key order.
	reordered := `{ "payment": {"token":"pm_card_visa", "provider":"stripe"}, "name":"Ann Lee",
		"items":[{"quantity":2,"sku":"tshirt-m"},{"sku":"mug","quantity":1}], "email":"ann@example.com" }`
	for _, body := range []string{checkoutJSON(nil), reordered} {
		again := postCheckout(env.handler, testKey, body)
		if again.Code != first.Code || !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
			t.Fatalf("repeat: %d %s, want the first answer %d %s", again.Code, again.Body, first.Code, first.Body)
		}
		if again.Header().Get("Idempotent-Replayed") != "true" || again.Header().Get("Content-Type") != first.Header().Get("Content-Type") {
			t.Fatalf("repeat headers %v", again.Header())
		}
		if again.Header().Get("X-Request-Id") == first.Header().Get("X-Request-Id") {
			t.Fatal("the replay carries the first request's id")
		}
	}
	if n := len(calls.all()); n != 1 {
		t.Fatalf("Update-With-Start called %d times, want once", n)
	}
}

// A key belongs to its first request: another body, another endpoint or another resource gets
// 422 idempotency_key_reused, and the handler does not run.
func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	env, _ := paymentsEnv(t)
	env.store.putSubscription(testSubscription(), testHistory()...)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	const otherOrderID = "0c6f2a8e-3b1d-4f7a-9e5c-6d4b3a2f1e0d"
	env.store.addOrder(store.Order{ID: otherOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	checkouts := env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
	var refunds []workflows.RefundRequest
	env.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.RefundWorkflowType, mock.Anything).
		Return(func(_ context.Context, _ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			in := args[0].(workflows.RefundRequest)
			refunds = append(refunds, in)
			run := mocks.NewWorkflowRun(t)
			run.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, ptr any) error {
				*ptr.(*workflows.RefundOutcome) = workflows.RefundOutcome{OrderID: in.OrderID, Status: workflows.RefundSucceeded, Amount: in.Amount}
				return nil
			}).Once()
			return run, nil
		})

	if rec := postCheckout(env.handler, testKey, checkoutJSON(nil)); rec.Code != http.StatusCreated {
		t.Fatalf("checkout: %d %s", rec.Code, rec.Body)
	}
	const refundKey = "refund-key-reuse-1"
	if rec := serve(env.handler, refundRequestTo(paidOrderID, refundKey, testStaffKey, `{"amount":2000}`)); rec.Code != http.StatusCreated {
		t.Fatalf("refund: %d %s", rec.Code, rec.Body)
	}
	for name, req := range map[string]*http.Request{
		"another cart":          newCheckoutRequest(testKey, checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 3)) })),
		"a subscription cancel": changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":true}`),
		"a refund":              refundRequestTo(paidOrderID, testKey, testStaffKey, `{"amount":2000}`),
		"another amount":        refundRequestTo(paidOrderID, refundKey, testStaffKey, `{"amount":2500}`),
		"the whole rest":        refundRequestTo(paidOrderID, refundKey, testStaffKey, ``),
		"another order":         refundRequestTo(otherOrderID, refundKey, testStaffKey, `{"amount":2000}`),
	} {
		t.Run(name, func(t *testing.T) {
			got := decodeError(t, serve(env.handler, req), http.StatusUnprocessableEntity)
			if got.Code != "idempotency_key_reused" || got.Field != "Idempotency-Key" {
				t.Fatalf("error %+v, want idempotency_key_reused on Idempotency-Key", got)
			}
		})
	}
	if n := len(checkouts.all()); n != 1 {
		t.Errorf("Update-With-Start called %d times, want once", n)
	}
	if len(refunds) != 1 || refunds[0].Amount != 2000 {
		t.Errorf("refund workflows started %+v, want one of 2000", refunds)
	}
	env.temporal.AssertNotCalled(t, "DescribeWorkflowExecution", mock.Anything, mock.Anything, mock.Anything)
}

// While the first request under a key runs, a repeat gets 409 request_in_progress with
// Retry-After; once the first has answered, a repeat gets that answer.
func TestIdempotentRequestInProgress(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.server.cfg.CheckoutWait = 5 * time.Second
	env.handler = env.server.routes()
	started, finish := make(chan struct{}), make(chan struct{})
	calls := env.expectUpdateWithStart(t, workflowBehavior{get: func(ctx context.Context, in workflows.CheckoutInput, st *workflows.CheckoutState) error {
		close(started)
		<-finish
		return completedCheckout(ctx, in, st)
	}})
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- postCheckout(env.handler, testKey, checkoutJSON(nil)) }()
	<-started
	for range 3 {
		rec := postCheckout(env.handler, testKey, checkoutJSON(nil))
		if got := decodeError(t, rec, http.StatusConflict); got.Code != "request_in_progress" || got.Field != "Idempotency-Key" {
			t.Fatalf("repeat while running: %+v", got)
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Fatal("409 request_in_progress without Retry-After")
		}
	}
	close(finish)
	first := <-done
	if first.Code != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	again := postCheckout(env.handler, testKey, checkoutJSON(nil))
	if again.Code != http.StatusCreated || !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
		t.Fatalf("repeat after: %d %s", again.Code, again.Body)
	}
	if n := len(calls.all()); n != 1 {
		t.Fatalf("Update-With-Start called %d times, want once", n)
	}
}

// Answers that are not final leave the key to its request without an answer, so that a repeat
// runs the handler again (and joins the workflow the key started); an invalid request leaves no
// key at all, so that it can be corrected under the same key.
func TestIdempotencyKeyReleasedWhenTheAnswerIsNotFinal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		behavior workflowBehavior
		status   int
	}{
		{"202 while the outcome is pending", workflowBehavior{get: waitForever}, http.StatusAccepted},
		{"503 when Temporal is down", workflowBehavior{startErr: func(context.Context) error { return errors.New("connection refused") }}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			calls := env.expectUpdateWithStart(t, tc.behavior)
			env.temporal.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").Return(memoCheckout(t), nil).Maybe()
			for i := range 2 {
				if rec := postCheckout(env.handler, testKey, checkoutJSON(nil)); rec.Code != tc.status {
					t.Fatalf("attempt %d: %d %s, want %d", i+1, rec.Code, rec.Body, tc.status)
				}
				if exists, locked, status := env.store.keyState(testKey); !exists || locked || status != 0 {
					t.Fatalf("attempt %d: key exists %v, locked %v, stored %d; want it kept, unlocked, unanswered", i+1, exists, locked, status)
				}
			}
			if n := len(calls.all()); n != 2 {
				t.Fatalf("Update-With-Start called %d times, want once per attempt", n)
			}
			if got := decodeError(t, postCheckout(env.handler, testKey, checkoutJSON(func(m map[string]any) { m["name"] = "Bob" })),
				http.StatusUnprocessableEntity); got.Code != "idempotency_key_reused" {
				t.Fatalf("another request under the released key: %+v", got)
			}
		})
	}

	t.Run("invalid input forgets the key", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		calls := env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
		bad := checkoutJSON(func(m map[string]any) { m["email"] = "not-an-email" })
		if got := decodeError(t, postCheckout(env.handler, testKey, bad), http.StatusUnprocessableEntity); got.Code != "invalid_email" {
			t.Fatalf("invalid email: %+v", got)
		}
		if exists, _, _ := env.store.keyState(testKey); exists {
			t.Fatal("an invalid request left its key behind")
		}
		if rec := postCheckout(env.handler, testKey, checkoutJSON(nil)); rec.Code != http.StatusCreated {
			t.Fatalf("the corrected request under the same key: %d %s", rec.Code, rec.Body)
		}
		if _, _, status := env.store.keyState(testKey); status != http.StatusCreated || len(calls.all()) != 1 {
			t.Fatalf("stored %d after %d starts, want 201 after one", status, len(calls.all()))
		}
	})
}

// A refusal that the endpoint decided (here a subscription whose state refuses the change) is
// the request's final answer: stored and replayed, and the workflow is not asked again.
func TestIdempotentRefusalIsReplayed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.store.putSubscription(testSubscription(), testHistory()...)
	calls := env.expectChange(t, changeBehavior{get: refuseChange("subscription_state", "nothing to resume")})
	path := "/api/v1/me/subscriptions/" + sub1 + "/resume"
	first := serve(env.handler, changeRequest(http.MethodPost, path, testKey, ""))
	if first.Code != http.StatusConflict {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	again := serve(env.handler, changeRequest(http.MethodPost, path, testKey, ""))
	if again.Code != http.StatusConflict || !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat: %d %v %s", again.Code, again.Header(), again.Body)
	}
	if n := len(calls.all()); n != 1 {
		t.Fatalf("change workflow started %d times, want once", n)
	}
}

// When the key cannot be checked, nothing runs and the client is told to retry: 503 with Retry-After.
func TestIdempotencyStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.store.claimErr = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	rec := postCheckout(env.handler, testKey, checkoutJSON(nil))
	if got := decodeError(t, rec, http.StatusServiceUnavailable); got.Code != errUnavailable.Code || strings.Contains(got.Message, "5432") {
		t.Fatalf("error %+v", got)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	env.assertTemporalUntouched(t)
}

func TestIdempotencyFingerprint(t *testing.T) {
	t.Parallel()
	const scope = "POST /api/v1/checkouts"
	same := [][]string{
		{`{"a":1,"b":[1,2],"c":{"x":"y","w":null}}`, " {\n\"c\":{\"w\":null, \"x\":\"y\"},\t\"b\":[1, 2],\"a\":1}\n"},
		{``, "  \n"},
		{`not json {`, `not json {`},
	}
	for _, pair := range same {
		if requestFingerprint(scope, []byte(pair[0])) != requestFingerprint(scope, []byte(pair[1])) {
			t.Errorf("%q and %q differ, want one fingerprint", pair[0], pair[1])
		}
	}
	different := [][2]string{
		{`{"amount":2000}`, `{"amount":2500}`},
		{`{"amount":2000}`, `{"amount":2000.0}`},
		{`{"amount":2000}`, `{"amount":"2000"}`},
		{`{"b":[1,2]}`, `{"b":[2,1]}`},
		{`{}`, ``},
		{`{"a":1}`, `{"a":1} trailing`},
		{"{\"n\":\"\xff\"}", "{\"n\":\"\xfe\"}"},
	}
	for _, pair := range different {
		if requestFingerprint(scope, []byte(pair[0])) == requestFingerprint(scope, []byte(pair[1])) {
			t.Errorf("%q and %q share a fingerprint", pair[0], pair[1])
		}
	}
	if requestFingerprint(scope, []byte(`{}`)) == requestFingerprint("POST /api/v1/orders/:id/refunds id=o", []byte(`{}`)) {
		t.Error("two scopes share a fingerprint")
	}
}

func TestIdempotencyFinalStatuses(t *testing.T) {
	t.Parallel()
	want := map[int]bool{200: true, 201: true, 202: false, 204: true, 400: true, 402: true, 404: true, 409: true,
		422: true, 429: false, 500: false, 502: false, 503: false}
	for status, final := range maps.All(want) {
		if finalStatus(status) != final {
			t.Errorf("finalStatus(%d) = %v, want %v", status, !final, final)
		}
	}
}
