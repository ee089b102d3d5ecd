//go:build integration

package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// summaryFixture writes rows for the daily summary directly with SQL, with chosen timestamps.
type summaryFixture struct {
	t      *testing.T
	db     *testDB
	userID string
	seq    int
}

func newSummaryFixture(t *testing.T, db *testDB) *summaryFixture {
	f := &summaryFixture{t: t, db: db}
	if err := db.pool.QueryRow(context.Background(),
		`INSERT INTO users (email, name) VALUES ('bi@example.com', 'Bi User') RETURNING id::text`).Scan(&f.userID); err != nil {
		t.Fatal(err)
	}
	return f
}

// order inserts an order; completedAt may be nil.
func (f *summaryFixture) order(kind, status, currency string, amount int64, createdAt time.Time, completedAt *time.Time) string {
	f.t.Helper()
	f.seq++
	refunded := int64(0)
	if status == string(domain.OrderRefunded) {
		refunded = amount
	}
	var id string
	err := f.db.pool.QueryRow(context.Background(), `
		INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, user_id, customer_email, customer_name,
			status, total_amount, currency, refunded_amount, provider, kind, created_at, updated_at, completed_at)
		VALUES ($1, $1, 'h', $1, $2, 'bi@example.com', 'Bi User', $3, $4, $5, $6, 'stripe', $7, $8, $8, $9)
		RETURNING id::text`,
		fmt.Sprintf("chk_summary_%d", f.seq), f.userID, status, amount, currency, refunded, kind, createdAt, completedAt).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert order: %v", err)
	}
	return id
}

// payment inserts a ledger row settled (or last touched) at updatedAt.
func (f *summaryFixture) payment(orderID, kind, status, currency string, amount int64, updatedAt time.Time) {
	f.t.Helper()
	f.seq++
	f.db.exec(f.t, `INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status, created_at, updated_at)
		VALUES ($1, $2, 'stripe', $3, $4, $5, $6, $7, $7)`,
		orderID, kind, fmt.Sprintf("pay-%d", f.seq), amount, currency, status, updatedAt)
}

// subscription inserts a subscription in status.
func (f *summaryFixture) subscription(status string) string {
	f.t.Helper()
	var id string
	err := f.db.pool.QueryRow(context.Background(), `
		INSERT INTO subscriptions (user_id, sku, status, provider, current_period_start, current_period_end,
			price_amount, currency, billing_interval)
		VALUES ($1, 'plan-monthly', $2, 'stripe', '2025-03-01T00:00:00Z', '2025-04-01T00:00:00Z', 900, 'usd', 'month')
		RETURNING id::text`, f.userID, status).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert subscription: %v", err)
	}
	return id
}

// event records a subscription state change; from "" is the first state.
func (f *summaryFixture) event(subID, from, to string, at time.Time) {
	f.t.Helper()
	f.db.exec(f.t, `INSERT INTO subscription_events (subscription_id, from_status, to_status, reason, at)
		VALUES ($1, nullif($2, ''), $3, 'test', $4)`, subID, from, to, at)
}

func utc(day, clock string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, day+"T"+clock+"Z")
	if err != nil {
		panic(err)
	}
	return t
}

func TestComputeDailyFigures(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	f := newSummaryFixture(t, db)
	const d0, d1, d2 = "2025-03-09", "2025-03-10", "2025-03-11"
	at := func(day, clock string) *time.Time { v := utc(day, clock); return &v }

	// Checkouts.
	a := f.order("checkout", "completed", "usd", 6200, utc(d1, "10:00:00"), at(d1, "10:01:00"))
	f.payment(a, "charge", "succeeded", "usd", 6200, utc(d1, "10:01:00"))
	// Created at the last instant of d1 and charged just after midnight: an order of d1, revenue of d2.
	b := f.order("checkout", "completed", "eur", 5400, utc(d1, "23:59:59.999999"), at(d2, "00:00:01"))
	f.payment(b, "charge", "succeeded", "eur", 5400, utc(d2, "00:00:01"))
	// Paid then refunded the same day: not an order of the day, and nothing earned.
	c := f.order("checkout", "refunded", "usd", 2500, utc(d1, "11:00:00"), nil)
	f.payment(c, "charge", "succeeded", "usd", 2500, utc(d1, "11:00:01"))
	f.payment(c, "refund", "succeeded", "usd", 2500, utc(d1, "11:05:00"))
	d := f.order("checkout", "failed", "usd", 1200, utc(d1, "12:00:00"), nil)
	f.payment(d, "charge", "failed", "usd", 1200, utc(d1, "12:00:01")) // a checkout decline is not a failed renewal
	e := f.order("checkout", "charging", "usd", 500, utc(d1, "13:00:00"), nil)
	f.payment(e, "charge", "pending", "usd", 500, utc(d1, "13:00:01")) // not settled: no revenue
	f.order("checkout", "pending", "usd", 500, utc(d1, "14:00:00"), nil)
	h := f.order("checkout", "completed", "jpy", 1500, utc(d1, "15:00:00"), at(d1, "15:00:02"))
	f.payment(h, "charge", "succeeded", "jpy", 1500, utc(d1, "15:00:01"))
	// Sold the day before, partly refunded on d1.
	old := f.order("checkout", "completed", "usd", 1000, utc(d0, "23:59:59"), at(d0, "23:59:59"))
	f.payment(old, "charge", "succeeded", "usd", 1000, utc(d0, "23:59:59"))
	f.payment(old, "refund", "succeeded", "usd", 300, utc(d1, "16:00:00"))
	// Created at d2's first instant.
	g := f.order("checkout", "completed", "usd", 500, utc(d2, "00:00:00"), at(d2, "00:00:02"))
	f.payment(g, "charge", "succeeded", "usd", 500, utc(d2, "00:00:01"))

	// Subscriptions and renewals.
	s1 := f.subscription("active")
	f.event(s1, "", "trialing", utc(d1, "09:00:00"))
	f.event(s1, "trialing", "active", utc(d1, "09:30:00")) // not a new subscription
	s2 := f.subscription("canceled")
	f.event(s2, "", "active", utc(d0, "08:00:00"))
	f.event(s2, "past_due", "canceled", utc(d1, "15:00:00"))
	s3 := f.subscription("active")
	f.event(s3, "", "active", utc(d2, "01:00:00"))
	f.event(s3, "", "active", utc(d2, "01:00:01")) // recorded twice by a retried write: still one subscription
	s4 := f.subscription("past_due")
	f.event(s4, "active", "past_due", utc(d1, "08:00:00"))
	f.subscription("past_due")

	r1 := f.order("renewal", "completed", "usd", 900, utc(d1, "12:00:00"), at(d1, "12:00:05"))
	f.payment(r1, "charge", "succeeded", "usd", 900, utc(d1, "12:00:04"))
	// Declined twice on d1 while dunning, then paid on d2.
	r2 := f.order("renewal", "completed", "usd", 900, utc(d1, "08:00:00"), at(d2, "09:00:01"))
	f.payment(r2, "charge", "failed", "usd", 900, utc(d1, "08:00:01"))
	f.payment(r2, "charge", "failed", "usd", 900, utc(d1, "20:00:01"))
	f.payment(r2, "charge", "succeeded", "usd", 900, utc(d2, "09:00:00"))

	tests := []struct {
		day  time.Time
		want store.DailyFigures
	}{
		{utc(d1, "00:00:00"), store.DailyFigures{
			Day: utc(d1, "00:00:00"), NewOrders: 3, NewSubscriptions: 1, RenewalsSucceeded: 1, RenewalsFailed: 2,
			Cancellations: 1, InDunning: 2,
			// usd: 6200 + 2500 - 2500 - 300 + 900.
			Revenue: []store.CurrencyAmount{{Currency: "jpy", Amount: 1500}, {Currency: "usd", Amount: 6800}},
		}},
		// Any instant of the day names it, in any zone: 20:00 at UTC-5 is 01:00 UTC on d2.
		{time.Date(2025, 3, 10, 20, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), store.DailyFigures{
			Day: utc(d2, "00:00:00"), NewOrders: 1, NewSubscriptions: 1, RenewalsSucceeded: 1, RenewalsFailed: 0,
			Cancellations: 0, InDunning: 2,
			Revenue: []store.CurrencyAmount{{Currency: "eur", Amount: 5400}, {Currency: "usd", Amount: 1400}},
		}},
		{utc("2025-03-12", "00:00:00"), store.DailyFigures{Day: utc("2025-03-12", "00:00:00"), InDunning: 2, Revenue: []store.CurrencyAmount{}}},
	}
	for _, tc := range tests {
		got, err := db.store.ComputeDailyFigures(ctx, tc.day)
		if err != nil {
			t.Fatal(err)
		}
		if !equalFigures(got, tc.want) {
			t.Errorf("ComputeDailyFigures(%v):\n got %+v\nwant %+v", tc.day, got, tc.want)
		}
	}
}

func equalFigures(a, b store.DailyFigures) bool {
	return a.Day.Equal(b.Day) && a.Day.Location() == time.UTC && a.NewOrders == b.NewOrders && a.NewSubscriptions == b.NewSubscriptions &&
		a.RenewalsSucceeded == b.RenewalsSucceeded && a.RenewalsFailed == b.RenewalsFailed &&
		a.Cancellations == b.Cancellations && a.InDunning == b.InDunning && slices.Equal(a.Revenue, b.Revenue)
}

// summaryRow is a daily_summaries row with its daily_revenue rows.
type summaryRow struct {
	NewOrders, NewSubscriptions, RenewalsSucceeded, RenewalsFailed, Cancellations, InDunning int
	ComputedAt                                                                               time.Time
	Revenue                                                                                  []store.CurrencyAmount
}

func (db *testDB) summaryRow(t *testing.T, day string) summaryRow {
	t.Helper()
	ctx := context.Background()
	var r summaryRow
	if err := db.pool.QueryRow(ctx, `SELECT new_orders, new_subscriptions, renewals_succeeded, renewals_failed, cancellations,
		in_dunning, computed_at FROM daily_summaries WHERE day = $1::date`, day).
		Scan(&r.NewOrders, &r.NewSubscriptions, &r.RenewalsSucceeded, &r.RenewalsFailed, &r.Cancellations, &r.InDunning, &r.ComputedAt); err != nil {
		t.Fatalf("read daily summary %s: %v", day, err)
	}
	rows, err := db.pool.Query(ctx, `SELECT currency, amount FROM daily_revenue WHERE day = $1::date ORDER BY currency`, day)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c store.CurrencyAmount
		if err := rows.Scan(&c.Currency, &c.Amount); err != nil {
			t.Fatal(err)
		}
		r.Revenue = append(r.Revenue, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSaveDailyFigures(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	d1 := store.DailyFigures{
		// Not midnight: the day it falls in is what is stored.
		Day: utc("2025-03-10", "17:45:00"), NewOrders: 3, NewSubscriptions: 1, RenewalsSucceeded: 4, RenewalsFailed: 2, Cancellations: 5, InDunning: 6,
		Revenue: []store.CurrencyAmount{{Currency: "jpy", Amount: 1500}, {Currency: "usd", Amount: -300}},
	}
	d2 := store.DailyFigures{Day: utc("2025-03-11", "00:00:00"), NewOrders: 7, Revenue: []store.CurrencyAmount{{Currency: "eur", Amount: 5400}}}
	for _, f := range []store.DailyFigures{d1, d2} {
		if err := db.store.SaveDailyFigures(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	first := db.summaryRow(t, "2025-03-10")
	if got := first; got.NewOrders != 3 || got.NewSubscriptions != 1 || got.RenewalsSucceeded != 4 || got.RenewalsFailed != 2 ||
		got.Cancellations != 5 || got.InDunning != 6 || !slices.Equal(got.Revenue, d1.Revenue) {
		t.Fatalf("stored d1 %+v", got)
	}

	// Recomputing d1 overwrites it, dropping a currency that no longer has revenue, and leaves d2 alone.
	d1.NewOrders, d1.InDunning = 4, 0
	d1.Revenue = []store.CurrencyAmount{{Currency: "usd", Amount: 100}}
	if err := db.store.SaveDailyFigures(ctx, d1); err != nil {
		t.Fatal(err)
	}
	got := db.summaryRow(t, "2025-03-10")
	if got.NewOrders != 4 || got.InDunning != 0 || got.Cancellations != 5 || !slices.Equal(got.Revenue, d1.Revenue) ||
		got.ComputedAt.Before(first.ComputedAt) {
		t.Fatalf("d1 after recomputing %+v (first %+v)", got, first)
	}
	if got := db.summaryRow(t, "2025-03-11"); got.NewOrders != 7 || !slices.Equal(got.Revenue, d2.Revenue) {
		t.Fatalf("d2 %+v", got)
	}

	// A day with no revenue keeps its summary row and has no revenue rows.
	d2.Revenue = nil
	if err := db.store.SaveDailyFigures(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if got := db.summaryRow(t, "2025-03-11"); got.NewOrders != 7 || len(got.Revenue) != 0 {
		t.Fatalf("d2 without revenue %+v", got)
	}
	if n := db.count(t, `SELECT count(*) FROM daily_summaries`); n != 2 {
		t.Fatalf("%d daily_summaries rows, want 2", n)
	}
	if n := db.count(t, `SELECT count(*) FROM daily_revenue`); n != 1 {
		t.Fatalf("%d daily_revenue rows, want 1", n)
	}

	// The figures computed from the database round-trip through the tables.
	f := newSummaryFixture(t, db)
	o := f.order("checkout", "completed", "usd", 6200, utc("2025-03-12", "10:00:00"), nil)
	f.payment(o, "charge", "succeeded", "usd", 6200, utc("2025-03-12", "10:00:01"))
	computed, err := db.store.ComputeDailyFigures(ctx, utc("2025-03-12", "00:00:00"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.store.SaveDailyFigures(ctx, computed); err != nil {
		t.Fatal(err)
	}
	if got := db.summaryRow(t, "2025-03-12"); got.NewOrders != 1 || !slices.Equal(got.Revenue, []store.CurrencyAmount{{Currency: "usd", Amount: 6200}}) {
		t.Fatalf("computed and saved 2025-03-12: %+v", got)
	}
}
