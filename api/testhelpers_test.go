package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

func init() { gin.SetMode(gin.TestMode) }

// testKey is a well-formed Idempotency-Key.
const testKey = "3f1c2a9e-7b4d-4e0a-9c55-1d2e3f405162"

// testCatalog is the catalog the fake read model knows. tshirt-m x2 + mug x1 costs 6200 EUR.
var testCatalog = []store.Product{
	{SKU: "tshirt-m", Name: "T-shirt (M)", Kind: store.KindOneOff, PriceAmount: 2500, Currency: "EUR", Active: true},
	{SKU: "mug", Name: "Mug", Kind: store.KindOneOff, PriceAmount: 1200, Currency: "EUR", Active: true},
	{SKU: "poster-2019", Name: "Poster 2019", Kind: store.KindOneOff, PriceAmount: 900, Currency: "EUR", Active: false},
	{SKU: "pro-monthly", Name: "Pro plan", Kind: store.KindSubscription, PriceAmount: 1500, Currency: "EUR",
		BillingInterval: "month", TrialDays: 14, Active: true},
	{SKU: "cap-us", Name: "Cap (US)", Kind: store.KindOneOff, PriceAmount: 1800, Currency: "USD", Active: true},
}

// fakeStore is an in-memory checkoutStore that counts the calls it gets.
type fakeStore struct {
	mu       sync.Mutex
	products map[string]store.Product
	orders   []store.Order
	// byKeyMisses is how many CheckoutByIdempotencyKey lookups answer ErrNotFound before the
	// orders become visible, as if the worker wrote the order in between.
	byKeyMisses int
	pingErr     error
	productsErr error
	byKeyErr    error
	byIDErr     error
	// accepted maps the checkouts noted as answered 202 to their Idempotency-Keys.
	accepted    map[string]string
	acceptedErr error
	// subscriptions by id, their histories, and the order each was bought by.
	subscriptions map[string]store.Subscription
	history       map[string][]store.SubscriptionEvent
	subByIDErr    error
	historyErr    error
	subByOrderErr error
	calls         map[string]int
	// health is each provider's recent technical successes and failures.
	health map[string][2]int
	// fakeKeys keeps the Idempotency-Keys (idempotency_test.go).
	fakeKeys
	// fakeIdentity keeps customers and their sessions (fake_identity_test.go).
	fakeIdentity
	// fakeStaff keeps the staff keys, the audit and the ledger (staff_test.go).
	fakeStaff
	// fakeRates keeps the rate-limit counters, payment sources and declines (ratelimit_test.go).
	fakeRates
}

func newFakeStore() *fakeStore {
	f := &fakeStore{products: map[string]store.Product{}, calls: map[string]int{},
		subscriptions: map[string]store.Subscription{}, history: map[string][]store.SubscriptionEvent{}, fakeStaff: fakeStaff{staffKeys: newFakeStaff(),
			payments: map[string][]store.Payment{}, events: map[string][]store.OrderEvent{}}}
	for _, p := range testCatalog {
		f.products[p.SKU] = p
	}
	f.sessions = map[string]store.Session{ownerSession: {ID: "owner", UserID: subOwner}}
	f.users = map[string]store.User{subOwner: {ID: subOwner, Email: subEmail, Name: "Ann Lee", Status: store.UserConfirmed}}
	f.signIns = map[string]string{}
	f.accepted = map[string]string{}
	return f
}

func (f *fakeStore) RecordAcceptedCheckout(_ context.Context, checkoutID, key string) error {
	f.record("RecordAcceptedCheckout")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.acceptedErr != nil {
		return f.acceptedErr
	}
	if _, ok := f.accepted[checkoutID]; !ok {
		f.accepted[checkoutID] = key
	}
	return nil
}

func (f *fakeStore) IsAcceptedCheckout(_ context.Context, checkoutID string) (bool, error) {
	f.record("IsAcceptedCheckout")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.acceptedErr != nil {
		return false, f.acceptedErr
	}
	_, ok := f.accepted[checkoutID]
	return ok, nil
}

func (f *fakeStore) record(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
}

func (f *fakeStore) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// assertCalls fails the test unless the store's method was called want times.
func (f *fakeStore) assertCalls(t *testing.T, method string, want int) {
	t.Helper()
	if n := f.callCount(method); n != want {
		t.Errorf("store.%s called %d times, want %d", method, n, want)
	}
}

// onceIf is the number of calls a case wants when its flag says the call is made: 1 or 0.
func onceIf(called bool) int {
	if called {
		return 1
	}
	return 0
}

func (f *fakeStore) addOrder(o store.Order) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orders = append(f.orders, o)
}

func (f *fakeStore) Ping(context.Context) error {
	f.record("Ping")
	return f.pingErr
}

func (f *fakeStore) ListProducts(context.Context) ([]store.Product, error) {
	f.record("ListProducts")
	var out []store.Product
	for _, p := range testCatalog {
		if p.Active {
			out = append(out, p)
		}
	}
	return out, nil
}

// ProductsBySKU returns active and inactive products alike, as the real store does.
func (f *fakeStore) ProductsBySKU(_ context.Context, skus []string) (map[string]store.Product, error) {
	f.record("ProductsBySKU")
	if f.productsErr != nil {
		return nil, f.productsErr
	}
	out := map[string]store.Product{}
	for _, s := range skus {
		if p, ok := f.products[s]; ok {
			out[s] = p
		}
	}
	return out, nil
}

func (f *fakeStore) CheckoutByID(_ context.Context, id string) (store.Order, error) {
	f.record("CheckoutByID")
	if f.byIDErr != nil {
		return store.Order{}, f.byIDErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.IndexFunc(f.orders, func(o store.Order) bool { return o.CheckoutID == id }); i >= 0 {
		return f.orders[i], nil
	}
	return store.Order{}, store.ErrNotFound
}

func (f *fakeStore) CheckoutByIdempotencyKey(_ context.Context, key string) (store.Order, error) {
	f.record("CheckoutByIdempotencyKey")
	if f.byKeyErr != nil {
		return store.Order{}, f.byKeyErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKeyMisses > 0 {
		f.byKeyMisses--
		return store.Order{}, store.ErrNotFound
	}
	if i := slices.IndexFunc(f.orders, func(o store.Order) bool { return o.IdempotencyKey == key }); i >= 0 {
		return f.orders[i], nil
	}
	return store.Order{}, store.ErrNotFound
}

// putSubscription adds or replaces a subscription and its history, as the worker would write them.
func (f *fakeStore) putSubscription(sub store.Subscription, history ...store.SubscriptionEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subscriptions[sub.ID] = sub
	f.history[sub.ID] = history
}

func (f *fakeStore) SubscriptionByID(_ context.Context, id string) (store.Subscription, error) {
	f.record("SubscriptionByID")
	if f.subByIDErr != nil {
		return store.Subscription{}, f.subByIDErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if sub, ok := f.subscriptions[id]; ok {
		return sub, nil
	}
	return store.Subscription{}, store.ErrNotFound
}

func (f *fakeStore) SubscriptionHistory(_ context.Context, id string) ([]store.SubscriptionEvent, error) {
	f.record("SubscriptionHistory")
	if f.historyErr != nil {
		return nil, f.historyErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history[id]), nil
}

func (f *fakeStore) SubscriptionByOrder(_ context.Context, orderID string) (store.Subscription, error) {
	f.record("SubscriptionByOrder")
	if f.subByOrderErr != nil {
		return store.Subscription{}, f.subByOrderErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sub := range f.subscriptions {
		if sub.OrderID == orderID {
			return sub, nil
		}
	}
	return store.Subscription{}, store.ErrNotFound
}

func (f *fakeStore) OrderByID(_ context.Context, id string) (store.Order, error) {
	f.record("OrderByID")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orders {
		if o.ID == id {
			return o, nil
		}
	}
	return store.Order{}, store.ErrNotFound
}

// setHealth sets a provider's technical outcomes over the breaker window.
func (f *fakeStore) setHealth(provider string, successes, failures int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.health == nil {
		f.health = map[string][2]int{}
	}
	f.health[provider] = [2]int{successes, failures}
}

func (f *fakeStore) ProviderHealth(_ context.Context, provider string, _ time.Time) (int, int, error) {
	f.record("ProviderHealth")
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.health[provider]
	return h[0], h[1], nil
}

// testEnv is a server wired to a fake read model and a mocked Temporal client. The mock fails
// the test on any call it was not told to expect.
type testEnv struct {
	store    *fakeStore
	temporal *mocks.Client
	handler  http.Handler
	// server is the BFF behind handler; a test that changes it rebuilds handler with server.routes().
	server *server
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	fs := newFakeStore()
	tc := mocks.NewClient(t)
	s := &server{
		cfg: config.API{Common: config.Common{StorefrontURL: "https://shop.example"}, CheckoutWait: 200 * time.Millisecond, MaxBodyBytes: 65536,
			SessionIdleTimeout: time.Hour, SessionLifetime: 24 * time.Hour},
		store:    fs,
		temporal: tc,
		log:      slog.New(slog.DiscardHandler),
	}
	return &testEnv{store: fs, temporal: tc, handler: s.routes(), server: s}
}

// assertTemporalUntouched fails the test if the BFF called the Temporal client at all.
func (e *testEnv) assertTemporalUntouched(t *testing.T) {
	t.Helper()
	e.temporal.AssertNotCalled(t, "NewWithStartWorkflowOperation", mock.Anything, mock.Anything, mock.Anything)
	e.temporal.AssertNotCalled(t, "UpdateWithStartWorkflow", mock.Anything, mock.Anything)
	e.temporal.AssertNotCalled(t, "DescribeWorkflowExecution", mock.Anything, mock.Anything, mock.Anything)
	if n := len(e.temporal.Calls); n != 0 {
		t.Errorf("Temporal client got %d calls, want none: %v", n, e.temporal.Calls)
	}
}

// fakeStartOp stands for the start operation the BFF builds; it remembers what it was built from.
type fakeStartOp struct {
	opts         client.StartWorkflowOptions
	workflowType any
	args         []any
}

func (*fakeStartOp) Get(context.Context) (client.WorkflowRun, error) {
	return nil, fmt.Errorf("fakeStartOp.Get is not used by the BFF")
}

// startCall is one Update-With-Start as the BFF sent it.
type startCall struct {
	op       *fakeStartOp
	input    workflows.CheckoutInput
	update   client.UpdateWithStartWorkflowOptions
	deadline time.Duration // time left on the call's context; 0 when it had no deadline
}

// workflowBehavior is how the mocked Temporal answers an Update-With-Start.
type workflowBehavior struct {
	// startErr, when set, makes UpdateWithStartWorkflow fail with its result.
	startErr func(ctx context.Context) error
	// get answers the update handle's Get with the checkout state or an error.
	get func(ctx context.Context, in workflows.CheckoutInput, st *workflows.CheckoutState) error
}

// recorder collects the calls a mocked Temporal client received, from any goroutine.
type recorder[C any] struct {
	mu    sync.Mutex
	calls []C
}

func (r *recorder[C]) add(c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder[C]) all() []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// startRecorder collects the Update-With-Start calls.
type startRecorder = recorder[startCall]

// expectUpdateWithStart makes the mocked Temporal accept Update-With-Start calls and answer them
// with b; it returns the calls as they were made.
func (e *testEnv) expectUpdateWithStart(t *testing.T, b workflowBehavior) *startRecorder {
	t.Helper()
	rec := &startRecorder{}
	e.temporal.On("NewWithStartWorkflowOperation", mock.Anything, mock.Anything, mock.Anything).
		Return(func(opts client.StartWorkflowOptions, wf any, args ...any) client.WithStartWorkflowOperation {
			return &fakeStartOp{opts: opts, workflowType: wf, args: args}
		})
	e.temporal.On("UpdateWithStartWorkflow", mock.Anything, mock.Anything).
		Return(func(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
			op, ok := o.StartWorkflowOperation.(*fakeStartOp)
			if !ok {
				return nil, fmt.Errorf("start operation is %T, not the one NewWithStartWorkflowOperation returned", o.StartWorkflowOperation)
			}
			call := startCall{op: op, update: o}
			if len(op.args) == 1 {
				call.input, _ = op.args[0].(workflows.CheckoutInput)
			}
			if dl, ok := ctx.Deadline(); ok {
				call.deadline = time.Until(dl)
			}
			rec.add(call)
			if b.startErr != nil {
				return nil, b.startErr(ctx)
			}
			h := mocks.NewWorkflowUpdateHandle(t)
			h.On("Get", mock.Anything, mock.Anything).Return(func(ctx context.Context, ptr any) error {
				st, ok := ptr.(*workflows.CheckoutState)
				if !ok {
					return fmt.Errorf("update result pointer is %T, want *workflows.CheckoutState", ptr)
				}
				return b.get(ctx, call.input, st)
			}).Once()
			return h, nil
		})
	return rec
}

// completedCheckout is a workflow that completes the checkout it was started for.
func completedCheckout(_ context.Context, in workflows.CheckoutInput, st *workflows.CheckoutState) error {
	*st = workflows.CheckoutState{CheckoutID: in.CheckoutID, OrderID: "ord_1", Status: domain.OrderCompleted, Amount: 6200, Currency: "EUR"}
	return nil
}

// waitForever is a workflow whose outcome does not come before the BFF stops waiting.
func waitForever(ctx context.Context, _ workflows.CheckoutInput, _ *workflows.CheckoutState) error {
	<-ctx.Done()
	return ctx.Err()
}

// validCheckout is a request body that passes validation: tshirt-m x2 and mug x1.
func validCheckout() map[string]any {
	return map[string]any{
		"email":   "ann@example.com",
		"name":    "Ann Lee",
		"items":   items(line("tshirt-m", 2), line("mug", 1)),
		"payment": map[string]any{"provider": "stripe", "token": "pm_card_visa"},
	}
}

func line(sku string, quantity any) map[string]any {
	return map[string]any{"sku": sku, "quantity": quantity}
}

func items(lines ...map[string]any) []any {
	out := make([]any, len(lines))
	for i, l := range lines {
		out[i] = l
	}
	return out
}

// checkoutJSON is validCheckout changed by edit, as JSON.
func checkoutJSON(edit func(m map[string]any)) string {
	m := validCheckout()
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// newCheckoutRequest builds POST /api/v1/checkouts; an empty key sends no Idempotency-Key.
func newCheckoutRequest(key, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/checkouts", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req
}

// requestKey is the Idempotency-Key a bad-input case sends: testKey unless it names its own,
// and none when omit is set.
func requestKey(key string, omit bool) string {
	if omit {
		return ""
	}
	return cmp.Or(key, testKey)
}

// withUnknownLength makes req send body as a stream without a Content-Length.
func withUnknownLength(req *http.Request, body string) *http.Request {
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// postCheckout sends a checkout with the given Idempotency-Key (none when empty).
func postCheckout(h http.Handler, key, body string) *httptest.ResponseRecorder {
	return serve(h, newCheckoutRequest(key, body))
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	return serve(h, httptest.NewRequest(http.MethodGet, path, nil))
}

// errorBody is the "error" object of an error response.
type errorBody struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Field        string `json:"field"`
	MissingScope string `json:"missing_scope"`
}

// decodeError checks that rec is a JSON error response with the given status and returns its error object.
// cardLike is a card-like number that tests send where a token belongs. It is built at run time,
// so that no card number sits in the source.
var cardLike = strings.Repeat("4242", 4)

// assertBadInputRefused checks the answer to a request refused for bad input: the status, the
// error's code and field, no card number echoed, and no Temporal call at all.
func (e *testEnv) assertBadInputRefused(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int, wantCode, wantField string) {
	t.Helper()
	got := decodeError(t, rec, wantStatus)
	if got.Code != wantCode || got.Field != wantField {
		t.Errorf("error = {code %q, field %q}, want {code %q, field %q}; message %q",
			got.Code, got.Field, wantCode, wantField, got.Message)
	}
	if strings.Contains(rec.Body.String(), cardLike) {
		t.Errorf("the response echoes the card number: %s", rec.Body)
	}
	e.assertTemporalUntouched(t)
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) errorBody {
	t.Helper()
	if rec.Code != wantStatus {
		t.Errorf("status = %d, want %d; body: %s", rec.Code, wantStatus, rec.Body)
	}
	assertJSONContentType(t, rec)
	var env struct {
		Error *errorBody `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("error body is not {\"error\":{...}} JSON: %v; body: %s", err, rec.Body)
	}
	if env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("error body lacks error.code or error.message: %s", rec.Body)
	}
	return *env.Error
}

func assertJSONContentType(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// checkoutBody is a checkout response as the storefront reads it.
type checkoutBody struct {
	CheckoutID  string `json:"checkout_id"`
	Status      string `json:"status"`
	OrderID     string `json:"order_id"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	RedirectURL string `json:"redirect_url"`
	StatusURL   string `json:"status_url"`
	Failure     *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"failure"`
	Items []struct {
		SKU        string `json:"sku"`
		Name       string `json:"name"`
		Quantity   int    `json:"quantity"`
		UnitAmount int64  `json:"unit_amount"`
		LineAmount int64  `json:"line_amount"`
	} `json:"items"`
}

// decodeCheckoutBody checks that rec is a JSON checkout with the given status and returns it, with
// the set of top-level keys it has.
func decodeCheckoutBody(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) (checkoutBody, map[string]json.RawMessage) {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status = %d, want %d; body: %s", rec.Code, wantStatus, rec.Body)
	}
	assertJSONContentType(t, rec)
	var body checkoutBody
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode checkout: %v; body: %s", err, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &keys); err != nil {
		t.Fatalf("decode checkout: %v; body: %s", err, rec.Body)
	}
	return body, keys
}

// requestHashOf is the hash the BFF computes for a valid body.
func requestHashOf(t *testing.T, body string) string {
	t.Helper()
	req, err := decodeCheckout(strings.NewReader(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	customer, aerr := req.validate()
	if aerr != nil {
		t.Fatalf("validate %s: %v", body, aerr)
	}
	return req.hash(customer)
}

// jsonKeys lists every object key in v's JSON form, at any depth.
func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			for k, v := range n {
				keys = append(keys, k)
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	walk(tree)
	return keys
}
