//go:build integration

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// trialSubscription buys plan-monthly (14-day trial, 900 usd) through a checkout order and starts it.
func (db *testDB) trialSubscription(t *testing.T, start time.Time) store.Subscription {
	t.Helper()
	ctx := context.Background()
	o, err := db.store.CreateOrder(ctx, newOrder(store.LineRequest{SKU: "plan-monthly", Quantity: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != domain.OrderPending || o.TotalAmount != 0 || o.Currency != "usd" {
		t.Fatalf("trial order: %+v", o)
	}
	u, err := db.store.RegisterUser(ctx, o.Email, o.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.store.ConfirmUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	n := store.NewSubscription{OrderID: o.ID, UserID: u.ID, Provider: "stripe", CustomerRef: "cus_1", PaymentMethodRef: "pm_1", Start: start}
	sub, err := db.store.CreateSubscription(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	// A retried activity gets the same subscription, not a second one.
	again, err := db.store.CreateSubscription(ctx, n)
	if err != nil || again.ID != sub.ID {
		t.Fatalf("second CreateSubscription: %v, %s vs %s", err, again.ID, sub.ID)
	}
	if err := db.store.CompleteOrder(ctx, o.ID, u.ID); err != nil {
		t.Fatalf("a trial order (nothing due) must complete from pending: %v", err)
	}
	return sub
}

// TestUserSubscriptionStatusIsTheBestStanding: a user with several subscriptions shows the best
// standing among them (active, then trialing, then past_due, then canceled), after every change
// of any of them.
func TestUserSubscriptionStatusIsTheBestStanding(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	first, second := db.trialSubscription(t, start), db.trialSubscription(t, start)
	if first.UserID != second.UserID {
		t.Fatalf("the two trials belong to %s and %s, want one user", first.UserID, second.UserID)
	}
	want := func(step string, status domain.SubscriptionStatus) {
		t.Helper()
		if got := db.count(t, `SELECT count(*) FROM users WHERE id = $1 AND subscription_status = $2`, first.UserID, string(status)); got != 1 {
			var have string
			_ = db.pool.QueryRow(ctx, `SELECT subscription_status FROM users WHERE id = $1`, first.UserID).Scan(&have)
			t.Fatalf("after %s the user's subscription status is %q, want %q", step, have, status)
		}
	}
	want("two trials", domain.SubscriptionTrialing)
	if _, err := db.store.CancelSubscription(ctx, first.ID, "test"); err != nil {
		t.Fatal(err)
	}
	want("one trial canceled", domain.SubscriptionTrialing)
	if _, err := db.store.MarkPastDue(ctx, second.ID, second.CurrentPeriodEnd, 1, "test"); err != nil {
		t.Fatal(err)
	}
	want("the other past due", domain.SubscriptionPastDue)
	if _, err := db.store.RenewSubscription(ctx, second.ID, second.CurrentPeriodEnd, "test"); err != nil {
		t.Fatal(err)
	}
	want("the other renewed", domain.SubscriptionActive)
	if _, err := db.store.CancelSubscription(ctx, second.ID, "test"); err != nil {
		t.Fatal(err)
	}
	want("both canceled", domain.SubscriptionCanceled)
}

func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	sub := db.trialSubscription(t, start)

	trialEnd := start.AddDate(0, 0, 14)
	if sub.Status != domain.SubscriptionTrialing || !sub.CurrentPeriodEnd.Equal(trialEnd) || sub.TrialEnd == nil || !sub.TrialEnd.Equal(trialEnd) ||
		sub.PriceAmount != 900 || sub.Currency != "usd" || sub.BillingInterval != "month" || sub.PaymentMethodRef != "pm_1" ||
		sub.Email != "ada@example.com" || sub.PlanName == "" {
		t.Fatalf("new subscription: %+v", sub)
	}
	if n := db.count(t, `SELECT count(*) FROM subscriptions`); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	userStatus := func() string {
		var s string
		if err := db.pool.QueryRow(ctx, `SELECT subscription_status FROM users WHERE id = $1`, sub.UserID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := userStatus(); got != string(domain.SubscriptionTrialing) {
		t.Fatalf("user subscription status %q", got)
	}
	if got := db.orderRow(t, sub.OrderID).Status; got != string(domain.OrderCompleted) {
		t.Fatalf("trial order is %q", got)
	}

	// A renewal order is priced from the subscription, once per workflow.
	renewal := store.NewRenewalOrder{SubscriptionID: sub.ID, WorkflowID: "renewal-x"}
	o, err := db.store.CreateRenewalOrder(ctx, renewal)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := db.store.CreateRenewalOrder(ctx, renewal)
	if err != nil || o2.ID != o.ID {
		t.Fatalf("renewal order retried: %v %s vs %s", err, o2.ID, o.ID)
	}
	if o.TotalAmount != 900 || o.Status != domain.OrderPending || o.UserID != sub.UserID || len(o.Lines) != 1 || o.Lines[0].SKU != "plan-monthly" {
		t.Fatalf("renewal order %+v", o)
	}

	// A declined attempt leaves the order open for the next one.
	key1 := "renewal-x/charge/1"
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe", IdempotencyKey: key1, Amount: 900, Currency: "usd"}); err != nil {
		t.Fatal(err)
	}
	if err := db.store.SettlePayment(ctx, key1, store.PaymentOutcome{Status: domain.PaymentFailed, KeepOrderOpen: true,
		Failure: &domain.Failure{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderCharging) {
		t.Fatalf("order after a dunning decline is %q, want charging", got)
	}
	sub, err = db.store.MarkPastDue(ctx, sub.ID, trialEnd, 1, "renewal declined: insufficient_funds")
	if err != nil || sub.Status != domain.SubscriptionPastDue || sub.DunningAttempts != 1 {
		t.Fatalf("past due: %v %+v", err, sub)
	}
	if sub, err = db.store.MarkPastDue(ctx, sub.ID, trialEnd, 2, "renewal declined again"); err != nil || sub.DunningAttempts != 2 {
		t.Fatalf("second decline: %v %+v", err, sub)
	}
	if got := userStatus(); got != string(domain.SubscriptionPastDue) {
		t.Fatalf("user subscription status %q", got)
	}

	key2 := "renewal-x/charge/2"
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe", IdempotencyKey: key2, Amount: 900, Currency: "usd"}); err != nil {
		t.Fatal(err)
	}
	if err := db.store.SettlePayment(ctx, key2, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_2"}); err != nil {
		t.Fatal(err)
	}
	sub, err = db.store.RenewSubscription(ctx, sub.ID, trialEnd, "renewal paid")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Status != domain.SubscriptionActive || !sub.CurrentPeriodStart.Equal(trialEnd) || !sub.CurrentPeriodEnd.Equal(trialEnd.AddDate(0, 1, 0)) || sub.DunningAttempts != 0 {
		t.Fatalf("renewed: %+v", sub)
	}
	// Renewing the same period again (a retried activity) changes nothing.
	if again, err := db.store.RenewSubscription(ctx, sub.ID, trialEnd, "renewal paid"); err != nil || !again.CurrentPeriodEnd.Equal(sub.CurrentPeriodEnd) {
		t.Fatalf("renew twice: %v %+v", err, again)
	}
	// A stale renewal of the old period cannot move the subscription.
	if _, err := db.store.MarkPastDue(ctx, sub.ID, trialEnd, 1, "stale"); !errors.Is(err, store.ErrPeriodMoved) {
		t.Fatalf("stale MarkPastDue: %v", err)
	}

	if sub, err = db.store.SetCancelAtPeriodEnd(ctx, sub.ID, true); err != nil || !sub.CancelAtPeriodEnd {
		t.Fatalf("cancel at period end: %v %+v", err, sub)
	}
	if sub, err = db.store.SetCancelAtPeriodEnd(ctx, sub.ID, false); err != nil || sub.CancelAtPeriodEnd {
		t.Fatalf("resume: %v %+v", err, sub)
	}
	if sub, err = db.store.CancelSubscription(ctx, sub.ID, "customer canceled"); err != nil || sub.Status != domain.SubscriptionCanceled || sub.CanceledAt == nil {
		t.Fatalf("cancel: %v %+v", err, sub)
	}
	if _, err := db.store.CancelSubscription(ctx, sub.ID, "customer canceled"); err != nil {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := db.store.SetCancelAtPeriodEnd(ctx, sub.ID, false); !errors.Is(err, store.ErrTransition) {
		t.Fatalf("resume after cancel: %v", err)
	}
	if got := userStatus(); got != string(domain.SubscriptionCanceled) {
		t.Fatalf("user subscription status %q", got)
	}

	history, err := db.store.SubscriptionHistory(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ from, to string }{{"", "trialing"}, {"trialing", "past_due"}, {"past_due", "active"}, {"active", "canceled"}}
	if len(history) != len(want) {
		t.Fatalf("history %+v", history)
	}
	for i, w := range want {
		if string(history[i].From) != w.from || string(history[i].To) != w.to || history[i].Reason == "" || history[i].At.IsZero() {
			t.Fatalf("history[%d] = %+v, want %s→%s with a reason", i, history[i], w.from, w.to)
		}
	}
}

func TestDueSubscriptionsPagesInIndexOrder(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var subs []store.Subscription
	for i := range 5 {
		subs = append(subs, db.trialSubscription(t, base.Add(time.Duration(i)*time.Hour)))
	}
	if _, err := db.store.CancelSubscription(ctx, subs[2].ID, "test"); err != nil {
		t.Fatal(err)
	}
	// Trials end 14 days after their start; subs[4] ends after asOf.
	asOf := base.AddDate(0, 0, 14).Add(3 * time.Hour)
	var got []string
	var afterEnd time.Time
	afterID := ""
	for {
		page, err := db.store.DueSubscriptions(ctx, asOf, afterEnd, afterID, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		if len(page) < 2 {
			break
		}
		afterEnd, afterID = page[len(page)-1].PeriodEnd, page[len(page)-1].ID
	}
	want := []string{subs[0].ID, subs[1].ID, subs[3].ID}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("due %v, want %v", got, want)
	}

	ending, err := db.store.TrialsEndingBy(ctx, base.AddDate(0, 0, 11), base.AddDate(0, 0, 14).Add(90*time.Minute), 10)
	if err != nil || len(ending) != 2 {
		t.Fatalf("trials ending: %v %d", err, len(ending))
	}
	if err := db.store.MarkTrialReminded(ctx, ending[0].ID, *ending[0].TrialEnd); err != nil {
		t.Fatal(err)
	}
	if ending, err = db.store.TrialsEndingBy(ctx, base.AddDate(0, 0, 11), base.AddDate(0, 0, 14).Add(90*time.Minute), 10); err != nil || len(ending) != 1 {
		t.Fatalf("after a reminder: %v %d", err, len(ending))
	}
}
