package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// fakeVerifier accepts a request whose X-Test-Signature header is "good".
type fakeVerifier struct{ event domain.WebhookEvent }

func (f fakeVerifier) Verify(_ context.Context, h http.Header, _ []byte) (domain.WebhookEvent, error) {
	switch h.Get("X-Test-Signature") {
	case "good":
		return f.event, nil
	case "unreachable":
		return domain.WebhookEvent{}, errors.New("provider unreachable")
	case "limited":
		return domain.WebhookEvent{}, fmt.Errorf("test scheme: %w", billing.ErrVerifyLimited)
	}
	return domain.WebhookEvent{}, fmt.Errorf("test scheme: %w", billing.ErrBadSignature)
}

// paymentsEnv is a testEnv whose server also has webhook verifiers.
func paymentsEnv(t *testing.T) (*testEnv, *server) {
	env := newTestEnv(t)
	s := env.server
	s.webhooks = map[string]billing.WebhookVerifier{"stripe": fakeVerifier{event: domain.WebhookEvent{
		Provider: "stripe", ID: "evt_1", Type: domain.EventRefunded, PaymentRef: "pi_1", Amount: 500, Currency: "usd"}}}
	s.cfg.CardProcessors = []string{"stripe", "braintree"}
	s.cfg.Breaker.MinFailures = 5
	s.cfg.Stripe.PublishableKey, s.cfg.BraintreeTokenizationKey = "pk_test_x", "sandbox_x"
	env.handler = s.routes()
	return env, s
}

func postWebhook(env *testEnv, provider, signature, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+provider, strings.NewReader(body))
	req.Header.Set("X-Test-Signature", signature)
	return serve(env.handler, req)
}

func TestWebhookWithABadSignatureStoresAndStartsNothing(t *testing.T) {
	env, _ := paymentsEnv(t)
	for _, tc := range []struct {
		provider, signature string
		status              int
		code                string
	}{
		{"stripe", "forged", 400, "invalid_signature"},
		{"stripe", "", 400, "invalid_signature"},
		{"acme", "good", 404, "unknown_provider"},
		{"stripe", "unreachable", 503, "service_unavailable"},
		// Over the verifier's budget of provider calls: the provider delivers again later.
		{"stripe", "limited", 503, "service_unavailable"},
	} {
		rec := postWebhook(env, tc.provider, tc.signature, `{"id":"evt_1"}`)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), `"code":"`+tc.code+`"`) {
			t.Errorf("%s/%q: %d %s", tc.provider, tc.signature, rec.Code, rec.Body)
		}
		if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s/%q: 503 without Retry-After", tc.provider, tc.signature)
		}
	}
	env.assertTemporalUntouched(t)
}

func TestVerifiedWebhookStartsOneProviderEventWorkflow(t *testing.T) {
	env, _ := paymentsEnv(t)
	var got []client.StartWorkflowOptions
	var input domain.WebhookEvent
	env.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.ProviderEventWorkflowType, mock.Anything).
		Return(func(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			got = append(got, opts)
			input = args[0].(domain.WebhookEvent)
			return mocks.NewWorkflowRun(t), nil
		}).Once()
	rec := postWebhook(env, "stripe", "good", `{"id":"evt_1"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(got) != 1 || got[0].ID != "provider-event-stripe-evt_1" || got[0].TaskQueue != workflows.TaskQueue ||
		got[0].WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING ||
		got[0].WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
		t.Fatalf("start options %+v", got)
	}
	if input.ID != "evt_1" || input.Type != domain.EventRefunded || input.PaymentRef != "pi_1" || input.Amount != 500 ||
		string(input.Payload) != `{"id":"evt_1"}` {
		t.Fatalf("workflow input %+v", input)
	}
}

func refundRequestTo(orderID, key, apiKey, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/orders/"+orderID+"/refunds", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	return req
}

const paidOrderID = "9b2f6c9e-55a2-4c55-9d2c-2b4b4f3f6a10"

func TestRefundNeedsTheStaffKeyAndValidInput(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.orders = append(env.store.orders, store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	for _, tc := range []struct {
		name, key, apiKey, body string
		status                  int
		code, field             string
	}{
		{"no key", "refund-key-1", "", `{}`, 401, "unauthorized", ""},
		{"wrong key", "refund-key-1", unknownStaffKey, `{}`, 401, "unauthorized", ""},
		{"no idempotency key", "", testStaffKey, `{}`, 400, "missing_idempotency_key", "Idempotency-Key"},
		{"negative amount", "refund-key-1", testStaffKey, `{"amount":-5}`, 422, "invalid_amount", "amount"},
		{"amount as text", "refund-key-1", testStaffKey, `{"amount":"5"}`, 400, "invalid_type", "amount"},
		{"unknown order", "refund-key-1", testStaffKey, `{}`, 404, "order_not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := paidOrderID
			if tc.code == "order_not_found" {
				id = "00000000-0000-4000-8000-000000000000"
			}
			rec := serve(env.handler, refundRequestTo(id, tc.key, tc.apiKey, tc.body))
			var body struct{ Error apiError }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || body.Error.Code != tc.code || body.Error.Field != tc.field {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
	env.assertTemporalUntouched(t)
}

func TestRefundStartsTheRefundWorkflowOncePerKey(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.orders = append(env.store.orders, store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	outcomes := map[int64]workflows.RefundOutcome{
		2000: {OrderID: paidOrderID, Status: workflows.RefundSucceeded, Amount: 2000, Currency: "usd", OrderStatus: "partially_refunded", RefundedTotal: 2000},
		9000: {OrderID: paidOrderID, Status: workflows.RefundRefused, FailureCode: "refund_exceeds_captured", FailureMessage: "too much"},
	}
	var ids []string
	env.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.RefundWorkflowType, mock.Anything).
		Return(func(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			ids = append(ids, opts.ID)
			in := args[0].(workflows.RefundRequest)
			run := mocks.NewWorkflowRun(t)
			run.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, ptr any) error {
				*ptr.(*workflows.RefundOutcome) = outcomes[in.Amount]
				return nil
			}).Once()
			return run, nil
		})
	rec := serve(env.handler, refundRequestTo(paidOrderID, "refund-key-1", testStaffKey, `{"amount":2000}`))
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"order_status":"partially_refunded"`) {
		t.Fatalf("partial refund: %d %s", rec.Code, rec.Body)
	}
	rec = serve(env.handler, refundRequestTo(paidOrderID, "refund-key-2", testStaffKey, `{"amount":9000}`))
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), `"code":"refund_exceeds_captured"`) {
		t.Fatalf("over-refund: %d %s", rec.Code, rec.Body)
	}
	if len(ids) != 2 || ids[0] != workflows.RefundWorkflowID(paidOrderID, "refund-key-1") {
		t.Fatalf("workflow ids %v", ids)
	}
}

func TestPaymentConfigSteersAwayFromAFailingProcessor(t *testing.T) {
	env, _ := paymentsEnv(t)
	get := func() map[string]any {
		rec := serve(env.handler, httptest.NewRequest(http.MethodGet, "/api/v1/payment-config", nil))
		var m map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return m
	}
	if m := get(); m["card_processor"] != "stripe" || m["stripe"].(map[string]any)["publishable_key"] != "pk_test_x" {
		t.Fatalf("healthy: %v", m)
	}
	// Declines never reach the health figures; a few technical failures among many calls do not trip it.
	env.store.setHealth("stripe", 40, 4)
	if m := get(); m["card_processor"] != "stripe" {
		t.Fatalf("mostly healthy: %v", m)
	}
	env.store.setHealth("stripe", 2, 6)
	if m := get(); m["card_processor"] != "braintree" || m["braintree"].(map[string]any)["tokenization_key"] != "sandbox_x" {
		t.Fatalf("stripe failing: %v", m)
	}
	env.store.setHealth("braintree", 0, 9)
	if m := get(); m["card_processor"] != "stripe" {
		t.Fatalf("both failing keeps the primary: %v", m)
	}
}

func TestAuthenticationReportOnlyForAWaitingCheckout(t *testing.T) {
	env, _ := paymentsEnv(t)
	const id = "chk_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	env.store.orders = append(env.store.orders, store.Order{ID: "o-1", CheckoutID: id, WorkflowID: "checkout-k", Status: "charging", TotalAmount: 100, Currency: "usd"})
	rec := serve(env.handler, httptest.NewRequest(http.MethodPost, "/api/v1/checkouts/"+id+"/authentication", nil))
	if rec.Code != http.StatusConflict {
		t.Fatalf("not waiting: %d %s", rec.Code, rec.Body)
	}
	env.assertTemporalUntouched(t)

	env.store.orders[0].Status = "requires_action"
	handle := mocks.NewWorkflowUpdateHandle(t)
	handle.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, ptr any) error {
		*ptr.(*workflows.CheckoutState) = workflows.CheckoutState{CheckoutID: id, OrderID: "o-1", Status: domain.OrderPaid, Amount: 100, Currency: "usd"}
		return nil
	}).Once()
	env.temporal.On("UpdateWorkflow", mock.Anything, mock.MatchedBy(func(o client.UpdateWorkflowOptions) bool {
		return o.WorkflowID == "checkout-k" && o.UpdateName == workflows.UpdateAuthenticationCompleted
	})).Return(handle, nil).Once()
	rec = serve(env.handler, httptest.NewRequest(http.MethodPost, "/api/v1/checkouts/"+id+"/authentication", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"paid"`) {
		t.Fatalf("waiting: %d %s", rec.Code, rec.Body)
	}
}

func TestTheTokenChoosesTheProvider(t *testing.T) {
	for _, tc := range []struct{ provider, token, want, code string }{
		{"", "pm_card_visa", "stripe", ""},
		{"", "tok_visa", "stripe", ""},
		{"", "5O190127TN364715T", "paypal", ""},
		{"", "fake-valid-nonce", "braintree", ""},
		{"", "tokencc_bc_abc123", "braintree", ""},
		{"stripe", "pm_card_visa", "stripe", ""},
		{"braintree", "pm_card_visa", "", "token_provider_mismatch"},
		{"", cardLike, "", "invalid_token"},
		{"", "", "", "invalid_token"},
		{"bitcoin", "pm_card_visa", "", "unknown_provider"},
	} {
		got, aerr := validPayment("payment.", tc.provider, tc.token)
		code := ""
		if aerr != nil {
			code = aerr.Code
			if strings.Contains(aerr.Message, tc.token) && tc.token != "" {
				t.Errorf("%q: the error echoes the token", tc.token)
			}
		}
		if got != tc.want || code != tc.code {
			t.Errorf("validPayment(%q, %q) = %q, %q; want %q, %q", tc.provider, tc.token, got, code, tc.want, tc.code)
		}
	}
}
