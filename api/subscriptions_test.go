package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// sub1 is the id of testSubscription; sub2 is a well-formed id that no subscription has.
const (
	sub1 = "5b0c1f7e-3a2d-4c8b-9e1f-0a1b2c3d4e5f"
	sub2 = "0f9e8d7c-6b5a-4e3d-8c1b-a09f8e7d6c5b"
)

// subOwner is the user who owns testSubscription; ownerSession is their live session in the
// fake store, which changeRequest sends.
const (
	subOwner     = "8a1d2c3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
	ownerSession = "owner-session-0123456789abcdefghijklmnopqrs"
)

// Secrets of the test subscription that no response may carry.
const (
	subEmail       = "ann@example.com"
	subCustomerRef = "cus_hidden4711"
	subPMRef       = "pm_hidden4711"
)

// cet is a time zone other than UTC, as a database session might use.
var cet = time.FixedZone("CET", 3600)

// testSubscription is an active monthly plan that started with a trial.
func testSubscription() store.Subscription {
	start := time.Date(2025, 3, 15, 10, 0, 0, 0, cet)
	trialEnd := time.Date(2025, 3, 1, 10, 0, 0, 0, cet)
	return store.Subscription{
		ID: sub1, UserID: subOwner, Email: subEmail, Name: "Ann Lee",
		SKU: "pro-monthly", PlanName: "Pro plan", OrderID: "ord_1", Status: domain.SubscriptionActive, Provider: "stripe",
		CustomerRef: subCustomerRef, PaymentMethodRef: subPMRef, PriceAmount: 1500, Currency: "eur", BillingInterval: "month",
		CurrentPeriodStart: start, CurrentPeriodEnd: start.AddDate(0, 1, 0), TrialEnd: &trialEnd,
	}
}

// testHistory is testSubscription's history: a trial, then a paid period.
func testHistory() []store.SubscriptionEvent {
	return []store.SubscriptionEvent{
		{To: domain.SubscriptionTrialing, Reason: "purchased in checkout", At: time.Date(2025, 2, 15, 10, 0, 0, 0, cet)},
		{From: domain.SubscriptionTrialing, To: domain.SubscriptionActive, Reason: "renewed", At: time.Date(2025, 3, 15, 10, 0, 1, 0, cet)},
	}
}

// subscriptionBody is a subscription as the storefront reads it.
type subscriptionBody struct {
	ID                 string     `json:"id"`
	Status             string     `json:"status"`
	SKU                string     `json:"sku"`
	PlanName           string     `json:"plan_name"`
	PriceAmount        int64      `json:"price_amount"`
	Currency           string     `json:"currency"`
	BillingInterval    string     `json:"billing_interval"`
	CurrentPeriodStart time.Time  `json:"current_period_start"`
	CurrentPeriodEnd   time.Time  `json:"current_period_end"`
	TrialEnd           *time.Time `json:"trial_end"`
	CancelAtPeriodEnd  bool       `json:"cancel_at_period_end"`
	CanceledAt         *time.Time `json:"canceled_at"`
	DunningAttempts    int        `json:"dunning_attempts"`
	History            []struct {
		From   *string   `json:"from"`
		To     string    `json:"to"`
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
	} `json:"history"`
}

// subscriptionKeys is every key of a subscription response, each always present.
var subscriptionKeys = []string{"billing_interval", "cancel_at_period_end", "canceled_at", "currency", "current_period_end",
	"current_period_start", "dunning_attempts", "history", "id", "plan_name", "price_amount", "sku", "status", "trial_end"}

// subscriptionEnvelope is the body of a subscription response.
type subscriptionEnvelope struct {
	Subscription *subscriptionBody `json:"subscription"`
	Change       *struct {
		Action string `json:"action"`
		Status string `json:"status"`
	} `json:"change"`
}

// decodeSubscription checks that rec is a subscription response with the given status that has
// exactly the documented keys and none of the customer's secrets, and returns it.
func decodeSubscription(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) subscriptionEnvelope {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status = %d, want %d; body: %s", rec.Code, wantStatus, rec.Body)
	}
	assertJSONContentType(t, rec)
	var env subscriptionEnvelope
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("decode subscription response: %v; body: %s", err, rec.Body)
	}
	if env.Subscription == nil {
		t.Fatalf("response has no subscription: %s", rec.Body)
	}
	var raw struct {
		Subscription map[string]json.RawMessage `json:"subscription"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Subscription {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, subscriptionKeys) {
		t.Errorf("subscription keys = %v, want %v", keys, subscriptionKeys)
	}
	for _, secret := range []string{subEmail, subCustomerRef, subPMRef, "customer_ref", "payment_method_ref", "email", "user_id", "order_id"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("subscription response reveals %q: %s", secret, rec.Body)
		}
	}
	return env
}

// assertTestSubscription checks the fields of testSubscription that no change touches.
func assertTestSubscription(t *testing.T, got *subscriptionBody) {
	t.Helper()
	want := testSubscription()
	if got.ID != sub1 || got.SKU != want.SKU || got.PlanName != "Pro plan" || got.PriceAmount != 1500 || got.Currency != "eur" ||
		got.BillingInterval != "month" || got.DunningAttempts != 0 {
		t.Errorf("subscription = %+v, want %s pro-monthly Pro plan 1500 eur month", got, sub1)
	}
	if !got.CurrentPeriodStart.Equal(want.CurrentPeriodStart) || !got.CurrentPeriodEnd.Equal(want.CurrentPeriodEnd) ||
		got.TrialEnd == nil || !got.TrialEnd.Equal(*want.TrialEnd) {
		t.Errorf("period %v to %v, trial end %v; want %v to %v, trial end %v", got.CurrentPeriodStart, got.CurrentPeriodEnd,
			got.TrialEnd, want.CurrentPeriodStart, want.CurrentPeriodEnd, *want.TrialEnd)
	}
	if got.CurrentPeriodStart.Location() != time.UTC {
		t.Errorf("current_period_start %v is not in UTC", got.CurrentPeriodStart)
	}
}

// changeCall is one ExecuteWorkflow as the BFF sent it.
type changeCall struct {
	opts         client.StartWorkflowOptions
	workflowType any
	args         []any
	input        workflows.SubscriptionChangeInput
	deadline     time.Duration // time left on the call's context; 0 when it had no deadline
}

// changeBehavior is how the mocked Temporal answers a subscription change.
type changeBehavior struct {
	// describe answers DescribeWorkflowExecution; nil answers NotFound, as for a key never used.
	describe func(id string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	// startErr, when set, makes ExecuteWorkflow fail with it.
	startErr error
	// get answers the run's Get with the change's result or an error.
	get func(ctx context.Context, in workflows.SubscriptionChangeInput, res *workflows.SubscriptionChangeResult) error
}

// changeRecorder collects the ExecuteWorkflow calls.
type changeRecorder = recorder[changeCall]

// newRun is a workflow run whose Get is answered by get with in.
func newRun(t *testing.T, in workflows.SubscriptionChangeInput,
	get func(context.Context, workflows.SubscriptionChangeInput, *workflows.SubscriptionChangeResult) error) *mocks.WorkflowRun {
	run := mocks.NewWorkflowRun(t)
	run.On("Get", mock.Anything, mock.Anything).Return(func(ctx context.Context, ptr any) error {
		res, ok := ptr.(*workflows.SubscriptionChangeResult)
		if !ok {
			return fmt.Errorf("result pointer is %T, want *workflows.SubscriptionChangeResult", ptr)
		}
		return get(ctx, in, res)
	}).Once()
	return run
}

// expectChange makes the mocked Temporal accept subscription changes and answer them with b.
func (e *testEnv) expectChange(t *testing.T, b changeBehavior) *changeRecorder {
	t.Helper()
	rec := &changeRecorder{}
	e.temporal.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").
		Return(func(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			if b.describe == nil {
				return nil, serviceerror.NewNotFound("workflow not found")
			}
			return b.describe(id)
		}).Maybe() // the tests count the calls they expect
	e.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
			call := changeCall{opts: opts, workflowType: wf, args: args}
			if len(args) == 1 {
				call.input, _ = args[0].(workflows.SubscriptionChangeInput)
			}
			if dl, ok := ctx.Deadline(); ok {
				call.deadline = time.Until(dl)
			}
			rec.add(call)
			if b.startErr != nil {
				return nil, b.startErr
			}
			return newRun(t, call.input, b.get), nil
		}).Maybe()
	return rec
}

// applyChange is a workflow that makes the change in the fake read model, as the worker would
// in PostgreSQL, and reports the subscription's new status.
func applyChange(fs *fakeStore) func(context.Context, workflows.SubscriptionChangeInput, *workflows.SubscriptionChangeResult) error {
	return func(_ context.Context, in workflows.SubscriptionChangeInput, res *workflows.SubscriptionChangeResult) error {
		sub, history := testSubscription(), testHistory()
		switch in.Action {
		case workflows.ChangeCancelNow:
			at := time.Date(2025, 3, 20, 9, 30, 0, 0, cet)
			sub.Status, sub.CanceledAt = domain.SubscriptionCanceled, &at
			history = append(history, store.SubscriptionEvent{From: domain.SubscriptionActive, To: domain.SubscriptionCanceled,
				Reason: "canceled by the customer", At: at})
		case workflows.ChangeCancelAtPeriodEnd:
			sub.CancelAtPeriodEnd = true
		case workflows.ChangeResume:
			sub.CancelAtPeriodEnd = false
		case workflows.ChangePaymentMethod:
			sub.PaymentMethodRef = "pm_new_hidden"
		default:
			return fmt.Errorf("unexpected action %q", in.Action)
		}
		fs.putSubscription(sub, history...)
		*res = workflows.SubscriptionChangeResult{SubscriptionID: in.SubscriptionID, Status: sub.Status}
		return nil
	}
}

// refuseChange is a workflow that refuses the change with code and message.
func refuseChange(code, message string) func(context.Context, workflows.SubscriptionChangeInput, *workflows.SubscriptionChangeResult) error {
	return func(_ context.Context, in workflows.SubscriptionChangeInput, res *workflows.SubscriptionChangeResult) error {
		*res = workflows.SubscriptionChangeResult{SubscriptionID: in.SubscriptionID, FailureCode: code, FailureMessage: message}
		return nil
	}
}

// changeRequest builds a change request; an empty key sends no Idempotency-Key.
func changeRequest(method, path, key, body string) *http.Request {
	req := withSession(httptest.NewRequest(method, path, strings.NewReader(body)), ownerSession)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req
}

// memoDescribe answers a describe with a workflow whose memo holds fingerprint.
func memoDescribe(t *testing.T, fingerprint string) func(string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return func(string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
		return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
			Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoChangeRequest: p}},
		}}, nil
	}
}

func TestGetSubscription(t *testing.T) {
	t.Parallel()

	t.Run("found", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		env.store.putSubscription(testSubscription(), testHistory()...)

		// Upper case is the same UUID.
		for _, id := range []string{sub1, strings.ToUpper(sub1)} {
			rec := serve(env.handler, changeRequest(http.MethodGet, "/api/v1/me/subscriptions/"+id, "", ""))
			got := decodeSubscription(t, rec, http.StatusOK).Subscription
			assertTestSubscription(t, got)
			if got.Status != "active" || got.CancelAtPeriodEnd || got.CanceledAt != nil {
				t.Errorf("subscription = %+v, want active, not canceled", got)
			}
			if len(got.History) != 2 {
				t.Fatalf("history = %+v, want 2 events", got.History)
			}
			first, second := got.History[0], got.History[1]
			if first.From != nil || first.To != "trialing" || first.Reason != "purchased in checkout" ||
				!first.At.Equal(testHistory()[0].At) || first.At.Location() != time.UTC {
				t.Errorf("first event = %+v (from %v), want null -> trialing, purchased in checkout, at %v in UTC", first, first.From, testHistory()[0].At)
			}
			if second.From == nil || *second.From != "trialing" || second.To != "active" || second.Reason != "renewed" {
				t.Errorf("second event = %+v, want trialing -> active, renewed", second)
			}
		}
		env.store.assertCalls(t, "SubscriptionByID", 2)
		env.assertTemporalUntouched(t)
	})

	t.Run("no trial, no history yet", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		sub := testSubscription()
		sub.TrialEnd = nil
		env.store.putSubscription(sub)
		rec := serve(env.handler, changeRequest(http.MethodGet, "/api/v1/me/subscriptions/"+sub1, "", ""))
		got := decodeSubscription(t, rec, http.StatusOK).Subscription
		if got.TrialEnd != nil || got.History == nil || len(got.History) != 0 {
			t.Errorf("trial_end = %v, history = %#v; want null and []", got.TrialEnd, got.History)
		}
		if !strings.Contains(rec.Body.String(), `"history":[]`) || !strings.Contains(rec.Body.String(), `"trial_end":null`) {
			t.Errorf("body lacks an empty history or a null trial_end: %s", rec.Body)
		}
	})

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			id      string
			queries bool
		}{
			{id: "nope"},
			{id: strings.ReplaceAll(sub1, "-", "")},    // no dashes
			{id: sub1 + "0"},                           // too long
			{id: sub1[:35]},                            // too short
			{id: strings.Replace(sub1, "5", "g", 1)},   // not hex
			{id: "%27%20OR%201%3D1--"},                 // ' OR 1=1--
			{id: "chk_" + strings.Repeat("a", 26)},     // a checkout id
			{id: sub2, queries: true},                  // well formed, unknown
			{id: strings.ToUpper(sub2), queries: true}, // the same, upper case
			{id: "00000000-0000-0000-0000-000000000000", queries: true},
		}
		for _, tc := range cases {
			t.Run(tc.id, func(t *testing.T) {
				env := newTestEnv(t)
				env.store.putSubscription(testSubscription(), testHistory()...)
				rec := serve(env.handler, changeRequest(http.MethodGet, "/api/v1/me/subscriptions/"+tc.id, "", ""))
				if got := decodeError(t, rec, http.StatusNotFound); got.Code != "subscription_not_found" {
					t.Errorf("GET %s: error code = %q, want subscription_not_found", tc.id, got.Code)
				}
				env.store.assertCalls(t, "SubscriptionByID", onceIf(tc.queries))
				env.store.assertCalls(t, "SubscriptionHistory", 0)
				env.assertTemporalUntouched(t)
			})
		}
	})

	t.Run("read model fails", func(t *testing.T) {
		t.Parallel()
		for _, which := range []string{"subscription", "history"} {
			env := newTestEnv(t)
			env.store.putSubscription(testSubscription(), testHistory()...)
			secret := errors.New("secret pq://user:pw@host")
			if which == "subscription" {
				env.store.subByIDErr = secret
			} else {
				env.store.historyErr = secret
			}
			rec := serve(env.handler, changeRequest(http.MethodGet, "/api/v1/me/subscriptions/"+sub1, "", ""))
			if got := decodeError(t, rec, http.StatusInternalServerError); got.Code != "internal_error" {
				t.Errorf("%s fails: error code = %q, want internal_error", which, got.Code)
			}
			if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "pw@") {
				t.Errorf("%s fails: response leaks the internal error: %s", which, rec.Body)
			}
		}
	})
}

func TestChangeSubscriptionStartsWorkflow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		method     string
		path       string
		body       string
		wantInput  workflows.SubscriptionChangeInput
		wantStatus string
		check      func(t *testing.T, got *subscriptionBody)
	}{
		{name: "cancel now", method: http.MethodPost, path: "/cancel", body: `{"at_period_end": false}`,
			wantInput:  workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangeCancelNow},
			wantStatus: "canceled",
			check: func(t *testing.T, got *subscriptionBody) {
				want := time.Date(2025, 3, 20, 9, 30, 0, 0, cet)
				if got.Status != "canceled" || got.CanceledAt == nil || !got.CanceledAt.Equal(want) || got.CancelAtPeriodEnd {
					t.Errorf("subscription = %+v, want canceled at %v", got, want)
				}
				if n := len(got.History); n != 3 || *got.History[2].From != "active" || got.History[2].To != "canceled" ||
					got.History[2].Reason != "canceled by the customer" {
					t.Errorf("history = %+v, want the cancellation last", got.History)
				}
			}},
		{name: "cancel at period end", method: http.MethodPost, path: "/cancel", body: `{"at_period_end":true}`,
			wantInput:  workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangeCancelAtPeriodEnd},
			wantStatus: "active",
			check: func(t *testing.T, got *subscriptionBody) {
				if got.Status != "active" || !got.CancelAtPeriodEnd || got.CanceledAt != nil {
					t.Errorf("subscription = %+v, want active, canceling at period end", got)
				}
			}},
		{name: "resume without a body", method: http.MethodPost, path: "/resume",
			wantInput:  workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangeResume},
			wantStatus: "active",
			check: func(t *testing.T, got *subscriptionBody) {
				if got.Status != "active" || got.CancelAtPeriodEnd {
					t.Errorf("subscription = %+v, want active, not canceling", got)
				}
			}},
		{name: "resume with an empty object", method: http.MethodPost, path: "/resume", body: " {} ",
			wantInput:  workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangeResume},
			wantStatus: "active"},
		{name: "payment method", method: http.MethodPut, path: "/payment-method", body: `{"provider":"stripe","token":"pm_card_mastercard"}`,
			wantInput: workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangePaymentMethod,
				Payment: workflows.Payment{Provider: "stripe", Token: "pm_card_mastercard"}},
			wantStatus: "active"},
		{name: "payment method as a legacy token", method: http.MethodPut, path: "/payment-method", body: `{"provider":"stripe","token":"tok_visa"}`,
			wantInput: workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangePaymentMethod,
				Payment: workflows.Payment{Provider: "stripe", Token: "tok_visa"}},
			wantStatus: "active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			// The read model starts out as before the change: the answer must be read after it.
			env.store.putSubscription(testSubscription(), testHistory()...)
			starts := env.expectChange(t, changeBehavior{get: applyChange(env.store)})

			rec := serve(env.handler, changeRequest(tc.method, "/api/v1/me/subscriptions/"+sub1+tc.path, testKey, tc.body))

			body := decodeSubscription(t, rec, http.StatusOK)
			assertTestSubscription(t, body.Subscription)
			if tc.check != nil {
				tc.check(t, body.Subscription)
			}
			if body.Change == nil || body.Change.Action != tc.wantInput.Action || body.Change.Status != tc.wantStatus {
				t.Errorf("change = %+v, want {%s %s}", body.Change, tc.wantInput.Action, tc.wantStatus)
			}

			calls := starts.all()
			if len(calls) != 1 {
				t.Fatalf("ExecuteWorkflow called %d times, want 1", len(calls))
			}
			call := calls[0]
			wantID := workflows.SubscriptionChangeWorkflowID(sub1, testKey)
			if call.opts.ID != wantID || call.opts.TaskQueue != workflows.TaskQueue {
				t.Errorf("workflow ID, task queue = %q, %q, want %q, %q", call.opts.ID, call.opts.TaskQueue, wantID, workflows.TaskQueue)
			}
			if call.opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
				t.Errorf("conflict policy = %v, want USE_EXISTING", call.opts.WorkflowIDConflictPolicy)
			}
			if call.opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
				t.Errorf("reuse policy = %v, want REJECT_DUPLICATE", call.opts.WorkflowIDReusePolicy)
			}
			if !call.opts.WorkflowExecutionErrorWhenAlreadyStarted {
				t.Error("WorkflowExecutionErrorWhenAlreadyStarted is false: a finished change would not be told apart")
			}
			if fp, _ := call.opts.Memo[memoChangeRequest].(string); !hexHash.MatchString(fp) || fp != changeFingerprint(tc.wantInput) {
				t.Errorf("memo %s = %v, want the request's fingerprint", memoChangeRequest, call.opts.Memo[memoChangeRequest])
			}
			if tc.wantInput.Payment.Token != "" && strings.Contains(fmt.Sprint(call.opts.Memo), tc.wantInput.Payment.Token) {
				t.Errorf("memo %v holds the payment token", call.opts.Memo)
			}
			if call.workflowType != workflows.SubscriptionChangeWorkflowType || len(call.args) != 1 {
				t.Errorf("workflow = %v with %d args, want %q with the input", call.workflowType, len(call.args), workflows.SubscriptionChangeWorkflowType)
			}
			if !reflect.DeepEqual(call.input, tc.wantInput) {
				t.Errorf("input = %+v, want %+v", call.input, tc.wantInput)
			}
			if call.deadline <= 0 || call.deadline > 200*time.Millisecond {
				t.Errorf("ExecuteWorkflow deadline %v away, want within CheckoutWait (200ms)", call.deadline)
			}
			env.temporal.AssertCalled(t, "DescribeWorkflowExecution", mock.Anything, wantID, "")
			env.store.assertCalls(t, "SubscriptionByID", 2) // exists? and the answer
		})
	}
}

// TestChangeSubscriptionRepeated covers a request sent again with the same key: it gets the
// same change, whether the first is still running or finished, and a different change is refused.
func TestChangeSubscriptionRepeated(t *testing.T) {
	t.Parallel()
	cancelNow := workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangeCancelNow}
	wantID := workflows.SubscriptionChangeWorkflowID(sub1, testKey)

	t.Run("finished change is answered by its result", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		env.store.putSubscription(testSubscription(), testHistory()...)
		alreadyStarted := serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already finished", "", "run-7")
		starts := env.expectChange(t, changeBehavior{describe: memoDescribe(t, changeFingerprint(cancelNow)), startErr: alreadyStarted})
		env.temporal.On("GetWorkflow", mock.Anything, wantID, "run-7").Return(newRun(t, cancelNow, applyChange(env.store))).Once()

		rec := serve(env.handler, changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":false}`))

		body := decodeSubscription(t, rec, http.StatusOK)
		if body.Subscription.Status != "canceled" || body.Change == nil || body.Change.Action != workflows.ChangeCancelNow {
			t.Errorf("answer = %+v, change %+v; want the canceled subscription", body.Subscription, body.Change)
		}
		if n := len(starts.all()); n != 1 {
			t.Errorf("ExecuteWorkflow called %d times, want 1", n)
		}
	})

	t.Run("running change is joined", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		env.store.putSubscription(testSubscription(), testHistory()...)
		starts := env.expectChange(t, changeBehavior{describe: memoDescribe(t, changeFingerprint(cancelNow)), get: applyChange(env.store)})

		rec := serve(env.handler, changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":false}`))

		if body := decodeSubscription(t, rec, http.StatusOK); body.Subscription.Status != "canceled" {
			t.Errorf("subscription = %+v, want canceled", body.Subscription)
		}
		if calls := starts.all(); len(calls) != 1 || calls[0].opts.ID != wantID {
			t.Errorf("ExecuteWorkflow calls = %+v, want one for %s", calls, wantID)
		}
		env.temporal.AssertNotCalled(t, "GetWorkflow", mock.Anything, mock.Anything, mock.Anything)
	})

	differentChanges := []struct {
		name, method, path, body string
	}{
		{"cancel at period end", http.MethodPost, "/cancel", `{"at_period_end":true}`},
		{"resume", http.MethodPost, "/resume", ``},
		{"payment method", http.MethodPut, "/payment-method", `{"provider":"stripe","token":"pm_card_visa"}`},
	}
	for _, dc := range differentChanges {
		t.Run("key of a cancel reused for "+dc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.putSubscription(testSubscription(), testHistory()...)
			env.expectChange(t, changeBehavior{describe: memoDescribe(t, changeFingerprint(cancelNow))})

			rec := serve(env.handler, changeRequest(dc.method, "/api/v1/me/subscriptions/"+sub1+dc.path, testKey, dc.body))

			if got := decodeError(t, rec, http.StatusUnprocessableEntity); got.Code != "idempotency_key_reused" || got.Field != "Idempotency-Key" {
				t.Errorf("error = %+v, want idempotency_key_reused on Idempotency-Key", got)
			}
			env.temporal.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
		})
	}

	t.Run("payment method key reused with another token", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		env.store.putSubscription(testSubscription(), testHistory()...)
		first := workflows.SubscriptionChangeInput{SubscriptionID: sub1, Action: workflows.ChangePaymentMethod,
			Payment: workflows.Payment{Provider: "stripe", Token: "pm_card_visa"}}
		env.expectChange(t, changeBehavior{describe: memoDescribe(t, changeFingerprint(first))})

		rec := serve(env.handler, changeRequest(http.MethodPut, "/api/v1/me/subscriptions/"+sub1+"/payment-method", testKey,
			`{"provider":"stripe","token":"pm_card_mastercard"}`))

		if got := decodeError(t, rec, http.StatusUnprocessableEntity); got.Code != "idempotency_key_reused" {
			t.Errorf("error code = %q, want idempotency_key_reused", got.Code)
		}
		env.temporal.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	})
}

func TestChangeSubscriptionRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, path, body string
		code, message            string
		wantStatus               int
		wantCode                 string
		wantMessage              string
	}{
		{name: "resume of a canceled subscription", method: http.MethodPost, path: "/resume",
			code: "subscription_state", message: "the subscription cannot make this change",
			wantStatus: http.StatusConflict, wantCode: "subscription_state", wantMessage: "the subscription cannot make this change"},
		{name: "cancel of a canceled subscription", method: http.MethodPost, path: "/cancel", body: `{"at_period_end":true}`,
			code: "subscription_canceled", message: "the subscription is canceled",
			wantStatus: http.StatusConflict, wantCode: "subscription_canceled", wantMessage: "the subscription is canceled"},
		{name: "subscription gone", method: http.MethodPost, path: "/cancel", body: `{"at_period_end":false}`,
			code: "subscription_not_found", message: "no such subscription",
			wantStatus: http.StatusNotFound, wantCode: "subscription_not_found"},
		{name: "card declined", method: http.MethodPut, path: "/payment-method", body: `{"provider":"stripe","token":"pm_card_chargeDeclined"}`,
			code: "card_declined", message: "Your card was declined.",
			wantStatus: http.StatusPaymentRequired, wantCode: "card_declined", wantMessage: "Your card was declined."},
		{name: "expired card", method: http.MethodPut, path: "/payment-method", body: `{"provider":"stripe","token":"pm_card_chargeDeclinedExpiredCard"}`,
			code: "expired_card", message: "Your card has expired.",
			wantStatus: http.StatusPaymentRequired, wantCode: "expired_card", wantMessage: "Your card has expired."},
		{name: "payment refusal without a message", method: http.MethodPut, path: "/payment-method", body: `{"provider":"stripe","token":"pm_card_visa"}`,
			code:       "subscriptions_unsupported",
			wantStatus: http.StatusPaymentRequired, wantCode: "subscriptions_unsupported"},
		{name: "action the workflow does not know", method: http.MethodPost, path: "/resume",
			code: "invalid_action", message: "unknown subscription change resume",
			wantStatus: http.StatusInternalServerError, wantCode: "internal_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.putSubscription(testSubscription(), testHistory()...)
			env.expectChange(t, changeBehavior{get: refuseChange(tc.code, tc.message)})

			rec := serve(env.handler, changeRequest(tc.method, "/api/v1/me/subscriptions/"+sub1+tc.path, testKey, tc.body))

			got := decodeError(t, rec, tc.wantStatus)
			if got.Code != tc.wantCode {
				t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
			}
			if tc.wantMessage != "" && got.Message != tc.wantMessage {
				t.Errorf("error message = %q, want %q", got.Message, tc.wantMessage)
			}
			if tc.wantStatus == http.StatusInternalServerError && strings.Contains(rec.Body.String(), tc.message) {
				t.Errorf("internal refusal echoed: %s", rec.Body)
			}
			env.store.assertCalls(t, "SubscriptionByID", 1) // a refusal is not re-read
		})
	}
}

func TestChangeSubscriptionWaitRunsOut(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.store.putSubscription(testSubscription(), testHistory()...)
	env.expectChange(t, changeBehavior{get: func(ctx context.Context, _ workflows.SubscriptionChangeInput, _ *workflows.SubscriptionChangeResult) error {
		<-ctx.Done()
		return ctx.Err()
	}})

	start := time.Now()
	rec := serve(env.handler, changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":false}`))
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("answered after %v, want after CheckoutWait (200ms) and promptly", elapsed)
	}

	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body: %s", rec.Code, rec.Body)
	}
	want := "/api/v1/me/subscriptions/" + sub1
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !reflect.DeepEqual(body, map[string]string{"status_url": want}) {
		t.Errorf("body = %s (%v), want {\"status_url\":%q}", rec.Body, err, want)
	}
	if loc := rec.Header().Get("Location"); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
}

func TestChangeSubscriptionTemporalFails(t *testing.T) {
	t.Parallel()
	secret := errors.New("secret internal detail pq://user:pw@host")
	cases := []struct {
		name       string
		behavior   changeBehavior
		wantStatus int
		wantCode   string
		wantStart  bool
	}{
		{name: "describe fails", behavior: changeBehavior{describe: func(string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			return nil, serviceerror.NewUnavailable("connection refused " + secret.Error())
		}}, wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable"},
		{name: "start fails", behavior: changeBehavior{startErr: secret},
			wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable", wantStart: true},
		{name: "result cannot be read", behavior: changeBehavior{get: func(context.Context, workflows.SubscriptionChangeInput, *workflows.SubscriptionChangeResult) error {
			return secret
		}}, wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable", wantStart: true},
		{name: "workflow failed", behavior: changeBehavior{get: func(context.Context, workflows.SubscriptionChangeInput, *workflows.SubscriptionChangeResult) error {
			return &temporal.WorkflowExecutionError{}
		}}, wantStatus: http.StatusInternalServerError, wantCode: "change_failed", wantStart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.putSubscription(testSubscription(), testHistory()...)
			starts := env.expectChange(t, tc.behavior)

			rec := serve(env.handler, changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/resume", testKey, ""))

			if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
				t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
			}
			for _, leak := range []string{"secret", "pw@", "pq://", "connection refused"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("response leaks %q: %s", leak, rec.Body)
				}
			}
			if n := len(starts.all()); (n == 1) != tc.wantStart {
				t.Errorf("ExecuteWorkflow called %d times, want started = %v", n, tc.wantStart)
			}
		})
	}
}

func TestChangeSubscriptionRejectsBadInput(t *testing.T) {
	t.Parallel()
	cancelPath := "/api/v1/me/subscriptions/" + sub1 + "/cancel"
	resumePath := "/api/v1/me/subscriptions/" + sub1 + "/resume"
	pmPath := "/api/v1/me/subscriptions/" + sub1 + "/payment-method"
	validPM := `{"provider":"stripe","token":"pm_card_visa"}`
	oversized := `{"provider":"stripe","token":"pm_` + strings.Repeat("a", 70_000) + `"}`

	cases := []struct {
		name          string
		method        string
		path          string
		key           string // testKey when empty
		omitKey       bool
		body          string
		unknownLength bool
		wantStatus    int
		wantCode      string
		wantField     string
		queries       bool // the subscription is looked up (it passed every other check)
	}{
		// The subscription id.
		{name: "cancel of a non-UUID id", method: http.MethodPost, path: "/api/v1/me/subscriptions/nope/cancel",
			body: `{"at_period_end":true}`, wantStatus: 404, wantCode: "subscription_not_found"},
		{name: "resume of a non-UUID id", method: http.MethodPost, path: "/api/v1/me/subscriptions/" + sub1 + "x/resume",
			wantStatus: 404, wantCode: "subscription_not_found"},
		{name: "payment method of a non-UUID id", method: http.MethodPut, path: "/api/v1/me/subscriptions/1/payment-method",
			body: validPM, wantStatus: 404, wantCode: "subscription_not_found"},
		{name: "unknown subscription", method: http.MethodPost, path: "/api/v1/me/subscriptions/" + sub2 + "/cancel",
			body: `{"at_period_end":false}`, wantStatus: 404, wantCode: "subscription_not_found", queries: true},

		// The Idempotency-Key.
		{name: "cancel without idempotency key", method: http.MethodPost, path: cancelPath, omitKey: true, body: `{"at_period_end":false}`,
			wantStatus: 400, wantCode: "missing_idempotency_key", wantField: "Idempotency-Key"},
		{name: "resume without idempotency key", method: http.MethodPost, path: resumePath, omitKey: true,
			wantStatus: 400, wantCode: "missing_idempotency_key", wantField: "Idempotency-Key"},
		{name: "payment method without idempotency key", method: http.MethodPut, path: pmPath, omitKey: true, body: validPM,
			wantStatus: 400, wantCode: "missing_idempotency_key", wantField: "Idempotency-Key"},
		{name: "too short idempotency key", method: http.MethodPost, path: cancelPath, key: "abc", body: `{"at_period_end":false}`,
			wantStatus: 400, wantCode: "invalid_idempotency_key", wantField: "Idempotency-Key"},
		{name: "idempotency key with unsafe characters", method: http.MethodPost, path: resumePath, key: "key with spaces/and slashes",
			wantStatus: 400, wantCode: "invalid_idempotency_key", wantField: "Idempotency-Key"},

		// The cancel body.
		{name: "cancel without at_period_end", method: http.MethodPost, path: cancelPath, body: `{}`,
			wantStatus: 422, wantCode: "missing_field", wantField: "at_period_end"},
		{name: "cancel with null at_period_end", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":null}`,
			wantStatus: 422, wantCode: "missing_field", wantField: "at_period_end"},
		{name: "cancel with a string at_period_end", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":"true"}`,
			wantStatus: 400, wantCode: "invalid_type", wantField: "at_period_end"},
		{name: "cancel with a number at_period_end", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":1}`,
			wantStatus: 400, wantCode: "invalid_type", wantField: "at_period_end"},
		{name: "cancel with an unknown field", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":true,"refund":true}`,
			wantStatus: 400, wantCode: "unknown_field", wantField: "refund"},
		{name: "cancel with an array body", method: http.MethodPost, path: cancelPath, body: `[true]`,
			wantStatus: 400, wantCode: "invalid_type", wantField: "body"},
		{name: "cancel with malformed json", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "cancel without a body", method: http.MethodPost, path: cancelPath, body: ``,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "cancel with data after the object", method: http.MethodPost, path: cancelPath, body: `{"at_period_end":true} {}`,
			wantStatus: 400, wantCode: "malformed_json"},

		// The resume body.
		{name: "resume with a field", method: http.MethodPost, path: resumePath, body: `{"at_period_end":false}`,
			wantStatus: 400, wantCode: "unknown_field", wantField: "at_period_end"},
		{name: "resume with garbage", method: http.MethodPost, path: resumePath, body: `resume please`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "resume with an oversized body", method: http.MethodPost, path: resumePath, body: oversized, unknownLength: true,
			wantStatus: 413, wantCode: "body_too_large"},

		// The payment method body.
		{name: "card number instead of a token", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":"` + cardLike + `"}`,
			wantStatus: 422, wantCode: "invalid_token", wantField: "token"},
		{name: "card number with a token prefix", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":"pm_` + cardLike + ` 12/30"}`,
			wantStatus: 422, wantCode: "invalid_token", wantField: "token"},
		{name: "card number in an extra field", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":"pm_card_visa","number":"` + cardLike + `"}`,
			wantStatus: 400, wantCode: "unknown_field", wantField: "number"},
		{name: "empty token", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":""}`,
			wantStatus: 422, wantCode: "invalid_token", wantField: "token"},
		{name: "missing token", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe"}`,
			wantStatus: 422, wantCode: "invalid_token", wantField: "token"},
		{name: "unknown provider", method: http.MethodPut, path: pmPath, body: `{"provider":"bitcoin","token":"pm_card_visa"}`,
			wantStatus: 422, wantCode: "unknown_provider", wantField: "provider"},
		{name: "token of another provider", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":"fake-valid-nonce"}`,
			wantStatus: 422, wantCode: "token_provider_mismatch", wantField: "token"},
		{name: "token is a number", method: http.MethodPut, path: pmPath, body: `{"provider":"stripe","token":4242}`,
			wantStatus: 400, wantCode: "invalid_type", wantField: "token"},
		{name: "checkout-shaped payment object", method: http.MethodPut, path: pmPath, body: `{"payment":` + validPM + `}`,
			wantStatus: 400, wantCode: "unknown_field", wantField: "payment"},
		{name: "oversized payment method with content length", method: http.MethodPut, path: pmPath, body: oversized,
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "oversized payment method without content length", method: http.MethodPut, path: pmPath, body: oversized, unknownLength: true,
			wantStatus: 413, wantCode: "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.putSubscription(testSubscription(), testHistory()...)
			req := changeRequest(tc.method, tc.path, requestKey(tc.key, tc.omitKey), tc.body)
			if tc.unknownLength {
				req = withUnknownLength(req, tc.body)
			}
			rec := serve(env.handler, req)

			env.assertBadInputRefused(t, rec, tc.wantStatus, tc.wantCode, tc.wantField)
			env.temporal.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
			env.store.assertCalls(t, "SubscriptionByID", onceIf(tc.queries))
		})
	}
}

func TestChangeSubscriptionReadModelFails(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.store.subByIDErr = errors.New("secret pq://user:pw@host")

	rec := serve(env.handler, changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":true}`))

	if got := decodeError(t, rec, http.StatusInternalServerError); got.Code != "internal_error" {
		t.Errorf("error code = %q, want internal_error", got.Code)
	}
	if strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("response leaks the internal error: %s", rec.Body)
	}
	env.assertTemporalUntouched(t)
}

func TestSubscriptionRouting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method, path string
	}{
		{http.MethodDelete, "/api/v1/me/subscriptions/" + sub1},
		{http.MethodPost, "/api/v1/me/subscriptions/" + sub1},
		{http.MethodGet, "/api/v1/me/subscriptions/" + sub1 + "/cancel"},
		{http.MethodPut, "/api/v1/me/subscriptions/" + sub1 + "/cancel"},
		{http.MethodPost, "/api/v1/me/subscriptions/" + sub1 + "/payment-method"},
	}
	for _, tc := range cases {
		env := newTestEnv(t)
		env.store.putSubscription(testSubscription())
		rec := serve(env.handler, changeRequest(tc.method, tc.path, testKey, `{"at_period_end":false}`))
		if got := decodeError(t, rec, http.StatusMethodNotAllowed); got.Code != "method_not_allowed" {
			t.Errorf("%s %s: error code = %q, want method_not_allowed", tc.method, tc.path, got.Code)
		}
		env.assertTemporalUntouched(t)
	}
}

// TestCheckoutAnswersAuthorizeNothing: no checkout answer carries the subscription id, which
// once authorized changes, and the public read carries no email and no client secret, which
// only the customer's own POST gets.
func TestCheckoutAnswersAuthorizeNothing(t *testing.T) {
	t.Parallel()
	planBody := checkoutJSON(func(m map[string]any) { m["items"] = items(line("pro-monthly", 1)) })
	const secret = "pi_123_secret_456"
	env := newTestEnv(t)
	env.expectUpdateWithStart(t, workflowBehavior{get: func(_ context.Context, in workflows.CheckoutInput, st *workflows.CheckoutState) error {
		*st = workflows.CheckoutState{CheckoutID: in.CheckoutID, OrderID: "ord_1", Status: domain.OrderRequiresAction,
			Amount: 1500, Currency: "EUR", SubscriptionID: sub1, Action: &workflows.PaymentAction{ClientSecret: secret, Type: "use_stripe_sdk"}}
		return nil
	}})
	rec := postCheckout(env.handler, testKey, planBody)
	_, keys := decodeCheckoutBody(t, rec, http.StatusCreated)
	if _, ok := keys["subscription_id"]; ok || !strings.Contains(rec.Body.String(), secret) {
		t.Errorf("POST answer = %s; want the action's client secret and no subscription_id", rec.Body)
	}

	order := store.Order{ID: "ord_1", CheckoutID: checkout1, IdempotencyKey: testKey, RequestHash: requestHashOf(t, planBody),
		Status: domain.OrderRequiresAction, TotalAmount: 1500, Currency: "EUR", Email: subEmail, Name: "Ann Lee", WorkflowID: "checkout-" + testKey,
		Lines: []store.PricedLine{{LineNo: 1, SKU: "pro-monthly", Name: "Pro plan", Quantity: 1, UnitAmount: 1500, LineAmount: 1500}}}
	env.store.addOrder(order)
	env.store.putSubscription(testSubscription())
	rec = get(env.handler, "/api/v1/checkouts/"+checkout1)
	_, keys = decodeCheckoutBody(t, rec, http.StatusOK)
	for _, k := range []string{"subscription_id", "action", "email", "customer_email"} {
		if _, ok := keys[k]; ok {
			t.Errorf("GET answer has %q: %s", k, rec.Body)
		}
	}
	for _, leak := range []string{sub1, subEmail, secret} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("GET answer leaks %q: %s", leak, rec.Body)
		}
	}
	env.store.assertCalls(t, "SubscriptionByOrder", 0)
}
