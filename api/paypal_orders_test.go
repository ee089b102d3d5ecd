package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/store"
)

// fakePayPal stands for PayPal's order creation and the binding store: like PayPal, it answers
// a repeated IdempotencyKey with the order first created for it.
type fakePayPal struct {
	mu                 sync.Mutex
	byKey              map[string]billing.PayPalOrder
	requests           []billing.PayPalOrderRequest
	bound              []store.ProviderOrder
	createErr, bindErr error
}

func (f *fakePayPal) CreateOrder(_ context.Context, req billing.PayPalOrderRequest) (billing.PayPalOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if f.createErr != nil {
		return billing.PayPalOrder{}, f.createErr
	}
	if o, ok := f.byKey[req.IdempotencyKey]; ok {
		return o, nil
	}
	o := billing.PayPalOrder{ID: "5O190127TN36471" + string(rune('A'+len(f.byKey))) + "T", CartRef: req.CartRef,
		Amount: req.Amount, Currency: req.Currency}
	o.ApproveURL = "https://www.sandbox.paypal.com/checkoutnow?token=" + o.ID
	f.byKey[req.IdempotencyKey] = o
	return o, nil
}

func (f *fakePayPal) BindProviderOrder(_ context.Context, o store.ProviderOrder) (store.ProviderOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bindErr != nil {
		return store.ProviderOrder{}, f.bindErr
	}
	for _, b := range f.bound {
		if b.ProviderOrderID == o.ProviderOrderID {
			return b, nil
		}
	}
	f.bound = append(f.bound, o)
	return o, nil
}

// withPayPal gives the test server a PayPal double and returns it.
func (e *testEnv) withPayPal() *fakePayPal {
	f := &fakePayPal{byKey: map[string]billing.PayPalOrder{}}
	e.server.paypal = &paypalOrders{gateway: f, store: f}
	e.handler = e.server.routes()
	return f
}

func postPayPalOrder(h http.Handler, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/paypal/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return serve(h, req)
}

const paypalCart = `{"items":[{"sku":"tshirt-m","quantity":2},{"sku":"mug","quantity":1}]}`

var cartRefPattern = regexp.MustCompile(`^cart_[a-z2-7]{26}$`)

func TestPayPalOrderIsCreatedForTheServerPrice(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	pp := e.withPayPal()

	const body = `{"items":[{"sku":"tshirt-m","quantity":2},{"sku":"mug","quantity":1}],"currency":"EUR"}`
	rec := postPayPalOrder(e.handler, testKey, body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got paypalOrderResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Amount != 6200 || got.Currency != "eur" || !cartRefPattern.MatchString(got.CartRef) || got.PayPalOrderID == "" ||
		!strings.HasSuffix(got.ApproveURL, got.PayPalOrderID) {
		t.Fatalf("answer %+v, want 6200 eur priced from the catalog, a cart reference and the approve link", got)
	}
	if len(pp.requests) != 1 || pp.requests[0] != (billing.PayPalOrderRequest{IdempotencyKey: "paypal-order/" + testKey, Amount: 6200, Currency: "eur", CartRef: got.CartRef}) {
		t.Errorf("PayPal was asked %+v", pp.requests)
	}
	want := store.ProviderOrder{Provider: "paypal", ProviderOrderID: got.PayPalOrderID, CartRef: got.CartRef, Amount: 6200, Currency: "eur"}
	if len(pp.bound) != 1 || pp.bound[0] != want {
		t.Errorf("bindings %+v, want %+v", pp.bound, want)
	}

	// The same request again: the first answer, with one PayPal order bound once.
	again := postPayPalOrder(e.handler, testKey, body)
	if again.Code != http.StatusCreated || again.Body.String() != rec.Body.String() || len(pp.bound) != 1 {
		t.Errorf("repeat: %d %s, %d bindings; want the first answer", again.Code, again.Body, len(pp.bound))
	}
	// The same key with another cart: PayPal's order is for another amount.
	other := postPayPalOrder(e.handler, testKey, `{"items":[{"sku":"mug","quantity":1}]}`)
	e.assertBadInputRefused(t, other, http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key")
	if len(pp.bound) != 1 {
		t.Errorf("%d bindings after a reused key, want 1", len(pp.bound))
	}
}

func TestPayPalOrderBadInputIsRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, body string
		noKey           bool
		status          int
		code, field     string
	}{
		{name: "no key", noKey: true, body: paypalCart, status: 400, code: "missing_idempotency_key", field: "Idempotency-Key"},
		{name: "bad key", key: "short", body: paypalCart, status: 400, code: "invalid_idempotency_key", field: "Idempotency-Key"},
		{name: "not JSON", body: `{"items":`, status: 400, code: "malformed_json"},
		{name: "unknown field", body: `{"items":[{"sku":"mug","quantity":1}],"amount":1}`, status: 400, code: "unknown_field", field: "amount"},
		{name: "a price from the client", body: `{"items":[{"sku":"mug","quantity":1,"price":1}]}`, status: 400, code: "unknown_field", field: "price"},
		{name: "wrong type", body: `{"items":[{"sku":"mug","quantity":"1"}]}`, status: 400, code: "invalid_type", field: "items.quantity"},
		{name: "no items", body: `{"items":[]}`, status: 422, code: "empty_cart", field: "items"},
		{name: "no sku", body: `{"items":[{"quantity":1}]}`, status: 422, code: "missing_sku", field: "items[0].sku"},
		{name: "quantity", body: `{"items":[{"sku":"mug","quantity":0}]}`, status: 422, code: "invalid_quantity", field: "items[0].quantity"},
		{name: "unknown sku", body: `{"items":[{"sku":"mug","quantity":1},{"sku":"nope","quantity":1}]}`, status: 422, code: "unknown_sku", field: "items[1].sku"},
		{name: "not sold", body: `{"items":[{"sku":"poster-2019","quantity":1}]}`, status: 422, code: "product_unavailable", field: "items[0].sku"},
		{name: "a plan", body: `{"items":[{"sku":"pro-monthly","quantity":1}]}`, status: 422, code: "recurring_not_supported", field: "items[0].sku"},
		{name: "bad currency", body: `{"items":[{"sku":"mug","quantity":1}],"currency":"euro"}`, status: 422, code: "invalid_currency", field: "currency"},
		{name: "other currency", body: `{"items":[{"sku":"mug","quantity":1}],"currency":"usd"}`, status: 422, code: "currency_mismatch", field: "currency"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			pp := e.withPayPal()
			rec := postPayPalOrder(e.handler, requestKey(tc.key, tc.noKey), tc.body)
			e.assertBadInputRefused(t, rec, tc.status, tc.code, tc.field)
			if len(pp.requests) != 0 || len(pp.bound) != 0 {
				t.Errorf("PayPal asked %d times, %d bindings; want none", len(pp.requests), len(pp.bound))
			}
		})
	}
}

func TestPayPalOrderDependencies(t *testing.T) {
	t.Parallel()
	t.Run("PayPal not configured", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t)
		rec := postPayPalOrder(e.handler, testKey, paypalCart)
		e.assertBadInputRefused(t, rec, http.StatusUnprocessableEntity, "unknown_provider", "")
		if cfg := get(e.handler, "/api/v1/payment-config"); !strings.Contains(cfg.Body.String(), `"paypal":{"enabled":false}`) {
			t.Errorf("payment-config = %s, want PayPal disabled", cfg.Body)
		}
	})
	cases := []struct {
		name               string
		createErr, bindErr error
		productsErr        error
		status             int
		code               string
		bound              int
	}{
		{name: "PayPal unreachable", createErr: errors.New("paypal unreachable, outcome unknown"), status: 503, code: "service_unavailable"},
		{name: "PayPal refuses", createErr: &billing.RejectedError{Code: "invalid_amount", Message: "no"}, status: 422, code: "paypal_order_refused"},
		{name: "binding not stored", bindErr: errors.New("connection refused"), status: 503, code: "service_unavailable"},
		{name: "catalog unreadable", productsErr: errors.New("connection refused"), status: 503, code: "service_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			pp := e.withPayPal()
			pp.createErr, pp.bindErr, e.store.productsErr = tc.createErr, tc.bindErr, tc.productsErr
			rec := postPayPalOrder(e.handler, testKey, paypalCart)
			if got := decodeError(t, rec, tc.status); got.Code != tc.code {
				t.Errorf("code %q, want %q", got.Code, tc.code)
			}
			if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if len(pp.bound) != 0 {
				t.Errorf("%d bindings, want none", len(pp.bound))
			}
		})
	}
}
