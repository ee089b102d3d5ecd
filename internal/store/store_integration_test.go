//go:build integration

package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartflow/cartflow/internal/dev/testdb"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// The package's integration tests share one PostgreSQL server (see testdb); each test gets its own
// migrated and seeded database, so tests never see each other's rows and run in parallel.
var pg *testdb.Server

func TestMain(m *testing.M) { os.Exit(testdb.Main(m, &pg)) }

// testDB is one test's private, migrated database seeded with the dev catalog.
type testDB struct {
	store *store.Store
	pool  *pgxpool.Pool
}

// newTestDB gives t a fresh database (or schema) of its own, dropped when t ends.
func newTestDB(t *testing.T) *testDB {
	t.Helper()
	pool := pg.NewDB(t)
	return &testDB{store: store.New(pool), pool: pool}
}

// count runs a SELECT count(*) query.
func (db *testDB) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// exec runs a statement that must succeed.
func (db *testDB) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := db.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// orderRow is an orders row as stored, NULLs kept distinct from empty values.
type orderRow struct {
	Status             string
	TotalAmount        int64
	Currency           *string
	RefundedAmount     int64
	UserID             *string
	ProviderPaymentRef *string
	FailureCode        *string
	DeclineCode        *string
	FailureMessage     *string
	CompletedAt        *time.Time
}

func (db *testDB) orderRow(t *testing.T, orderID string) orderRow {
	t.Helper()
	var r orderRow
	err := db.pool.QueryRow(context.Background(), `SELECT status, total_amount, currency, refunded_amount, user_id::text,
		provider_payment_ref, failure_code, decline_code, failure_message, completed_at FROM orders WHERE id = $1`, orderID).
		Scan(&r.Status, &r.TotalAmount, &r.Currency, &r.RefundedAmount, &r.UserID,
			&r.ProviderPaymentRef, &r.FailureCode, &r.DeclineCode, &r.FailureMessage, &r.CompletedAt)
	if err != nil {
		t.Fatalf("read order %s: %v", orderID, err)
	}
	return r
}

// itemRows returns an order's order_items rows, by line number.
func (db *testDB) itemRows(t *testing.T, orderID string) []store.PricedLine {
	t.Helper()
	rows, err := db.pool.Query(context.Background(), `SELECT line_no, sku, name, quantity, unit_amount, line_amount
		FROM order_items WHERE order_id = $1 ORDER BY line_no`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.PricedLine])
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// paymentRow is a payments row as stored.
type paymentRow struct {
	Kind        string
	Status      string
	Amount      int64
	ProviderRef *string
	FailureCode *string
	DeclineCode *string
	Attempts    int
}

func (db *testDB) paymentRow(t *testing.T, key string) paymentRow {
	t.Helper()
	var r paymentRow
	err := db.pool.QueryRow(context.Background(), `SELECT kind, status, amount, provider_ref, failure_code, decline_code, attempts
		FROM payments WHERE idempotency_key = $1`, key).
		Scan(&r.Kind, &r.Status, &r.Amount, &r.ProviderRef, &r.FailureCode, &r.DeclineCode, &r.Attempts)
	if err != nil {
		t.Fatalf("read payment %s: %v", key, err)
	}
	return r
}

var checkoutSeq atomic.Int64

// newOrder returns a NewOrder for a fresh checkout with the given cart.
func newOrder(lines ...store.LineRequest) store.NewOrder {
	n := checkoutSeq.Add(1)
	return store.NewOrder{
		CheckoutID:     fmt.Sprintf("chk_%d", n),
		IdempotencyKey: fmt.Sprintf("idem-%d", n),
		RequestHash:    fmt.Sprintf("hash-%d", n),
		WorkflowID:     fmt.Sprintf("checkout-chk_%d", n),
		Email:          "ada@example.com",
		Name:           "Ada Lovelace",
		Provider:       "stripe",
		Lines:          lines,
	}
}

// defaultCart is two T-shirts and a mug: 2×2500 + 1200 = 6200 usd.
var defaultCart = []store.LineRequest{{SKU: "tshirt-classic", Quantity: 2}, {SKU: "mug-enamel", Quantity: 1}}

// pendingOrder writes a priced order for defaultCart.
func (db *testDB) pendingOrder(t *testing.T) store.Order {
	t.Helper()
	o, err := db.store.CreateOrder(context.Background(), newOrder(defaultCart...))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != domain.OrderPending || o.TotalAmount != 6200 {
		t.Fatalf("new order: status %q total %d", o.Status, o.TotalAmount)
	}
	return o
}

// paidOrder writes an order and records a successful charge for it, returning the order and the charge's key.
func (db *testDB) paidOrder(t *testing.T) (store.Order, string) {
	t.Helper()
	ctx := context.Background()
	o := db.pendingOrder(t)
	key := "charge-" + o.CheckoutID
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: key, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
		t.Fatal(err)
	}
	if err := db.store.SettlePayment(ctx, key, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_" + o.CheckoutID}); err != nil {
		t.Fatal(err)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderPaid) {
		t.Fatalf("order after a successful charge is %q, want paid", got)
	}
	return o, key
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// wantErrIs fails unless errors.Is(err, target).
func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// insertBarrier makes concurrent INSERTs into a table line up: a BEFORE INSERT trigger, which
// leaves the row as it is, waits for an advisory lock that hold takes, so that the inserts of
// racing transactions all start together once the test releases it. Only this test's
// database has the trigger.
type insertBarrier struct {
	db  *testDB
	key int64
}

var barrierSeq atomic.Int64

func (db *testDB) insertBarrier(t *testing.T, table string) *insertBarrier {
	t.Helper()
	b := &insertBarrier{db: db, key: 7_000_000 + barrierSeq.Add(1)}
	fn := pgx.Identifier{"test_barrier_" + table}.Sanitize()
	db.exec(t, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(%d); RETURN NEW; END $$`, fn, b.key))
	db.exec(t, fmt.Sprintf(`CREATE TRIGGER test_barrier BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()`,
		pgx.Identifier{table}.Sanitize(), fn))
	return b
}

// hold closes the barrier. The returned release opens it once n inserts wait on it, or once
// the number waiting has not grown for a while (code that serializes its callers lets fewer
// through).
func (b *insertBarrier) hold(t *testing.T) (release func(n int)) {
	t.Helper()
	ctx := context.Background()
	conn, err := b.db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, b.key); err != nil {
		conn.Release()
		t.Fatal(err)
	}
	return func(n int) {
		defer conn.Release()
		waiting, changed := 0, time.Now()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			// A bigint advisory key is shown as classid (high half) and objid (low half).
			c := b.db.count(t, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND classid::bigint = ($1::bigint >> 32) AND objid::bigint = ($1::bigint & 4294967295)`, b.key)
			if c >= n || (c > 0 && c == waiting && time.Since(changed) > 250*time.Millisecond) {
				break
			}
			if c != waiting {
				waiting, changed = c, time.Now()
			}
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, b.key); err != nil {
			t.Error(err)
		}
	}
}

func TestListProductsReturnsActiveCatalogBySKU(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()

	got, err := db.store.ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Product{
		{SKU: "mug-enamel", Name: "Enamel mug", Kind: store.KindOneOff, PriceAmount: 1200, Currency: "usd", Active: true},
		{SKU: "plan-monthly", Name: "cartflow Plus, monthly", Kind: store.KindSubscription, PriceAmount: 900, Currency: "usd",
			BillingInterval: "month", TrialDays: 14, Active: true},
		{SKU: "plan-yearly", Name: "cartflow Plus, yearly", Kind: store.KindSubscription, PriceAmount: 9000, Currency: "usd",
			BillingInterval: "year", Active: true},
		{SKU: "sticker-pack", Name: "Sticker pack", Kind: store.KindOneOff, PriceAmount: 500, Currency: "usd", Active: true},
		{SKU: "tshirt-classic", Name: "Classic T-shirt", Kind: store.KindOneOff, PriceAmount: 2500, Currency: "usd", Active: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListProducts:\n got %+v\nwant %+v", got, want)
	}

	// Retiring a product takes it off the list; a new one appears in SKU order.
	db.exec(t, `UPDATE products SET active = false WHERE sku = 'mug-enamel'`)
	db.exec(t, `INSERT INTO products (sku, name, kind, price_amount, currency) VALUES ('apron', 'Apron', 'one_off', 1900, 'usd')`)
	got, err = db.store.ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var skus []string
	for _, p := range got {
		skus = append(skus, p.SKU)
	}
	if want := []string{"apron", "plan-monthly", "plan-yearly", "sticker-pack", "tshirt-classic"}; !slices.Equal(skus, want) {
		t.Fatalf("ListProducts after catalog changes: %v, want %v", skus, want)
	}
}

func TestProductsBySKUIncludesInactive(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()

	got, err := db.store.ProductsBySKU(ctx, []string{"poster-retired", "tshirt-classic", "no-such-sku"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.Product{
		"poster-retired": {SKU: "poster-retired", Name: "Retired poster", Kind: store.KindOneOff, PriceAmount: 1500, Currency: "usd", Active: false},
		"tshirt-classic": {SKU: "tshirt-classic", Name: "Classic T-shirt", Kind: store.KindOneOff, PriceAmount: 2500, Currency: "usd", Active: true},
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ProductsBySKU:\n got %+v\nwant %+v", got, want)
	}

	got, err = db.store.ProductsBySKU(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("ProductsBySKU(nil) = %v, %v; want an empty map", got, err)
	}
}

func TestCreateOrderPricesFromCatalog(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()

	n := newOrder(defaultCart...)
	o, err := db.store.CreateOrder(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []store.PricedLine{
		{LineNo: 1, SKU: "tshirt-classic", Name: "Classic T-shirt", Quantity: 2, UnitAmount: 2500, LineAmount: 5000},
		{LineNo: 2, SKU: "mug-enamel", Name: "Enamel mug", Quantity: 1, UnitAmount: 1200, LineAmount: 1200},
	}
	if o.ID == "" || o.CheckoutID != n.CheckoutID || o.IdempotencyKey != n.IdempotencyKey || o.RequestHash != n.RequestHash ||
		o.WorkflowID != n.WorkflowID || o.Email != n.Email || o.Name != n.Name || o.Provider != "stripe" ||
		o.Status != domain.OrderPending || o.TotalAmount != 6200 || o.Currency != "usd" || o.RefundedAmount != 0 ||
		o.UserID != "" || o.FailureCode != "" || o.CompletedAt != nil || o.CreatedAt.IsZero() || !slices.Equal(o.Lines, wantLines) {
		t.Fatalf("CreateOrder returned %+v", o)
	}
	row := db.orderRow(t, o.ID)
	if row.Status != string(domain.OrderPending) || row.TotalAmount != 6200 || deref(row.Currency) != "usd" || row.FailureCode != nil ||
		row.FailureMessage != nil || row.UserID != nil {
		t.Fatalf("orders row %+v", row)
	}
	if items := db.itemRows(t, o.ID); !slices.Equal(items, wantLines) {
		t.Fatalf("order_items rows %+v, want %+v", items, wantLines)
	}

	// A retried activity, even one carrying another cart, gets the first order back unchanged.
	again := n
	again.Lines = []store.LineRequest{{SKU: "sticker-pack", Quantity: 5}}
	o2, err := db.store.CreateOrder(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if o2.ID != o.ID || o2.TotalAmount != 6200 || !slices.Equal(o2.Lines, wantLines) {
		t.Fatalf("second CreateOrder returned %+v, want order %s unchanged", o2, o.ID)
	}
	if got := db.count(t, `SELECT count(*) FROM orders WHERE checkout_id = $1`, n.CheckoutID); got != 1 {
		t.Fatalf("%d orders rows for the checkout, want 1", got)
	}
	if got := db.count(t, `SELECT count(*) FROM order_items`); got != 2 {
		t.Fatalf("%d order_items rows, want 2", got)
	}
}

func TestCreateOrderConcurrentRetriesWriteOneOrder(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	barrier := db.insertBarrier(t, "orders")

	// Several rounds, since each is a race with its own interleaving.
	for round := range 10 {
		n := newOrder(defaultCart...)
		const workers = 10
		var wg sync.WaitGroup
		orders := make([]store.Order, workers)
		errs := make([]error, workers)
		release := barrier.hold(t)
		for i := range workers {
			wg.Go(func() { orders[i], errs[i] = db.store.CreateOrder(ctx, n) })
		}
		release(workers)
		wg.Wait()
		for i := range workers {
			if errs[i] != nil {
				t.Errorf("round %d: CreateOrder #%d: %v", round, i, errs[i])
				continue
			}
			if orders[i].ID != orders[0].ID || orders[i].TotalAmount != 6200 || !slices.Equal(orders[i].Lines, orders[0].Lines) || len(orders[i].Lines) != 2 {
				t.Errorf("round %d: CreateOrder #%d returned order %s total %d with %d lines, want %s",
					round, i, orders[i].ID, orders[i].TotalAmount, len(orders[i].Lines), orders[0].ID)
			}
		}
		if got := db.count(t, `SELECT count(*) FROM orders WHERE checkout_id = $1`, n.CheckoutID); got != 1 {
			t.Errorf("round %d: %d orders rows, want 1", round, got)
		}
		if got := db.count(t, `SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.checkout_id = $1`, n.CheckoutID); got != 2 {
			t.Errorf("round %d: %d order_items rows, want 2", round, got)
		}
		if t.Failed() {
			return
		}
	}
}

func TestCreateOrderRecordsUnpriceableCartAsFailed(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	db.exec(t, `INSERT INTO products (sku, name, kind, price_amount, currency) VALUES ('tote-eu', 'Tote bag (EU)', 'one_off', 1800, 'eur')`)

	type L = store.LineRequest
	tests := []struct {
		name        string
		lines       []L
		rejection   *domain.Failure
		wantCode    string
		wantMessage string // empty: any non-empty message
	}{
		{name: "inactive product", lines: []L{{"tshirt-classic", 1}, {"poster-retired", 1}}, wantCode: store.CodeProductUnavailable},
		{name: "unknown sku", lines: []L{{"no-such-sku", 1}}, wantCode: store.CodeUnknownSKU},
		{name: "plan beside a product", lines: []L{{"plan-monthly", 1}, {"mug-enamel", 1}}, wantCode: store.CodeSubscriptionCart},
		{name: "mixed currency", lines: []L{{"tshirt-classic", 1}, {"tote-eu", 1}}, wantCode: store.CodeMixedCurrency},
		{name: "empty cart", lines: nil, wantCode: store.CodeEmptyCart},
		{
			// A rejection is recorded as is, even when the cart itself could be priced.
			name: "rejection", lines: defaultCart,
			rejection: &domain.Failure{Code: "fraud_suspected", Message: "this checkout cannot be completed"},
			wantCode:  "fraud_suspected", wantMessage: "this checkout cannot be completed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newOrder(tc.lines...)
			n.Rejection = tc.rejection
			o, err := db.store.CreateOrder(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != domain.OrderFailed || o.FailureCode != tc.wantCode || o.FailureMessage == "" ||
				(tc.wantMessage != "" && o.FailureMessage != tc.wantMessage) || o.TotalAmount != 0 || o.Currency != "" || len(o.Lines) != 0 {
				t.Fatalf("CreateOrder returned %+v, want failed with %s", o, tc.wantCode)
			}
			row := db.orderRow(t, o.ID)
			if row.Status != string(domain.OrderFailed) || deref(row.FailureCode) != tc.wantCode || deref(row.FailureMessage) != o.FailureMessage ||
				row.Currency != nil || row.TotalAmount != 0 || row.DeclineCode != nil {
				t.Fatalf("orders row %+v, want failed with %s, NULL currency and total 0", row, tc.wantCode)
			}
			if items := db.count(t, `SELECT count(*) FROM order_items WHERE order_id = $1`, o.ID); items != 0 {
				t.Fatalf("%d order_items rows for a failed order, want 0", items)
			}
			// Retrying reads the failed order back rather than pricing again.
			again, err := db.store.CreateOrder(ctx, n)
			if err != nil || again.ID != o.ID || again.Status != domain.OrderFailed || again.FailureCode != tc.wantCode {
				t.Fatalf("retried CreateOrder = %+v, %v", again, err)
			}
		})
	}
}

func TestLedgerChargeSucceeded(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o := db.pendingOrder(t)
	attempt := store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: "charge-" + o.ID, Amount: o.TotalAmount, Currency: o.Currency}

	if err := db.store.BeginPayment(ctx, attempt); err != nil {
		t.Fatal(err)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderCharging) {
		t.Fatalf("order is %q after BeginPayment, want charging", got)
	}
	if p := db.paymentRow(t, attempt.IdempotencyKey); p != (paymentRow{Kind: "charge", Status: "pending", Amount: 6200, Attempts: 1}) {
		t.Fatalf("ledger row %+v", p)
	}

	// A retried activity counts another try on the same row.
	if err := db.store.BeginPayment(ctx, attempt); err != nil {
		t.Fatal(err)
	}
	if n := db.count(t, `SELECT count(*) FROM payments WHERE order_id = $1`, o.ID); n != 1 {
		t.Fatalf("%d ledger rows after a retried BeginPayment, want 1", n)
	}
	if p := db.paymentRow(t, attempt.IdempotencyKey); p.Attempts != 2 || p.Status != "pending" {
		t.Fatalf("ledger row after retry %+v, want 2 attempts", p)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderCharging) {
		t.Fatalf("order is %q after a retried BeginPayment, want charging", got)
	}

	succeeded := store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_3Abc"}
	if err := db.store.SettlePayment(ctx, attempt.IdempotencyKey, succeeded); err != nil {
		t.Fatal(err)
	}
	row := db.orderRow(t, o.ID)
	if row.Status != string(domain.OrderPaid) || deref(row.ProviderPaymentRef) != "pi_3Abc" || row.FailureCode != nil {
		t.Fatalf("order after a successful charge %+v", row)
	}
	wantPayment := paymentRow{Kind: "charge", Status: "succeeded", Amount: 6200, ProviderRef: new("pi_3Abc"), Attempts: 2}
	if p := db.paymentRow(t, attempt.IdempotencyKey); !equalPayment(p, wantPayment) {
		t.Fatalf("ledger row %+v, want %+v", p, wantPayment)
	}

	// Settling the same outcome again is a no-op.
	if err := db.store.SettlePayment(ctx, attempt.IdempotencyKey, succeeded); err != nil {
		t.Fatalf("settling twice: %v", err)
	}
	if row := db.orderRow(t, o.ID); row.Status != string(domain.OrderPaid) || deref(row.ProviderPaymentRef) != "pi_3Abc" {
		t.Fatalf("order after settling twice %+v", row)
	}

	// A conflicting outcome is refused and changes nothing.
	err := db.store.SettlePayment(ctx, attempt.IdempotencyKey, store.PaymentOutcome{Status: domain.PaymentFailed,
		Failure: &domain.Failure{Code: "card_declined", Message: "declined"}})
	if err == nil {
		t.Fatal("settling a succeeded charge as failed must fail")
	}
	if p := db.paymentRow(t, attempt.IdempotencyKey); !equalPayment(p, wantPayment) {
		t.Fatalf("ledger row after a conflicting settle %+v", p)
	}
	if row := db.orderRow(t, o.ID); row.Status != string(domain.OrderPaid) || row.FailureCode != nil {
		t.Fatalf("order after a conflicting settle %+v", row)
	}

	// A late retry of BeginPayment neither adds a row, nor counts a try (the ledger answers it
	// without the provider), nor drags the order back to charging.
	if err := db.store.BeginPayment(ctx, attempt); err != nil {
		t.Fatal(err)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderPaid) {
		t.Fatalf("order is %q after a late BeginPayment, want paid", got)
	}

	payments, err := db.store.PaymentsForOrder(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Payment{{PaymentAttempt: store.PaymentAttempt{OrderID: o.ID, Kind: "charge", Provider: "stripe",
		IdempotencyKey: attempt.IdempotencyKey, Amount: 6200, Currency: "usd"}, Status: "succeeded", ProviderRef: "pi_3Abc", Attempts: 2}}
	if !slices.Equal(payments, want) {
		t.Fatalf("PaymentsForOrder = %+v, want %+v", payments, want)
	}
}

func equalPayment(a, b paymentRow) bool {
	return a.Kind == b.Kind && a.Status == b.Status && a.Amount == b.Amount && a.Attempts == b.Attempts &&
		deref(a.ProviderRef) == deref(b.ProviderRef) && (a.ProviderRef == nil) == (b.ProviderRef == nil) &&
		deref(a.FailureCode) == deref(b.FailureCode) && (a.FailureCode == nil) == (b.FailureCode == nil) &&
		deref(a.DeclineCode) == deref(b.DeclineCode) && (a.DeclineCode == nil) == (b.DeclineCode == nil)
}

func TestLedgerChargeDeclined(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o := db.pendingOrder(t)
	key := "charge-" + o.ID
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: key, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
		t.Fatal(err)
	}
	declined := store.PaymentOutcome{Status: domain.PaymentFailed, Failure: &domain.Failure{
		Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}}
	if err := db.store.SettlePayment(ctx, key, declined); err != nil {
		t.Fatal(err)
	}
	row := db.orderRow(t, o.ID)
	if row.Status != string(domain.OrderFailed) || deref(row.FailureCode) != "card_declined" || deref(row.DeclineCode) != "insufficient_funds" ||
		deref(row.FailureMessage) != "Your card has insufficient funds." || row.ProviderPaymentRef != nil {
		t.Fatalf("order after a decline %+v", row)
	}
	want := paymentRow{Kind: "charge", Status: "failed", Amount: 6200, FailureCode: new("card_declined"), DeclineCode: new("insufficient_funds"), Attempts: 1}
	if p := db.paymentRow(t, key); !equalPayment(p, want) {
		t.Fatalf("ledger row %+v, want %+v", p, want)
	}
	if err := db.store.SettlePayment(ctx, key, declined); err != nil {
		t.Fatalf("settling a decline twice: %v", err)
	}
	// The read model carries both codes.
	got, err := db.store.CheckoutByID(ctx, o.CheckoutID)
	if err != nil || got.Status != domain.OrderFailed || got.FailureCode != "card_declined" || got.DeclineCode != "insufficient_funds" {
		t.Fatalf("CheckoutByID = %+v, %v", got, err)
	}
}

func TestLedgerRefund(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o, chargeKey := db.paidOrder(t)
	refundKey := "refund-" + o.ID

	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentRefund, Provider: "stripe",
		IdempotencyKey: refundKey, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
		t.Fatal(err)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderPaid) {
		t.Fatalf("beginning a refund moved the order to %q; it must stay paid until the refund settles", got)
	}
	refunded := store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "re_1",
		OrderReason: &domain.Failure{Code: "registration_failed", Message: "we could not create your account"}}
	for i := range 2 { // the second settle is a retried activity
		if err := db.store.SettlePayment(ctx, refundKey, refunded); err != nil {
			t.Fatalf("settle #%d: %v", i+1, err)
		}
		row := db.orderRow(t, o.ID)
		if row.Status != string(domain.OrderRefunded) || row.RefundedAmount != 6200 || deref(row.FailureCode) != "registration_failed" ||
			deref(row.FailureMessage) != "we could not create your account" || deref(row.ProviderPaymentRef) != "pi_"+o.CheckoutID {
			t.Fatalf("order after settle #%d: %+v", i+1, row)
		}
	}
	payments, err := db.store.PaymentsForOrder(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(payments) != 2 || payments[0].IdempotencyKey != chargeKey || payments[0].Status != "succeeded" ||
		payments[1].Kind != "refund" || payments[1].IdempotencyKey != refundKey || payments[1].Status != "succeeded" ||
		payments[1].ProviderRef != "re_1" || payments[1].Amount != 6200 {
		t.Fatalf("ledger %+v, want the charge then the refund", payments)
	}
}

func TestOrderStatusMachine(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "ada@example.com", "Ada Lovelace")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("complete flow", func(t *testing.T) {
		o := db.pendingOrder(t)
		wantErrIs(t, db.store.CompleteOrder(ctx, o.ID, u.ID), store.ErrTransition)
		if row := db.orderRow(t, o.ID); row.Status != string(domain.OrderPending) || row.UserID != nil || row.CompletedAt != nil {
			t.Fatalf("a refused CompleteOrder changed the order: %+v", row)
		}

		o, _ = db.paidOrder(t)
		if err := db.store.CompleteOrder(ctx, o.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		row := db.orderRow(t, o.ID)
		if row.Status != string(domain.OrderCompleted) || deref(row.UserID) != u.ID || row.CompletedAt == nil {
			t.Fatalf("order after CompleteOrder %+v", row)
		}
		// Completing again is allowed and keeps the first completion time.
		if err := db.store.CompleteOrder(ctx, o.ID, u.ID); err != nil {
			t.Fatalf("repeated CompleteOrder: %v", err)
		}
		if again := db.orderRow(t, o.ID); again.CompletedAt == nil || !again.CompletedAt.Equal(*row.CompletedAt) {
			t.Fatalf("completed_at moved from %v to %v", row.CompletedAt, again.CompletedAt)
		}
		got, err := db.store.CheckoutByID(ctx, o.CheckoutID)
		if err != nil || got.Status != domain.OrderCompleted || got.UserID != u.ID || got.CompletedAt == nil {
			t.Fatalf("CheckoutByID after completion = %+v, %v", got, err)
		}

		wantErrIs(t, db.store.FailOrder(ctx, o.ID, domain.Failure{Code: "late", Message: "too late"}), store.ErrTransition)
		if row := db.orderRow(t, o.ID); row.Status != string(domain.OrderCompleted) || row.FailureCode != nil {
			t.Fatalf("a refused FailOrder changed the order: %+v", row)
		}
	})

	// Every status an order can be in, against the moves the API exposes directly.
	statuses := []domain.OrderStatus{domain.OrderPending, domain.OrderCharging, domain.OrderPaid, domain.OrderCompleted, domain.OrderFailed, domain.OrderRefunded}
	moves := []struct {
		name    string
		to      domain.OrderStatus
		allowed []domain.OrderStatus
		do      func(orderID string) error
	}{
		{"CompleteOrder", domain.OrderCompleted, []domain.OrderStatus{domain.OrderPaid, domain.OrderCompleted},
			func(id string) error { return db.store.CompleteOrder(ctx, id, u.ID) }},
		{"FailOrder", domain.OrderFailed, []domain.OrderStatus{domain.OrderPending, domain.OrderCharging, domain.OrderFailed},
			func(id string) error {
				return db.store.FailOrder(ctx, id, domain.Failure{Code: "workflow_failed", Message: "checkout failed"})
			}},
	}
	for _, mv := range moves {
		for _, from := range statuses {
			t.Run(fmt.Sprintf("%s from %s", mv.name, from), func(t *testing.T) {
				o := db.pendingOrder(t)
				db.exec(t, `UPDATE orders SET status = $2 WHERE id = $1`, o.ID, from)
				err := mv.do(o.ID)
				got := domain.OrderStatus(db.orderRow(t, o.ID).Status)
				if slices.Contains(mv.allowed, from) {
					if err != nil || got != mv.to {
						t.Fatalf("err %v, status %q; want the move to %s", err, got, mv.to)
					}
					return
				}
				if !errors.Is(err, store.ErrTransition) || got != from {
					t.Fatalf("err %v, status %q; want ErrTransition and the order left %s", err, got, from)
				}
			})
		}
	}

	t.Run("FailOrder records the failure", func(t *testing.T) {
		o := db.pendingOrder(t)
		if err := db.store.FailOrder(ctx, o.ID, domain.Failure{Code: "workflow_failed", Message: "checkout failed"}); err != nil {
			t.Fatal(err)
		}
		if row := db.orderRow(t, o.ID); row.Status != string(domain.OrderFailed) || deref(row.FailureCode) != "workflow_failed" ||
			deref(row.FailureMessage) != "checkout failed" {
			t.Fatalf("order after FailOrder %+v", row)
		}
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()

	first, err := db.store.RegisterUser(ctx, "grace@example.com", "Grace Hopper")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || first.Email != "grace@example.com" || first.Name != "Grace Hopper" || first.Status != store.UserPending ||
		first.ConfirmedAt != nil || first.CreatedAt.IsZero() {
		t.Fatalf("RegisterUser = %+v", first)
	}
	second, err := db.store.RegisterUser(ctx, "grace@example.com", "G. Hopper")
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.Name != "Grace Hopper" || second.Status != store.UserPending {
		t.Fatalf("second RegisterUser = %+v, want the first registration %+v", second, first)
	}
	if n := db.count(t, `SELECT count(*) FROM users WHERE email = 'grace@example.com'`); n != 1 {
		t.Fatalf("%d users rows, want 1", n)
	}
	var storedName string
	if err := db.pool.QueryRow(ctx, `SELECT name FROM users WHERE id = $1`, first.ID).Scan(&storedName); err != nil || storedName != "Grace Hopper" {
		t.Fatalf("stored name %q (%v), want the first one", storedName, err)
	}

	confirmed, err := db.store.ConfirmUser(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if confirmed.ID != first.ID || confirmed.Status != store.UserConfirmed || confirmed.ConfirmedAt == nil {
		t.Fatalf("ConfirmUser = %+v", confirmed)
	}
	var status string
	var confirmedAt *time.Time
	if err := db.pool.QueryRow(ctx, `SELECT status, confirmed_at FROM users WHERE id = $1`, first.ID).Scan(&status, &confirmedAt); err != nil {
		t.Fatal(err)
	}
	if status != "confirmed" || confirmedAt == nil || !confirmedAt.Equal(*confirmed.ConfirmedAt) {
		t.Fatalf("users row: status %q confirmed_at %v", status, confirmedAt)
	}
	again, err := db.store.ConfirmUser(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != store.UserConfirmed || again.ConfirmedAt == nil || !again.ConfirmedAt.Equal(*confirmedAt) {
		t.Fatalf("second ConfirmUser moved confirmed_at from %v to %v", confirmedAt, again.ConfirmedAt)
	}
	// Registering a confirmed user again keeps the confirmation.
	if reg, err := db.store.RegisterUser(ctx, "grace@example.com", "Someone Else"); err != nil || reg.Status != store.UserConfirmed {
		t.Fatalf("RegisterUser of a confirmed user = %+v, %v", reg, err)
	}

	byEmail, err := db.store.UserByEmail(ctx, "grace@example.com")
	if err != nil || byEmail.ID != first.ID || byEmail.Status != store.UserConfirmed {
		t.Fatalf("UserByEmail = %+v, %v", byEmail, err)
	}
	_, err = db.store.UserByEmail(ctx, "nobody@example.com")
	wantErrIs(t, err, store.ErrNotFound)
	_, err = db.store.ConfirmUser(ctx, "00000000-0000-4000-8000-000000000000")
	wantErrIs(t, err, store.ErrNotFound)
}

func TestUsersRejectNonNormalizedEmail(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	for _, email := range []string{" A@B.com", "A@b.com", "a@b.com "} {
		t.Run(fmt.Sprintf("%q", email), func(t *testing.T) {
			_, err := db.pool.Exec(ctx, `INSERT INTO users (email, name) VALUES ($1, 'A')`, email)
			wantCheckViolation(t, err, "users_email_check")
			// The store relies on its callers to standardize; the database is the backstop.
			_, err = db.store.RegisterUser(ctx, email, "A")
			wantCheckViolation(t, err, "users_email_check")
		})
	}
	if n := db.count(t, `SELECT count(*) FROM users`); n != 0 {
		t.Fatalf("%d users rows, want none", n)
	}
}

func wantCheckViolation(t *testing.T, err error, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != constraint {
		t.Fatalf("got %v, want a check_violation of %s", err, constraint)
	}
}

func TestCheckoutLookups(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o := db.pendingOrder(t)
	failed, err := db.store.CreateOrder(ctx, newOrder(store.LineRequest{SKU: "poster-retired", Quantity: 1}))
	if err != nil {
		t.Fatal(err)
	}

	lookups := []struct {
		name string
		get  func(store.Order) (store.Order, error)
	}{
		{"CheckoutByID", func(o store.Order) (store.Order, error) { return db.store.CheckoutByID(ctx, o.CheckoutID) }},
		{"CheckoutByIdempotencyKey", func(o store.Order) (store.Order, error) {
			return db.store.CheckoutByIdempotencyKey(ctx, o.IdempotencyKey)
		}},
	}
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			got, err := l.get(o)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != o.ID || got.CheckoutID != o.CheckoutID || got.IdempotencyKey != o.IdempotencyKey ||
				got.Status != domain.OrderPending || got.TotalAmount != 6200 || got.Currency != "usd" || !slices.Equal(got.Lines, o.Lines) ||
				len(got.Lines) != 2 {
				t.Fatalf("got %+v, want %+v", got, o)
			}
			got, err = l.get(failed)
			if err != nil || got.ID != failed.ID || got.Status != domain.OrderFailed || len(got.Lines) != 0 {
				t.Fatalf("failed order: %+v, %v", got, err)
			}
			_, err = l.get(store.Order{CheckoutID: "chk_unknown", IdempotencyKey: "idem-unknown"})
			wantErrIs(t, err, store.ErrNotFound)
		})
	}
}
