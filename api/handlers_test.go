package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

var (
	hexHash   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	checkout1 = "chk_" + strings.Repeat("a", 26)
	checkout2 = "chk_" + strings.Repeat("b", 26)
)

func TestCreateCheckoutRejectsBadInput(t *testing.T) {
	t.Parallel()
	valid := checkoutJSON(nil)
	tooManyLines := make([]any, store.MaxCartLines+1)
	for i := range tooManyLines {
		tooManyLines[i] = line(fmt.Sprintf("sku-%02d", i), 1)
	}
	oversized := checkoutJSON(func(m map[string]any) { m["name"] = strings.Repeat("a", 70_000) })

	cases := []struct {
		name          string
		key           string // testKey when empty
		omitKey       bool
		body          string
		unknownLength bool // send the body without a Content-Length
		wantStatus    int
		wantCode      string
		wantField     string
		readsCatalog  bool // the failure is found only after the catalog lookup
	}{
		// Header and body framing.
		{name: "missing idempotency key", omitKey: true, body: valid,
			wantStatus: 400, wantCode: "missing_idempotency_key", wantField: "Idempotency-Key"},
		{name: "too short idempotency key", key: "abc", body: valid,
			wantStatus: 400, wantCode: "invalid_idempotency_key", wantField: "Idempotency-Key"},
		{name: "too long idempotency key", key: strings.Repeat("k", 101), body: valid,
			wantStatus: 400, wantCode: "invalid_idempotency_key", wantField: "Idempotency-Key"},
		{name: "idempotency key with unsafe characters", key: "key with spaces/and slashes", body: valid,
			wantStatus: 400, wantCode: "invalid_idempotency_key", wantField: "Idempotency-Key"},
		{name: "malformed json", body: `{"email": "ann@example.com",`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "empty body", body: "",
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "second object after the first", body: valid + ` {"email":"bob@example.com"}`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "garbage after the object", body: valid + ` trailing`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "stray closing brace after the object", body: valid + `}`,
			wantStatus: 400, wantCode: "malformed_json"},
		{name: "unknown top-level field", body: checkoutJSON(func(m map[string]any) { m["coupon"] = "FREE" }),
			wantStatus: 400, wantCode: "unknown_field", wantField: "coupon"},
		{name: "client-sent price is an unknown field",
			body:       checkoutJSON(func(m map[string]any) { m["items"] = items(map[string]any{"sku": "mug", "quantity": 1, "price": 1}) }),
			wantStatus: 400, wantCode: "unknown_field", wantField: "price"},
		{name: "quantity is a string", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", "2")) }),
			wantStatus: 400, wantCode: "invalid_type", wantField: "items.quantity"},
		{name: "quantity is fractional", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1.5)) }),
			wantStatus: 400, wantCode: "invalid_type", wantField: "items.quantity"},
		{name: "oversized body with content length", body: oversized,
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "oversized body without content length", body: oversized, unknownLength: true,
			wantStatus: 413, wantCode: "body_too_large"},

		// Validation without the database.
		{name: "invalid email", body: checkoutJSON(func(m map[string]any) { m["email"] = "ann@localhost" }),
			wantStatus: 422, wantCode: "invalid_email", wantField: "email"},
		{name: "email with display name", body: checkoutJSON(func(m map[string]any) { m["email"] = "Ann <ann@example.com>" }),
			wantStatus: 422, wantCode: "invalid_email", wantField: "email"},
		{name: "empty name", body: checkoutJSON(func(m map[string]any) { m["name"] = " \t " }),
			wantStatus: 422, wantCode: "invalid_name", wantField: "name"},
		{name: "empty items", body: checkoutJSON(func(m map[string]any) { m["items"] = items() }),
			wantStatus: 422, wantCode: "empty_cart", wantField: "items"},
		{name: "no items field", body: checkoutJSON(func(m map[string]any) { delete(m, "items") }),
			wantStatus: 422, wantCode: "empty_cart", wantField: "items"},
		{name: "too many lines", body: checkoutJSON(func(m map[string]any) { m["items"] = tooManyLines }),
			wantStatus: 422, wantCode: "too_many_items", wantField: "items"},
		{name: "quantity zero", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 0)) }),
			wantStatus: 422, wantCode: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "quantity negative", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", -1)) }),
			wantStatus: 422, wantCode: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "quantity 100", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 100)) }),
			wantStatus: 422, wantCode: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "quantity one million", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1_000_000)) }),
			wantStatus: 422, wantCode: "invalid_quantity", wantField: "items[0].quantity"},
		{name: "bad quantity on the second line", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line("tshirt-m", 0)) }),
			wantStatus: 422, wantCode: "invalid_quantity", wantField: "items[1].quantity"},
		{name: "missing sku", body: checkoutJSON(func(m map[string]any) { m["items"] = items(map[string]any{"quantity": 1}) }),
			wantStatus: 422, wantCode: "missing_sku", wantField: "items[0].sku"},
		{name: "unknown provider", body: checkoutJSON(func(m map[string]any) { m["payment"] = map[string]any{"provider": "bitcoin", "token": "pm_card_visa"} }),
			wantStatus: 422, wantCode: "unknown_provider", wantField: "payment.provider"},
		{name: "missing payment", body: checkoutJSON(func(m map[string]any) { delete(m, "payment") }),
			wantStatus: 422, wantCode: "invalid_token", wantField: "payment.token"},
		{name: "token of another provider", body: checkoutJSON(func(m map[string]any) { m["payment"] = map[string]any{"provider": "paypal", "token": "pm_card_visa"} }),
			wantStatus: 422, wantCode: "token_provider_mismatch", wantField: "payment.token"},
		{name: "card number instead of a token", body: checkoutJSON(func(m map[string]any) { m["payment"] = map[string]any{"provider": "stripe", "token": cardLike} }),
			wantStatus: 422, wantCode: "invalid_token", wantField: "payment.token"},
		{name: "empty token", body: checkoutJSON(func(m map[string]any) { m["payment"] = map[string]any{"provider": "stripe", "token": ""} }),
			wantStatus: 422, wantCode: "invalid_token", wantField: "payment.token"},

		// Validation against the catalog.
		{name: "unknown sku on the second line", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line("no-such-sku", 1)) }),
			wantStatus: 422, wantCode: "unknown_sku", wantField: "items[1].sku", readsCatalog: true},
		{name: "inactive product", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("poster-2019", 1)) }),
			wantStatus: 422, wantCode: "product_unavailable", wantField: "items[0].sku", readsCatalog: true},
		{name: "plan beside a product", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line("pro-monthly", 1)) }),
			wantStatus: 422, wantCode: "subscription_cart_invalid", wantField: "items[1].sku", readsCatalog: true},
		{name: "duplicate sku", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line("mug", 2)) }),
			wantStatus: 422, wantCode: "duplicate_sku", wantField: "items[1].sku", readsCatalog: true},
		{name: "mixed currencies", body: checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line("cap-us", 1)) }),
			wantStatus: 422, wantCode: "mixed_currency", wantField: "items[1].sku", readsCatalog: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			req := newCheckoutRequest(requestKey(tc.key, tc.omitKey), tc.body)
			if tc.unknownLength {
				req = withUnknownLength(req, tc.body)
			}
			rec := serve(env.handler, req)

			env.assertBadInputRefused(t, rec, tc.wantStatus, tc.wantCode, tc.wantField)
			env.store.assertCalls(t, "CheckoutByIdempotencyKey", 0) // a refused request never reaches the key lookup
			env.store.assertCalls(t, "ProductsBySKU", onceIf(tc.readsCatalog))
		})
	}
}

func TestCreateCheckoutCompleted(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	starts := env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
	body := checkoutJSON(nil)

	rec := postCheckout(env.handler, testKey, body)

	got, keys := decodeCheckoutBody(t, rec, http.StatusCreated)
	calls := starts.all()
	if len(calls) != 1 {
		t.Fatalf("Update-With-Start sent %d times, want 1", len(calls))
	}
	call := calls[0]
	in := call.input

	// The response.
	if !checkoutIDPattern.MatchString(in.CheckoutID) {
		t.Errorf("CheckoutID = %q, want chk_ and 26 base32 characters", in.CheckoutID)
	}
	if !regexp.MustCompile(`^chk_[a-z2-7]{26}$`).MatchString(got.CheckoutID) || got.CheckoutID != in.CheckoutID {
		t.Errorf("checkout_id = %q, want the workflow's %q", got.CheckoutID, in.CheckoutID)
	}
	if got.Status != "completed" || got.OrderID != "ord_1" || got.Amount != 6200 || got.Currency != "EUR" {
		t.Errorf("checkout = %+v, want completed ord_1 6200 EUR", got)
	}
	if want := "https://shop.example/orders/" + in.CheckoutID + "/confirmation"; got.RedirectURL != want {
		t.Errorf("redirect_url = %q, want %q", got.RedirectURL, want)
	}
	if want := "/api/v1/checkouts/" + in.CheckoutID; got.StatusURL != want {
		t.Errorf("status_url = %q, want %q", got.StatusURL, want)
	}
	if _, ok := keys["failure"]; ok {
		t.Errorf("a completed checkout has a failure: %s", rec.Body)
	}
	if h := rec.Header().Get("Idempotent-Replayed"); h != "" {
		t.Errorf("Idempotent-Replayed = %q on a fresh checkout, want none", h)
	}

	// The start operation.
	opts := call.op.opts
	if opts.ID != workflows.CheckoutWorkflowID(testKey) || opts.TaskQueue != workflows.TaskQueue {
		t.Errorf("workflow ID, task queue = %q, %q, want %q, %q", opts.ID, opts.TaskQueue, workflows.CheckoutWorkflowID(testKey), workflows.TaskQueue)
	}
	if opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Errorf("conflict policy = %v, want USE_EXISTING", opts.WorkflowIDConflictPolicy)
	}
	if opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
		t.Errorf("reuse policy = %v, want REJECT_DUPLICATE", opts.WorkflowIDReusePolicy)
	}
	if opts.Memo[workflows.MemoCheckoutID] != in.CheckoutID {
		t.Errorf("memo = %v, want %s = %q", opts.Memo, workflows.MemoCheckoutID, in.CheckoutID)
	}
	if call.op.workflowType != workflows.CheckoutWorkflowType || len(call.op.args) != 1 {
		t.Errorf("workflow = %v with %d args, want %q with the CheckoutInput", call.op.workflowType, len(call.op.args), workflows.CheckoutWorkflowType)
	}

	// The workflow input: what the client sent, a hash, and never a price.
	wantIn := workflows.CheckoutInput{
		CheckoutID: in.CheckoutID, IdempotencyKey: testKey, RequestHash: requestHashOf(t, body),
		Email: "ann@example.com", Name: "Ann Lee",
		Items:   []workflows.Item{{SKU: "tshirt-m", Quantity: 2}, {SKU: "mug", Quantity: 1}},
		Payment: workflows.Payment{Provider: "stripe", Token: "pm_card_visa"},
	}
	if !reflect.DeepEqual(in, wantIn) {
		t.Errorf("CheckoutInput = %+v\nwant %+v", in, wantIn)
	}
	if !hexHash.MatchString(in.RequestHash) {
		t.Errorf("RequestHash = %q, want 64 hex digits", in.RequestHash)
	}
	for _, k := range jsonKeys(t, in) {
		if strings.Contains(k, "price") || strings.Contains(k, "amount") || strings.Contains(k, "total") {
			t.Errorf("CheckoutInput has a price field %q; prices must come from the catalog", k)
		}
	}

	// The update.
	u := call.update.UpdateOptions
	if u.UpdateName != workflows.UpdateAwaitOutcome || u.WaitForStage != client.WorkflowUpdateStageAccepted {
		t.Errorf("update = %q waiting for %v, want %q waiting for Accepted", u.UpdateName, u.WaitForStage, workflows.UpdateAwaitOutcome)
	}
	if want := []any{workflows.AwaitOutcomeRequest{RequestHash: in.RequestHash}}; !reflect.DeepEqual(u.Args, want) {
		t.Errorf("update args = %#v, want %#v", u.Args, want)
	}
	if call.deadline <= 0 || call.deadline > 200*time.Millisecond {
		t.Errorf("Update-With-Start deadline %v away, want within CheckoutWait (200ms)", call.deadline)
	}
	env.store.assertCalls(t, "CheckoutByIdempotencyKey", 1)
}

func TestCreateCheckoutRequestHash(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	starts := env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})

	bodies := []struct {
		name     string
		body     string
		sameHash bool // as the first body
	}{
		{"original", checkoutJSON(nil), true},
		{"same body again", checkoutJSON(nil), true},
		{"email in other case with white space", checkoutJSON(func(m map[string]any) { m["email"] = "  ANN@Example.COM \t" }), true},
		{"name with extra white space", checkoutJSON(func(m map[string]any) { m["name"] = "  Ann \n  Lee " }), true},
		{"other quantity", checkoutJSON(func(m map[string]any) { m["items"] = items(line("tshirt-m", 3), line("mug", 1)) }), false},
		{"other email", checkoutJSON(func(m map[string]any) { m["email"] = "bob@example.com" }), false},
		{"other token", checkoutJSON(func(m map[string]any) {
			m["payment"] = map[string]any{"provider": "stripe", "token": "pm_card_mastercard"}
		}), false},
	}
	// Each body under a key of its own: under one key, the Idempotency-Key table refuses every
	// body but the first (other bytes are another request), before the hash is computed. The
	// hash still backs the workflow's own check of a key, for keys the table no longer holds.
	keyOf := func(i int) string { return fmt.Sprintf("%s-%d", testKey, i) }
	for i, b := range bodies {
		if rec := postCheckout(env.handler, keyOf(i), b.body); rec.Code != http.StatusCreated {
			t.Fatalf("%s: status = %d, want 201; body: %s", b.name, rec.Code, rec.Body)
		}
	}

	calls := starts.all()
	if len(calls) != len(bodies) {
		t.Fatalf("Update-With-Start sent %d times, want %d", len(calls), len(bodies))
	}
	first := calls[0].input.RequestHash
	if !hexHash.MatchString(first) {
		t.Fatalf("RequestHash = %q, want 64 hex digits", first)
	}
	for i, b := range bodies {
		c := calls[i]
		if got := c.input.RequestHash; (got == first) != b.sameHash {
			t.Errorf("%s: hash %s, first %s; want same = %v", b.name, got, first, b.sameHash)
		}
		if args := c.update.UpdateOptions.Args; !reflect.DeepEqual(args, []any{workflows.AwaitOutcomeRequest{RequestHash: c.input.RequestHash}}) {
			t.Errorf("%s: update args %#v do not carry the input's hash %s", b.name, args, c.input.RequestHash)
		}
		if c.op.opts.ID != workflows.CheckoutWorkflowID(keyOf(i)) {
			t.Errorf("%s: workflow ID = %q, want %q", b.name, c.op.opts.ID, workflows.CheckoutWorkflowID(keyOf(i)))
		}
	}
}

func TestCreateCheckoutReplaysFromReadModel(t *testing.T) {
	t.Parallel()
	body := checkoutJSON(nil)
	hash := requestHashOf(t, body)

	cases := []struct {
		name        string
		status      domain.OrderStatus
		hash        string
		wantStatus  int
		wantCode    string // for an error response
		wantTemporl bool
	}{
		{name: "completed, same request", status: domain.OrderCompleted, hash: hash, wantStatus: http.StatusCreated},
		{name: "failed, same request", status: domain.OrderFailed, hash: hash, wantStatus: http.StatusCreated},
		{name: "completed, different request", status: domain.OrderCompleted, hash: strings.Repeat("0", 64),
			wantStatus: http.StatusUnprocessableEntity, wantCode: "idempotency_key_reused"},
		{name: "pending, different request", status: domain.OrderPending, hash: strings.Repeat("0", 64),
			wantStatus: http.StatusUnprocessableEntity, wantCode: "idempotency_key_reused"},
		{name: "pending, same request joins the workflow", status: domain.OrderPending, hash: hash,
			wantStatus: http.StatusCreated, wantTemporl: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			order := store.Order{
				ID: "ord_1", CheckoutID: checkout1, IdempotencyKey: testKey, RequestHash: tc.hash,
				Email: "ann@example.com", Name: "Ann Lee", Status: tc.status, TotalAmount: 6200, Currency: "EUR",
				Lines: []store.PricedLine{
					{LineNo: 1, SKU: "tshirt-m", Name: "T-shirt (M)", Quantity: 2, UnitAmount: 2500, LineAmount: 5000},
					{LineNo: 2, SKU: "mug", Name: "Mug", Quantity: 1, UnitAmount: 1200, LineAmount: 1200},
				},
			}
			if tc.status == domain.OrderFailed {
				order.FailureCode, order.DeclineCode, order.FailureMessage = "card_declined", "insufficient_funds", "Your card has insufficient funds."
			}
			env.store.addOrder(order)
			var starts *startRecorder
			if tc.wantTemporl {
				starts = env.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
			}

			rec := postCheckout(env.handler, testKey, body)

			switch {
			case tc.wantCode != "":
				if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode || got.Field != "Idempotency-Key" {
					t.Errorf("error = %+v, want %s on Idempotency-Key", got, tc.wantCode)
				}
			case tc.wantTemporl:
				decodeCheckoutBody(t, rec, tc.wantStatus)
				if n := len(starts.all()); n != 1 {
					t.Errorf("Update-With-Start sent %d times, want 1", n)
				}
				if h := rec.Header().Get("Idempotent-Replayed"); h != "" {
					t.Errorf("Idempotent-Replayed = %q, want none", h)
				}
			default:
				got, _ := decodeCheckoutBody(t, rec, tc.wantStatus)
				if h := rec.Header().Get("Idempotent-Replayed"); h != "true" {
					t.Errorf("Idempotent-Replayed = %q, want true", h)
				}
				if got.CheckoutID != checkout1 || got.OrderID != "ord_1" || got.Status != string(tc.status) || got.Amount != 6200 || len(got.Items) != 2 {
					t.Errorf("replayed checkout = %+v, want the stored order", got)
				}
				if tc.status == domain.OrderFailed && (got.Failure == nil || got.Failure.DeclineCode != "insufficient_funds" || got.RedirectURL != "") {
					t.Errorf("replayed failed checkout = %+v, want its failure and no redirect", got)
				}
			}
			if !tc.wantTemporl {
				env.assertTemporalUntouched(t)
			}
		})
	}
}

// TestCreateCheckoutFallsBackToReadModel covers a checkout that finished between the read-model
// check and Update-With-Start: the start is refused and the read model has the answer.
func TestCreateCheckoutFallsBackToReadModel(t *testing.T) {
	t.Parallel()
	body := checkoutJSON(nil)
	hash := requestHashOf(t, body)
	alreadyStarted := serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already finished", "", "run-1")

	cases := []struct {
		name       string
		status     domain.OrderStatus
		hash       string
		wantStatus int
		wantCode   string
	}{
		{name: "completed, same request", status: domain.OrderCompleted, hash: hash, wantStatus: http.StatusCreated},
		{name: "completed, different request", status: domain.OrderCompleted, hash: strings.Repeat("0", 64),
			wantStatus: http.StatusUnprocessableEntity, wantCode: "idempotency_key_reused"},
		{name: "still charging, same request", status: domain.OrderCharging, hash: hash, wantStatus: http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.byKeyMisses = 1 // the first check finds nothing; the fallback finds the order
			env.store.addOrder(store.Order{ID: "ord_1", CheckoutID: checkout1, IdempotencyKey: testKey, RequestHash: tc.hash,
				Status: tc.status, TotalAmount: 6200, Currency: "EUR"})
			env.expectUpdateWithStart(t, workflowBehavior{startErr: func(context.Context) error { return alreadyStarted }})

			rec := postCheckout(env.handler, testKey, body)

			if tc.wantCode != "" {
				if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
					t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
				}
			} else {
				got, _ := decodeCheckoutBody(t, rec, tc.wantStatus)
				if got.CheckoutID != checkout1 || got.Status != string(tc.status) {
					t.Errorf("checkout = %+v, want %s %s", got, checkout1, tc.status)
				}
				if tc.wantStatus == http.StatusCreated && rec.Header().Get("Idempotent-Replayed") != "true" {
					t.Errorf("Idempotent-Replayed = %q, want true", rec.Header().Get("Idempotent-Replayed"))
				}
			}
			env.store.assertCalls(t, "CheckoutByIdempotencyKey", 2) // before and after the start
		})
	}
}

func TestCreateCheckoutUpdateRejected(t *testing.T) {
	t.Parallel()
	reused := temporal.NewApplicationError("request differs from the one that started this checkout", workflows.ErrTypeIdempotencyKeyReused)
	cases := []struct {
		name     string
		behavior workflowBehavior
	}{
		{name: "by UpdateWithStartWorkflow", behavior: workflowBehavior{
			startErr: func(context.Context) error { return reused }}},
		{name: "by the update handle", behavior: workflowBehavior{
			get: func(context.Context, workflows.CheckoutInput, *workflows.CheckoutState) error {
				return fmt.Errorf("update failed: %w", reused)
			}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.expectUpdateWithStart(t, tc.behavior)

			rec := postCheckout(env.handler, testKey, checkoutJSON(nil))

			got := decodeError(t, rec, http.StatusUnprocessableEntity)
			if got.Code != "idempotency_key_reused" || got.Field != "Idempotency-Key" {
				t.Errorf("error = %+v, want idempotency_key_reused on Idempotency-Key", got)
			}
			env.temporal.AssertNotCalled(t, "DescribeWorkflowExecution", mock.Anything, mock.Anything, mock.Anything)
			env.store.assertCalls(t, "CheckoutByIdempotencyKey", 1)
		})
	}
}

func TestCreateCheckoutWaitRunsOut(t *testing.T) {
	t.Parallel()
	described := memoCheckout(t)
	noMemo := &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{}}
	startTimesOut := workflowBehavior{startErr: func(ctx context.Context) error {
		<-ctx.Done()
		return serviceerror.NewDeadlineExceeded("context deadline exceeded")
	}}

	// The server ends its long poll shortly before the BFF's deadline, with its own timeout.
	const serverMargin = 40 * time.Millisecond
	serverEndsPoll := func(ctx context.Context) {
		dl, _ := ctx.Deadline()
		time.Sleep(time.Until(dl) - serverMargin)
	}
	pollEndedByServer := workflowBehavior{get: func(ctx context.Context, _ workflows.CheckoutInput, _ *workflows.CheckoutState) error {
		serverEndsPoll(ctx)
		return client.NewWorkflowUpdateServiceTimeoutOrCanceledError(serviceerror.NewDeadlineExceeded("context deadline exceeded"))
	}}
	startEndedByServer := workflowBehavior{startErr: func(ctx context.Context) error {
		serverEndsPoll(ctx)
		return serviceerror.NewDeadlineExceeded("context deadline exceeded")
	}}

	cases := []struct {
		name        string
		behavior    workflowBehavior
		describe    *workflowservice.DescribeWorkflowExecutionResponse
		describeErr error
		early       time.Duration // how long before CheckoutWait the answer may come
		wantStatus  int
		wantCode    string
	}{
		{name: "outcome late, workflow known", behavior: workflowBehavior{get: waitForever}, describe: described,
			wantStatus: http.StatusAccepted},
		{name: "start late, workflow known", behavior: startTimesOut, describe: described,
			wantStatus: http.StatusAccepted},
		{name: "outcome poll ended by the server, workflow known", behavior: pollEndedByServer, describe: described,
			early: serverMargin, wantStatus: http.StatusAccepted},
		{name: "start ended by the server, workflow known", behavior: startEndedByServer, describe: described,
			early: serverMargin, wantStatus: http.StatusAccepted},
		{name: "workflow not found", behavior: workflowBehavior{get: waitForever}, describeErr: serviceerror.NewNotFound("workflow not found"),
			wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable"},
		{name: "temporal unavailable", behavior: workflowBehavior{get: waitForever}, describeErr: serviceerror.NewUnavailable("connection refused"),
			wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable"},
		{name: "workflow without checkout id memo", behavior: workflowBehavior{get: waitForever}, describe: noMemo,
			wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.expectUpdateWithStart(t, tc.behavior)
			env.temporal.On("DescribeWorkflowExecution", mock.Anything, workflows.CheckoutWorkflowID(testKey), "").
				Return(tc.describe, tc.describeErr).Once()

			start := time.Now()
			rec := postCheckout(env.handler, testKey, checkoutJSON(nil))
			if elapsed := time.Since(start); elapsed < 200*time.Millisecond-tc.early || elapsed > 5*time.Second {
				t.Errorf("answered after %v, want after CheckoutWait (200ms) and promptly", elapsed)
			}

			if tc.wantCode != "" {
				if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
					t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
				}
				return
			}
			got, keys := decodeCheckoutBody(t, rec, tc.wantStatus)
			wantURL := "/api/v1/checkouts/" + checkout2
			if loc := rec.Header().Get("Location"); loc != wantURL {
				t.Errorf("Location = %q, want %q", loc, wantURL)
			}
			if got.CheckoutID != checkout2 || got.Status != "pending" || got.StatusURL != wantURL {
				t.Errorf("checkout = %+v, want %s pending at %s", got, checkout2, wantURL)
			}
			if _, ok := keys["redirect_url"]; ok {
				t.Errorf("a pending checkout has a redirect_url: %s", rec.Body)
			}

			// Until the workflow writes the order, the status URL answers pending, not 404.
			if key := env.store.accepted[checkout2]; key != testKey {
				t.Fatalf("accepted checkout noted under %q, want %q", key, testKey)
			}
			polled, _ := decodeCheckoutBody(t, get(env.handler, wantURL), http.StatusOK)
			if polled.CheckoutID != checkout2 || polled.Status != "pending" {
				t.Errorf("status before the order = %+v, want %s pending", polled, checkout2)
			}
			env.store.addOrder(store.Order{ID: "ord_2", CheckoutID: checkout2, IdempotencyKey: testKey,
				Status: domain.OrderCompleted, TotalAmount: 6200, Currency: "EUR"})
			polled, _ = decodeCheckoutBody(t, get(env.handler, wantURL), http.StatusOK)
			if polled.Status != "completed" || polled.OrderID != "ord_2" {
				t.Errorf("status once the order is written = %+v, want ord_2 completed", polled)
			}
		})
	}
}

// A 202 goes out even when the note behind it cannot be written.
func TestCreateCheckoutWaitRunsOutNoteFails(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.store.acceptedErr = errors.New("connect: connection refused")
	env.expectUpdateWithStart(t, workflowBehavior{get: waitForever})
	env.temporal.On("DescribeWorkflowExecution", mock.Anything, workflows.CheckoutWorkflowID(testKey), "").
		Return(memoCheckout(t), nil).Once()

	rec := postCheckout(env.handler, testKey, checkoutJSON(nil))

	if got, _ := decodeCheckoutBody(t, rec, http.StatusAccepted); got.CheckoutID != checkout2 {
		t.Errorf("checkout = %+v, want %s", got, checkout2)
	}
	env.store.assertCalls(t, "RecordAcceptedCheckout", 1)
}

// When the start fails and the read model cannot be read either (PostgreSQL going down while a
// checkout is in flight), the BFF asks Temporal: a checkout it knows is a 202 to poll, not a 503
// that would send the customer to pay again.
func TestCreateCheckoutStartFailsWhileReadModelIsDown(t *testing.T) {
	t.Parallel()
	dbDown := errors.New("connect: connection refused")
	cases := []struct {
		name        string
		describe    *workflowservice.DescribeWorkflowExecutionResponse
		describeErr error
		wantStatus  int
	}{
		{name: "temporal knows the checkout", describe: memoCheckout(t), wantStatus: http.StatusAccepted},
		{name: "temporal does not", describeErr: serviceerror.NewNotFound("workflow not found"), wantStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.expectUpdateWithStart(t, workflowBehavior{startErr: func(context.Context) error {
				env.store.byKeyErr = dbDown // the database goes away while the start is in flight
				return serviceerror.NewUnavailable("history service busy")
			}})
			env.temporal.On("DescribeWorkflowExecution", mock.Anything, workflows.CheckoutWorkflowID(testKey), "").
				Return(tc.describe, tc.describeErr).Once()

			rec := postCheckout(env.handler, testKey, checkoutJSON(nil))

			env.store.assertCalls(t, "CheckoutByIdempotencyKey", 2)
			if tc.wantStatus != http.StatusAccepted {
				if got := decodeError(t, rec, tc.wantStatus); got.Code != "service_unavailable" {
					t.Errorf("error code = %q, want service_unavailable", got.Code)
				}
				return
			}
			got, _ := decodeCheckoutBody(t, rec, http.StatusAccepted)
			if got.CheckoutID != checkout2 || got.Status != "pending" || rec.Header().Get("Location") != "/api/v1/checkouts/"+checkout2 {
				t.Errorf("checkout = %+v (Location %q), want %s pending", got, rec.Header().Get("Location"), checkout2)
			}
		})
	}
}

func TestCreateCheckoutDoesNotEchoInternalErrors(t *testing.T) {
	t.Parallel()
	secret := errors.New("secret internal detail pq://user:pw@host")
	cases := []struct {
		name        string
		setup       func(t *testing.T, env *testEnv)
		wantStatus  int
		wantCode    string
		wantTemporl bool
	}{
		{name: "start fails, read model empty", wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable", wantTemporl: true,
			setup: func(t *testing.T, env *testEnv) {
				env.expectUpdateWithStart(t, workflowBehavior{startErr: func(context.Context) error { return secret }})
			}},
		{name: "update fails, read model empty", wantStatus: http.StatusServiceUnavailable, wantCode: "service_unavailable", wantTemporl: true,
			setup: func(t *testing.T, env *testEnv) {
				env.expectUpdateWithStart(t, workflowBehavior{get: func(context.Context, workflows.CheckoutInput, *workflows.CheckoutState) error { return secret }})
			}},
		{name: "read model fails", wantStatus: http.StatusInternalServerError, wantCode: "internal_error",
			setup: func(t *testing.T, env *testEnv) { env.store.byKeyErr = secret }},
		{name: "catalog fails", wantStatus: http.StatusInternalServerError, wantCode: "internal_error",
			setup: func(t *testing.T, env *testEnv) { env.store.productsErr = secret }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			tc.setup(t, env)

			rec := postCheckout(env.handler, testKey, checkoutJSON(nil))

			if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
				t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
			}
			for _, leak := range []string{"secret", "pw@", "pq://"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("response leaks %q: %s", leak, rec.Body)
				}
			}
			if !tc.wantTemporl {
				env.assertTemporalUntouched(t)
			}
		})
	}
}

func TestGetCheckout(t *testing.T) {
	t.Parallel()
	completed := store.Order{
		ID: "ord_1", CheckoutID: checkout1, IdempotencyKey: testKey, Email: "ann@example.com", Name: "Ann Lee",
		Status: domain.OrderCompleted, TotalAmount: 6200, Currency: "EUR",
		Lines: []store.PricedLine{
			{LineNo: 1, SKU: "tshirt-m", Name: "T-shirt (M)", Quantity: 2, UnitAmount: 2500, LineAmount: 5000},
			{LineNo: 2, SKU: "mug", Name: "Mug", Quantity: 1, UnitAmount: 1200, LineAmount: 1200},
		},
	}
	failed := store.Order{
		ID: "ord_2", CheckoutID: checkout2, IdempotencyKey: "other-key-123", Email: "bob@example.com", Name: "Bob",
		Status: domain.OrderFailed, TotalAmount: 1200, Currency: "EUR",
		FailureCode: "card_declined", DeclineCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds.",
		Lines: []store.PricedLine{{LineNo: 1, SKU: "mug", Name: "Mug", Quantity: 1, UnitAmount: 1200, LineAmount: 1200}},
	}
	pendingID := "chk_" + strings.Repeat("p", 26)
	pending := store.Order{ID: "ord_3", CheckoutID: pendingID, Email: "cy@example.com", Status: domain.OrderPending, TotalAmount: 1200, Currency: "EUR"}

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			id          string
			readsOrders bool
		}{
			{id: "nope"},
			{id: "chk_" + strings.Repeat("A", 26)},                    // upper case
			{id: "chk_" + strings.Repeat("a", 25)},                    // too short
			{id: "chk_" + strings.Repeat("1", 26)},                    // not base32
			{id: "ord_" + strings.Repeat("a", 26)},                    // other prefix
			{id: "chk_" + strings.Repeat("z", 26), readsOrders: true}, // well formed, unknown
		}
		for _, tc := range cases {
			t.Run(tc.id, func(t *testing.T) {
				env := newTestEnv(t)
				env.store.addOrder(completed)
				rec := get(env.handler, "/api/v1/checkouts/"+tc.id)
				if got := decodeError(t, rec, http.StatusNotFound); got.Code != "checkout_not_found" {
					t.Errorf("GET %s: error code = %q, want checkout_not_found", tc.id, got.Code)
				}
				env.store.assertCalls(t, "CheckoutByID", onceIf(tc.readsOrders))
				env.store.assertCalls(t, "IsAcceptedCheckout", onceIf(tc.readsOrders))
				env.assertTemporalUntouched(t)
			})
		}
	})

	t.Run("read model fails", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		env.store.byIDErr = errors.New("secret pq://user:pw@host")
		rec := get(env.handler, "/api/v1/checkouts/"+checkout1)
		if got := decodeError(t, rec, http.StatusInternalServerError); got.Code != "internal_error" {
			t.Errorf("error code = %q, want internal_error", got.Code)
		}
		if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "pw@") {
			t.Errorf("response leaks the internal error: %s", rec.Body)
		}
		env.assertTemporalUntouched(t)
	})

	t.Run("found", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		for _, o := range []store.Order{completed, failed, pending} {
			env.store.addOrder(o)
		}

		rec := get(env.handler, "/api/v1/checkouts/"+checkout1)
		got, keys := decodeCheckoutBody(t, rec, http.StatusOK)
		if got.CheckoutID != checkout1 || got.Status != "completed" || got.OrderID != "ord_1" || got.Amount != 6200 || got.Currency != "EUR" {
			t.Errorf("completed checkout = %+v", got)
		}
		if len(got.Items) != 2 || got.Items[0].SKU != "tshirt-m" || got.Items[0].Name != "T-shirt (M)" || got.Items[0].Quantity != 2 ||
			got.Items[0].UnitAmount != 2500 || got.Items[0].LineAmount != 5000 || got.Items[1].SKU != "mug" || got.Items[1].LineAmount != 1200 {
			t.Errorf("items = %+v, want tshirt-m 2x2500=5000 and mug 1x1200=1200", got.Items)
		}
		if want := "https://shop.example/orders/" + checkout1 + "/confirmation"; got.RedirectURL != want {
			t.Errorf("redirect_url = %q, want %q", got.RedirectURL, want)
		}
		if got.StatusURL != "/api/v1/checkouts/"+checkout1 {
			t.Errorf("status_url = %q", got.StatusURL)
		}
		if _, ok := keys["failure"]; ok {
			t.Errorf("completed checkout has a failure: %s", rec.Body)
		}
		// The id is the only credential for this endpoint: it must not reveal who bought.
		if body := rec.Body.String(); strings.Contains(body, "ann@example.com") || strings.Contains(body, testKey) {
			t.Errorf("status response reveals the customer's email or idempotency key: %s", body)
		}

		rec = get(env.handler, "/api/v1/checkouts/"+checkout2)
		got, keys = decodeCheckoutBody(t, rec, http.StatusOK)
		if got.Status != "failed" || got.Failure == nil ||
			*got.Failure != (struct {
				Code        string `json:"code"`
				DeclineCode string `json:"decline_code"`
				Message     string `json:"message"`
			}{"card_declined", "insufficient_funds", "Your card has insufficient funds."}) {
			t.Errorf("failed checkout = %+v, failure %+v", got, got.Failure)
		}
		if _, ok := keys["redirect_url"]; ok {
			t.Errorf("failed checkout has a redirect_url: %s", rec.Body)
		}

		rec = get(env.handler, "/api/v1/checkouts/"+pendingID)
		got, keys = decodeCheckoutBody(t, rec, http.StatusOK)
		if got.Status != "pending" {
			t.Errorf("pending checkout status = %q", got.Status)
		}
		for _, k := range []string{"redirect_url", "failure"} {
			if _, ok := keys[k]; ok {
				t.Errorf("pending checkout has %s: %s", k, rec.Body)
			}
		}
		env.assertTemporalUntouched(t)
	})
}

func TestHealth(t *testing.T) {
	t.Parallel()
	t.Run("healthz", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		rec := get(env.handler, "/healthz")
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
			t.Errorf("GET /healthz = %d %s, want 200 {\"status\":\"ok\"}", rec.Code, rec.Body)
		}
		env.assertTemporalUntouched(t)
		env.store.assertCalls(t, "Ping", 0) // liveness does not touch the database
	})

	down := errors.New("connection refused")
	cases := []struct {
		name         string
		pingErr      error
		temporalErr  error
		wantStatus   int
		wantPostgres string
		wantTemporal string
	}{
		{"all up", nil, nil, http.StatusOK, "ok", "ok"},
		{"temporal down", nil, down, http.StatusServiceUnavailable, "ok", "down"},
		{"postgres down", down, nil, http.StatusServiceUnavailable, "down", "ok"},
		{"both down", down, down, http.StatusServiceUnavailable, "down", "down"},
	}
	for _, tc := range cases {
		t.Run("readyz "+tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.store.pingErr = tc.pingErr
			var health *client.CheckHealthResponse
			if tc.temporalErr == nil {
				health = &client.CheckHealthResponse{}
			}
			env.temporal.On("CheckHealth", mock.Anything, mock.Anything).Return(health, tc.temporalErr).Once()

			rec := get(env.server.internalRoutes(), "/readyz")

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			assertJSONContentType(t, rec)
			var body struct {
				Status string            `json:"status"`
				Ready  bool              `json:"ready"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"postgres": tc.wantPostgres, "temporal": tc.wantTemporal}
			wantStatus, wantRetryAfter := "ok", ""
			if tc.wantStatus != http.StatusOK {
				wantStatus, wantRetryAfter = "unavailable", "5"
			}
			if body.Status != wantStatus || body.Ready != (tc.wantStatus == http.StatusOK) || !reflect.DeepEqual(body.Checks, want) {
				t.Errorf("readyz = %+v, want status %s, ready %v, checks %v", body, wantStatus, tc.wantStatus == http.StatusOK, want)
			}
			if got := rec.Header().Get("Retry-After"); got != wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, wantRetryAfter)
			}
			if strings.Contains(rec.Body.String(), "connection refused") {
				t.Errorf("readyz echoes the dependency error: %s", rec.Body)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method, path string
		wantStatus   int
		wantCode     string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/v2/checkouts", http.StatusNotFound, "not_found"},
		{http.MethodPut, "/api/v1/checkouts", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodGet, "/api/v1/checkouts", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodDelete, "/api/v1/checkouts/" + checkout1, http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			rec := serve(env.handler, httptest.NewRequest(tc.method, tc.path, strings.NewReader(checkoutJSON(nil))))
			if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
				t.Errorf("error code = %q, want %q", got.Code, tc.wantCode)
			}
			env.assertTemporalUntouched(t)
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	cases := []struct {
		sent     string
		wantEcho bool
	}{
		{"req-123.abc_DEF", true},
		{"", false},
		{"has spaces", false},
		{"evil\"quote", false},
		{strings.Repeat("a", 65), false},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		if tc.sent != "" {
			req.Header.Set("X-Request-Id", tc.sent)
		}
		got := serve(env.handler, req).Header().Get("X-Request-Id")
		if tc.wantEcho && got != tc.sent {
			t.Errorf("X-Request-Id %q answered as %q, want it echoed", tc.sent, got)
		}
		if !tc.wantEcho && (got == tc.sent || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(got)) {
			t.Errorf("X-Request-Id %q answered as %q, want a fresh 24-hex-digit id", tc.sent, got)
		}
	}
}
