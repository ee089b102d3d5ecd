//go:build integration

package activities_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/dev/mailpit"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/store"
)

// The figures of a day are computed, stored for BI, and mailed to ops, end to end.
func TestComputeDailySummaryStoresAndMails(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	mp := mailpit.Start(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO users (email, name) VALUES ('bi@example.com', 'Bi')`)
	// One completed checkout on the day, one the day after, each with its charge.
	for i, at := range []string{"2025-03-10T12:00:00Z", "2025-03-11T12:00:00Z"} {
		exec(`WITH o AS (
				INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, customer_email, customer_name,
					status, total_amount, currency, provider, created_at, completed_at)
				VALUES ($1, $1, 'h', $1, 'bi@example.com', 'Bi', 'completed', 6200, 'usd', 'stripe', $2, $2) RETURNING id)
			INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status, created_at, updated_at)
			SELECT id, 'charge', 'stripe', $1 || '/charge', 6200, 'usd', 'succeeded', $2, $2 FROM o`,
			"chk_"+string(rune('a'+i)), at)
	}
	exec(`INSERT INTO subscriptions (user_id, sku, status, provider, current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT id, 'plan-monthly', 'past_due', 'stripe', '2025-03-01', '2025-04-01', 900, 'usd', 'month' FROM users`)

	acts := &activities.Activities{Store: store.New(pool), Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})}
	got, err := runComputeDailySummary(t, acts, "2025-03-10")
	if err != nil {
		t.Fatal(err)
	}
	if got.Day != "2025-03-10" || got.NewOrders != 1 || got.InDunning != 1 || got.NewSubscriptions != 0 || got.RenewalsSucceeded != 0 ||
		got.RenewalsFailed != 0 || got.Cancellations != 0 || !slices.Equal(got.Revenue, []activities.Revenue{{Currency: "usd", Amount: 6200}}) {
		t.Fatalf("ComputeDailySummary = %+v", got)
	}
	var newOrders, inDunning int
	var revenue int64
	if err := pool.QueryRow(ctx, `SELECT s.new_orders, s.in_dunning, r.amount FROM daily_summaries s
		JOIN daily_revenue r ON r.day = s.day AND r.currency = 'usd' WHERE s.day = '2025-03-10'`).Scan(&newOrders, &inDunning, &revenue); err != nil {
		t.Fatalf("stored figures: %v", err)
	}
	if newOrders != 1 || inDunning != 1 || revenue != 6200 {
		t.Fatalf("stored new_orders %d in_dunning %d revenue %d", newOrders, inDunning, revenue)
	}

	res, err := runSendEmail(t, acts, activities.EmailInput{EventKey: "daily-summary/2025-03-10/ops@example.com", To: "ops@example.com", DailySummary: &got})
	if err != nil || !res.Sent {
		t.Fatalf("SendEmail = %+v, %v", res, err)
	}
	msg := mp.Message(t, wantOneMessage(t, mp).ID)
	if msg.Subject != "cartflow daily summary for 2025-03-10" || msg.To[0].Address != "ops@example.com" ||
		!strings.Contains(msg.Text, "Revenue:             62.00 USD") || !strings.Contains(msg.Text, "In dunning (now):    1") {
		t.Fatalf("received %+v", msg)
	}
}
