package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

func mustStaffKey() string {
	k, err := staffkey.Generate()
	if err != nil {
		panic(err)
	}
	return k
}

var (
	// testStaffKey holds every scope; every fakeStore knows it.
	testStaffKey = mustStaffKey()
	// unknownStaffKey is well formed, and no fakeStore knows it.
	unknownStaffKey = mustStaffKey()
)

const testStaffKeyID = "5a1f0000-0000-4000-8000-000000000001"

// fakeStaff is the staff part of the fake store: keys by hash, the audit rows as written, and
// the ledger and events that the support read shows.
type fakeStaff struct {
	staffMu   sync.Mutex
	staffKeys map[string]staffkey.Key
	audit     []store.StaffAction
	touched   []string
	auditErr  error // fails BeginStaffAudit
	finishErr error // fails FinishStaffAudit
	payments  map[string][]store.Payment
	events    map[string][]store.OrderEvent
}

func newFakeStaff() map[string]staffkey.Key {
	return map[string]staffkey.Key{string(staffkey.Hash(testStaffKey)): {ID: testStaffKeyID, Name: "Test", Scopes: staffkey.Scopes()}}
}

// addStaffKey makes a key with scopes and returns its text and id.
func (f *fakeStaff) addStaffKey(id string, scopes ...string) string {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	secret := mustStaffKey()
	f.staffKeys[string(staffkey.Hash(secret))] = staffkey.Key{ID: id, Name: "Staff " + id, Prefix: staffkey.DisplayPrefix(secret), Scopes: scopes}
	return secret
}

func (f *fakeStaff) StaffKeyByHash(_ context.Context, hash []byte) (staffkey.Key, error) {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	k, ok := f.staffKeys[string(hash)]
	if !ok || k.RevokedAt != nil {
		return staffkey.Key{}, staffkey.ErrUnknown
	}
	return k, nil
}

func (f *fakeStaff) TouchStaffKey(_ context.Context, id string) error {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	f.touched = append(f.touched, id)
	return nil
}

func (f *fakeStaff) BeginStaffAudit(_ context.Context, a store.StaffAction) (int64, error) {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	if f.auditErr != nil {
		return 0, f.auditErr
	}
	a.ID = int64(len(f.audit) + 1)
	if a.Outcome == "" {
		a.Outcome = store.AuditAttempted
	}
	f.audit = append(f.audit, a)
	return a.ID, nil
}

func (f *fakeStaff) FinishStaffAudit(_ context.Context, id int64, outcome string, status int, detail map[string]any) error {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	if f.finishErr != nil {
		return f.finishErr
	}
	a := &f.audit[id-1]
	if a.Outcome != store.AuditAttempted {
		return store.ErrNotFound
	}
	a.Outcome, a.Status = outcome, status
	if a.Detail == nil {
		a.Detail = map[string]any{}
	}
	for k, v := range detail {
		a.Detail[k] = v
	}
	return nil
}

func (f *fakeStaff) StaffAudit(_ context.Context, flt store.AuditFilter) ([]store.StaffAction, error) {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	var out []store.StaffAction
	for _, a := range slices.Backward(f.audit) {
		if (flt.Before == 0 || a.ID < flt.Before) && (flt.Target == "" || a.Target == flt.Target) && len(out) < flt.Limit {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeStaff) PaymentsForOrder(_ context.Context, orderID string) ([]store.Payment, error) {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	return f.payments[orderID], nil
}

func (f *fakeStaff) OrderEvents(_ context.Context, orderID string) ([]store.OrderEvent, error) {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	return f.events[orderID], nil
}

func (f *fakeStaff) auditRows() []store.StaffAction {
	f.staffMu.Lock()
	defer f.staffMu.Unlock()
	return slices.Clone(f.audit)
}

func staffGet(path, key string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

func TestStaffRoutesRefuseMissingUnknownAndRevokedKeys(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	revoked := env.store.addStaffKey("revoked-key", staffkey.Scopes()...)
	env.store.staffMu.Lock()
	at := time.Now()
	k := env.store.staffKeys[string(staffkey.Hash(revoked))]
	k.RevokedAt = &at
	env.store.staffKeys[string(staffkey.Hash(revoked))] = k
	env.store.staffMu.Unlock()

	for name, auth := range map[string]string{
		"no key": "", "the old shared key": "Bearer staff-secret-key", "unknown": "Bearer " + unknownStaffKey,
		"revoked": "Bearer " + revoked, "not a bearer": "Basic " + testStaffKey,
	} {
		for _, req := range []*http.Request{
			refundRequestTo(paidOrderID, "refund-key-1", "", `{"amount":100}`),
			staffGet("/api/v1/staff/orders/"+paidOrderID, ""),
			staffGet("/api/v1/staff/audit", ""),
		} {
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := serve(env.handler, req)
			if got := decodeError(t, rec, http.StatusUnauthorized); got.Code != "unauthorized" {
				t.Errorf("%s %s: %+v", name, req.URL.Path, got)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate %q", name, req.URL.Path, rec.Header().Get("WWW-Authenticate"))
			}
		}
	}
	env.assertTemporalUntouched(t)
	if rows := env.store.auditRows(); len(rows) != 0 {
		t.Errorf("audit rows for unauthenticated requests: %+v", rows)
	}
	// Nothing was read or claimed on their behalf.
	env.store.assertCalls(t, "OrderByID", 0)
	if len(env.store.keys) != 0 {
		t.Errorf("unauthenticated requests took Idempotency-Keys: %v", env.store.keys)
	}
}

func TestStaffKeyWithoutTheScopeIsForbiddenAndAudited(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	support := env.store.addStaffKey("support-key", staffkey.ScopeOrdersRead)

	rec := serve(env.handler, refundRequestTo(paidOrderID, "refund-key-1", support, `{"amount":100}`))
	if got := decodeError(t, rec, http.StatusForbidden); got.Code != "forbidden" || got.MissingScope != staffkey.ScopeRefunds {
		t.Fatalf("refund with orders:read: %+v", got)
	}
	rec = serve(env.handler, staffGet("/api/v1/staff/audit", support))
	if got := decodeError(t, rec, http.StatusForbidden); got.MissingScope != staffkey.ScopeOps {
		t.Fatalf("audit with orders:read: %+v", got)
	}
	// Nothing started, no order read for the refund, no key taken.
	env.assertTemporalUntouched(t)
	env.store.assertCalls(t, "OrderByID", 0)
	if len(env.store.keys) != 0 {
		t.Errorf("a forbidden request took an Idempotency-Key: %v", env.store.keys)
	}
	rows := env.store.auditRows()
	if len(rows) != 2 {
		t.Fatalf("audit rows %+v, want one per refused action", rows)
	}
	for i, want := range []struct{ action, target, scope string }{
		{actionRefundCreate, paidOrderID, staffkey.ScopeRefunds}, {actionAuditRead, "", staffkey.ScopeOps},
	} {
		r := rows[i]
		if r.StaffKeyID != "support-key" || r.Action != want.action || r.Target != want.target || r.Outcome != store.AuditForbidden ||
			r.Status != http.StatusForbidden || r.Detail["missing_scope"] != want.scope || r.RequestID == "" {
			t.Errorf("audit row %d: %+v", i, r)
		}
	}

	// The scope it holds works.
	if rec := serve(env.handler, staffGet("/api/v1/staff/orders/"+paidOrderID, support)); rec.Code != http.StatusOK {
		t.Fatalf("order read with orders:read: %d %s", rec.Code, rec.Body)
	}
}

// expectRefund makes the mocked Temporal run every Refund workflow to out, and counts the starts.
func expectRefund(t *testing.T, env *testEnv, out workflows.RefundOutcome) *recorder[string] {
	ids := &recorder[string]{}
	env.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.RefundWorkflowType, mock.Anything).
		Return(func(_ context.Context, opts client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
			ids.add(opts.ID)
			run := mocks.NewWorkflowRun(t)
			run.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, ptr any) error {
				*ptr.(*workflows.RefundOutcome) = out
				return nil
			}).Once()
			return run, nil
		})
	return ids
}

func TestEveryStaffRefundIsAuditedWithItsKey(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	refunder := env.store.addStaffKey("refunder-key", staffkey.ScopeRefunds)
	starts := expectRefund(t, env, workflows.RefundOutcome{OrderID: paidOrderID, Status: workflows.RefundSucceeded, Amount: 2000,
		Currency: "usd", OrderStatus: "partially_refunded", RefundedTotal: 2000})

	req := refundRequestTo(paidOrderID, "refund-key-1", refunder, `{"amount":2000}`)
	req.Header.Set("X-Request-Id", "req-refund-1")
	if rec := serve(env.handler, req); rec.Code != http.StatusCreated {
		t.Fatalf("refund: %d %s", rec.Code, rec.Body)
	}
	// The same key again replays the answer; it is another staff action, audited as a replay.
	if rec := serve(env.handler, refundRequestTo(paidOrderID, "refund-key-1", refunder, `{"amount":2000}`)); rec.Code != http.StatusCreated {
		t.Fatalf("replay: %d %s", rec.Code, rec.Body)
	}
	// Refused past authentication: an unknown order.
	const unknownOrder = "00000000-0000-4000-8000-000000000000"
	if rec := serve(env.handler, refundRequestTo(unknownOrder, "refund-key-2", refunder, `{}`)); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown order: %d %s", rec.Code, rec.Body)
	}
	if n := len(starts.all()); n != 1 {
		t.Fatalf("%d Refund workflows started, want 1", n)
	}

	rows := env.store.auditRows()
	if len(rows) != 3 {
		t.Fatalf("audit rows %+v, want 3", rows)
	}
	first, replay, refused := rows[0], rows[1], rows[2]
	if first.StaffKeyID != "refunder-key" || first.Action != actionRefundCreate || first.Target != paidOrderID ||
		first.RequestID != "req-refund-1" || first.Outcome != store.AuditSucceeded || first.Status != http.StatusCreated ||
		first.Detail["amount"] != int64(2000) || first.Detail["idempotency_key"] != "refund-key-1" || first.Detail["replayed"] != nil {
		t.Errorf("refund row %+v", first)
	}
	if replay.StaffKeyID != "refunder-key" || replay.Outcome != store.AuditSucceeded || replay.Detail["replayed"] != true {
		t.Errorf("replay row %+v", replay)
	}
	if refused.StaffKeyID != "refunder-key" || refused.Target != unknownOrder || refused.Outcome != store.AuditRefused ||
		refused.Status != http.StatusNotFound || refused.Detail["error_code"] != "order_not_found" {
		t.Errorf("refused row %+v", refused)
	}
	// The key's use was recorded (the fake store lets every touch through).
	if !slices.Contains(env.store.touched, "refunder-key") {
		t.Errorf("touched %v", env.store.touched)
	}
}

func TestNoStaffActionRunsUnaudited(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	env.store.auditErr = errors.New("audit table unreachable")
	for _, req := range []*http.Request{
		refundRequestTo(paidOrderID, "refund-key-1", testStaffKey, `{"amount":2000}`),
		staffGet("/api/v1/staff/orders/"+paidOrderID, testStaffKey),
	} {
		rec := serve(env.handler, req)
		if got := decodeError(t, rec, http.StatusServiceUnavailable); got.Code != "service_unavailable" || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s: %+v, Retry-After %q", req.URL.Path, got, rec.Header().Get("Retry-After"))
		}
	}
	env.assertTemporalUntouched(t)
	env.store.assertCalls(t, "OrderByID", 0)
	if len(env.store.keys) != 0 {
		t.Errorf("an unaudited request took an Idempotency-Key: %v", env.store.keys)
	}
}

func TestAnAuditOutcomeThatCannotBeWrittenLeavesTheRowAttempted(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	env.store.finishErr = errors.New("connection reset")
	if rec := serve(env.handler, staffGet("/api/v1/staff/orders/"+paidOrderID, testStaffKey)); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rows := env.store.auditRows()
	if len(rows) != 1 || rows[0].Outcome != store.AuditAttempted || rows[0].StaffKeyID != testStaffKeyID {
		t.Fatalf("audit rows %+v, want the action on record as attempted", rows)
	}
}

func TestStaffOrderShowsTheLedgerAndEvents(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, CheckoutID: "chk_1", Status: domain.OrderPartiallyRefunded, TotalAmount: 6200,
		RefundedAmount: 2000, Currency: "usd", Email: "ada@example.com", Provider: "stripe", ProviderPaymentRef: "pi_1"})
	env.store.payments[paidOrderID] = []store.Payment{
		{PaymentAttempt: store.PaymentAttempt{OrderID: paidOrderID, Kind: domain.PaymentCharge, Provider: "stripe", IdempotencyKey: "checkout-k/charge",
			Amount: 6200, Currency: "usd"}, Status: domain.PaymentSucceeded, ProviderRef: "pi_1", Attempts: 1},
		{PaymentAttempt: store.PaymentAttempt{OrderID: paidOrderID, Kind: domain.PaymentRefund, Provider: "stripe", IdempotencyKey: "refund-x",
			Amount: 2000, Currency: "usd"}, Status: domain.PaymentSucceeded, ProviderRef: "re_1", Attempts: 1},
	}
	env.store.events[paidOrderID] = []store.OrderEvent{{Provider: "stripe", EventID: "evt_1", Type: "refunded", Amount: 2000, Currency: "usd"}}
	reader := env.store.addStaffKey("reader-key", staffkey.ScopeOrdersRead)

	rec := serve(env.handler, staffGet("/api/v1/staff/orders/"+paidOrderID, reader))
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Cache-Control"), rec.Body)
	}
	var body struct {
		Order struct {
			ID             string `json:"id"`
			Status         string `json:"status"`
			RefundedAmount int64  `json:"refunded_amount"`
		} `json:"order"`
		Payments []struct {
			Kind, Status, ProviderRef string
			Amount                    int64
		} `json:"payments"`
		Events []store.OrderEvent `json:"events"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Order.ID != paidOrderID || body.Order.Status != "partially_refunded" || body.Order.RefundedAmount != 2000 ||
		len(body.Payments) != 2 || body.Payments[1].Kind != "refund" || body.Payments[1].Amount != 2000 ||
		len(body.Events) != 1 || body.Events[0].EventID != "evt_1" {
		t.Fatalf("body %s", rec.Body)
	}
	if rec := serve(env.handler, staffGet("/api/v1/staff/orders/not-an-order", reader)); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown order: %d %s", rec.Code, rec.Body)
	}
	rows := env.store.auditRows()
	if len(rows) != 2 || rows[0].Action != actionOrderRead || rows[0].StaffKeyID != "reader-key" || rows[0].Outcome != store.AuditSucceeded ||
		rows[1].Target != "not-an-order" || rows[1].Outcome != store.AuditRefused {
		t.Fatalf("audit rows %+v", rows)
	}
	env.assertTemporalUntouched(t)
}

func TestStaffAuditListsNewestFirstInPages(t *testing.T) {
	env, _ := paymentsEnv(t)
	env.store.addOrder(store.Order{ID: paidOrderID, Status: "completed", TotalAmount: 6200, Currency: "usd"})
	ops := env.store.addStaffKey("ops-key", staffkey.ScopeOps)
	for range 3 {
		if rec := serve(env.handler, staffGet("/api/v1/staff/orders/"+paidOrderID, testStaffKey)); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	rec := serve(env.handler, staffGet("/api/v1/staff/audit?limit=2", ops))
	var page struct {
		Entries    []store.StaffAction `json:"entries"`
		NextBefore int64               `json:"next_before"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &page) != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// The read itself is the newest row, still attempted while it lists.
	if len(page.Entries) != 2 || page.Entries[0].ID != 4 || page.Entries[0].Action != actionAuditRead || page.Entries[0].StaffKeyID != "ops-key" ||
		page.Entries[1].ID != 3 || page.Entries[1].StaffKeyID != testStaffKeyID || page.NextBefore != 3 {
		t.Fatalf("page %+v", page)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "before=-1", "before=abc"} {
		rec := serve(env.handler, staffGet("/api/v1/staff/audit?"+q, ops))
		if got := decodeError(t, rec, http.StatusBadRequest); got.Field == "" {
			t.Errorf("%s: %+v", q, got)
		}
	}
}
