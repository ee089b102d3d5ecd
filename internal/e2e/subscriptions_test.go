//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/schedules"
	"github.com/cartflow/cartflow/workflows"
)

// mailpitMessage is a message as Mailpit's API lists it.
type mailpitMessage struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// emailsTo lists the messages Mailpit holds for addr, through its HTTP API.
func emailsTo(t testing.TB, addr string) []mailpitMessage {
	t.Helper()
	resp, err := http.Get(dev.Mailpit.UIURL() + "/api/v1/search?limit=200&query=" + url.QueryEscape("to:"+addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []mailpitMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var mine []mailpitMessage
	for _, m := range out.Messages {
		for _, to := range m.To {
			if strings.EqualFold(to.Address, addr) {
				mine = append(mine, m)
			}
		}
	}
	return mine
}

// emailText returns a message's plain-text body.
func emailText(t testing.TB, id string) string {
	t.Helper()
	resp, err := http.Get(dev.Mailpit.UIURL() + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Text string `json:"Text"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Text
}

// waitEmails waits until addr has n messages whose subject contains subject, and returns them.
func waitEmails(t testing.TB, addr, subject string, n int) []mailpitMessage {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var matching []mailpitMessage
	for time.Now().Before(deadline) {
		matching = matching[:0]
		for _, m := range emailsTo(t, addr) {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(subject)) {
				matching = append(matching, m)
			}
		}
		if len(matching) >= n {
			return matching
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s: %d emails with %q in the subject, want %d (all: %+v)", addr, len(matching), subject, n, emailsTo(t, addr))
	return nil
}

// waitFor polls cond until it holds or within passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// subscribe buys plan-monthly (a 14-day trial) with token and returns the subscription id and
// the checkout's Idempotency-Key.
func subscribe(t *testing.T, email, token string) (subID, key string) {
	t.Helper()
	body := validBody(email, token)
	body.Items = []item{{SKU: "plan-monthly", Quantity: 1}}
	key = newKey(t)
	code, resp := postJSON(t, key, body)
	if code != http.StatusCreated || resp.Status != "completed" || resp.Amount != 0 {
		t.Fatalf("trial checkout: %d %+v", code, resp)
	}
	return subscriptionOf(t, resp.OrderID), key
}

// makeDue moves a subscription's period end into the past, as time passing would.
func makeDue(t *testing.T, subID string) time.Time {
	t.Helper()
	var end time.Time
	if err := db.QueryRow(context.Background(), `UPDATE subscriptions SET current_period_start = now() - interval '14 days',
		current_period_end = date_trunc('second', now()) - interval '1 minute', trial_end = date_trunc('second', now()) - interval '1 minute'
		WHERE id = $1 RETURNING current_period_end`, subID).Scan(&end); err != nil {
		t.Fatal(err)
	}
	return end
}

func triggerSchedule(t *testing.T, id string) {
	t.Helper()
	if err := schedules.Trigger(context.Background(), temporal, id); err != nil {
		t.Fatalf("trigger %s: %v", id, err)
	}
}

func subscriptionStatus(t testing.TB, subID string) (status string, attempts int, periodEnd time.Time) {
	t.Helper()
	if err := db.QueryRow(context.Background(), `SELECT status, dunning_attempts, current_period_end FROM subscriptions WHERE id = $1`,
		subID).Scan(&status, &attempts, &periodEnd); err != nil {
		t.Fatal(err)
	}
	return status, attempts, periodEnd
}

func TestTrialSubscriptionRenewsWhenTheScheduleRuns(t *testing.T) {
	email := "trial-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subID, key := subscribe(t, email, "pm_card_visa")
	recordHistory(t, "checkout-"+key, "purchase_trial")

	var status, userStatus, customerRef, pmRef string
	if err := db.QueryRow(context.Background(), `SELECT s.status, u.subscription_status, s.provider_customer_ref, s.provider_payment_method_ref
		FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, subID).Scan(&status, &userStatus, &customerRef, &pmRef); err != nil {
		t.Fatal(err)
	}
	if status != "trialing" || userStatus != "trialing" || !strings.HasPrefix(customerRef, "cus_") || !strings.HasPrefix(pmRef, "pm_") || pmRef == "pm_card_visa" {
		t.Fatalf("after the trial checkout: status %s, user %s, customer %q, payment method %q", status, userStatus, customerRef, pmRef)
	}
	// The card was saved with Stripe, attached to the customer, and nothing was charged.
	saved := false
	for _, pm := range dev.StripeProxy.PaymentMethods() {
		saved = saved || (pm.ID == pmRef && pm.Customer == customerRef)
	}
	if !saved {
		t.Fatalf("payment method %s is not attached to %s at Stripe", pmRef, customerRef)
	}
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.Customer == customerRef {
			t.Fatalf("a trial charged %+v", pi)
		}
	}
	receipt := waitEmails(t, email, "receipt", 1)
	if text := emailText(t, receipt[0].ID); !strings.Contains(text, "/account/orders/") {
		t.Errorf("the receipt does not link to the order:\n%s", text)
	}

	periodEnd := makeDue(t, subID)
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	waitFor(t, "the renewal", 30*time.Second, func() bool {
		s, _, _ := subscriptionStatus(t, subID)
		return s == "active"
	})
	_, _, newEnd := subscriptionStatus(t, subID)
	if !newEnd.Equal(periodEnd.AddDate(0, 1, 0)) {
		t.Fatalf("period now ends %v, want a month after %v", newEnd, periodEnd)
	}
	renewalID := workflows.RenewalWorkflowID(subID, periodEnd)
	var orderStatus string
	var total int64
	if err := db.QueryRow(context.Background(), `SELECT status, total_amount FROM orders WHERE workflow_id = $1 AND kind = 'renewal'`,
		renewalID).Scan(&orderStatus, &total); err != nil {
		t.Fatalf("renewal order %s: %v", renewalID, err)
	}
	waitFor(t, "the renewal order to complete", 10*time.Second, func() bool {
		_ = db.QueryRow(context.Background(), `SELECT status FROM orders WHERE workflow_id = $1`, renewalID).Scan(&orderStatus)
		return orderStatus == "completed"
	})
	if total != 900 {
		t.Fatalf("renewal order total %d", total)
	}
	// Stripe received one off-session charge of the saved card, keyed by the renewal workflow.
	var charged []string
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.Customer == customerRef {
			charged = append(charged, pi.Metadata["cartflow_idempotency_key"])
			if !pi.OffSession || pi.PaymentMethod != pmRef || pi.Amount != 900 || pi.Status != "succeeded" {
				t.Fatalf("renewal charge %+v", pi)
			}
		}
	}
	if len(charged) != 1 || charged[0] != renewalID+"/charge/1" {
		t.Fatalf("charges of the customer: %v", charged)
	}
	if n := queryInt(t, `SELECT count(*) FROM subscription_events WHERE subscription_id = $1 AND from_status = 'trialing' AND to_status = 'active'`, subID); n != 1 {
		t.Fatalf("%d trialing→active events", n)
	}
	waitEmails(t, email, "receipt", 2)
	recordHistory(t, renewalID, "renewal_renewed")
	recordHistory(t, latestRun(t, workflows.RenewalSweepWorkflowType), "renewal_sweep")

	// Sweeping again renews nothing twice: the period is no longer due, and its renewal ID is spent.
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	time.Sleep(2 * time.Second)
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE subscription_id = $1 AND kind = 'renewal'`, subID); n != 1 {
		t.Fatalf("%d renewal orders after a second sweep", n)
	}
}

func TestDeclinedRenewalEntersDunning(t *testing.T) {
	email := "dunning-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	// Stripe's test card that saves fine and then declines every charge.
	subID, _ := subscribe(t, email, "pm_card_chargeCustomerFail")
	periodEnd := makeDue(t, subID)
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	waitFor(t, "past_due", 30*time.Second, func() bool {
		s, _, _ := subscriptionStatus(t, subID)
		return s == "past_due"
	})
	_, attempts, end := subscriptionStatus(t, subID)
	if attempts != 1 || !end.Equal(periodEnd) {
		t.Fatalf("dunning attempts %d, period end %v", attempts, end)
	}
	renewalID := workflows.RenewalWorkflowID(subID, periodEnd)
	var orderStatus, payStatus, declineCode string
	if err := db.QueryRow(context.Background(), `SELECT o.status, p.status, coalesce(p.decline_code, '') FROM orders o JOIN payments p ON p.order_id = o.id
		WHERE o.workflow_id = $1 AND p.idempotency_key = $2`, renewalID, renewalID+"/charge/1").Scan(&orderStatus, &payStatus, &declineCode); err != nil {
		t.Fatal(err)
	}
	if orderStatus != "charging" || payStatus != "failed" || declineCode == "" {
		t.Fatalf("renewal order %s, ledger %s (%s)", orderStatus, payStatus, declineCode)
	}
	if n := queryInt(t, `SELECT count(*) FROM users u JOIN subscriptions s ON s.user_id = u.id WHERE s.id = $1 AND u.subscription_status = 'past_due'`, subID); n != 1 {
		t.Fatal("the User Directory does not show the subscription past due")
	}
	// The renewal waits on a durable timer for the next attempt of the ladder. It marks the
	// subscription past due (a local activity) before its workflow task ends and the stage turns
	// to dunning, so a query right after the row changed may still see "charging": wait for it.
	desc, err := temporal.DescribeWorkflowExecution(context.Background(), renewalID, "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus().String() != "Running" {
		t.Fatalf("renewal %s: %v %v", renewalID, err, desc.GetWorkflowExecutionInfo().GetStatus())
	}
	var state workflows.RenewalState
	waitFor(t, "the renewal to enter dunning", 15*time.Second, func() bool {
		v, err := temporal.QueryWorkflow(context.Background(), renewalID, "", workflows.QueryStatus)
		if err != nil {
			t.Fatalf("query renewal %s: %v", renewalID, err)
		}
		state = workflows.RenewalState{}
		if err := v.Get(&state); err != nil {
			t.Fatal(err)
		}
		return state.Stage == workflows.RenewalDunning
	})
	if state.NextRetryAt == nil {
		t.Fatalf("renewal state %+v: dunning without a next retry", state)
	}
	failed := waitEmails(t, email, "payment", 1)
	text := emailText(t, failed[0].ID)
	if !strings.Contains(text, state.NextRetryAt.UTC().Format("January 2, 2006")) {
		t.Fatalf("the payment-failed email does not give the next retry date %v:\n%s", state.NextRetryAt, text)
	}
	if want := "/sign-in?next=%2Faccount%2Fsubscriptions%2F" + subID + "%2Fpayment-method"; !strings.Contains(text, want) {
		t.Errorf("the payment-failed email has no sign-in link to replacing the card (%s):\n%s", want, text)
	}

	// The customer cancels during dunning: the renewal stops retrying and the subscription ends.
	cancelKey := newKey(t)
	code, raw := doJSON(t, http.MethodPost, "/api/v1/me/subscriptions/"+subID+"/cancel", cancelKey, `{"at_period_end": false}`, asCustomer(signIn(t, email))...)
	if code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, raw)
	}
	waitFor(t, "the renewal to stop", 15*time.Second, func() bool {
		d, err := temporal.DescribeWorkflowExecution(context.Background(), renewalID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus().String() == "Completed"
	})
	if s, _, _ := subscriptionStatus(t, subID); s != "canceled" {
		t.Fatalf("subscription %s after cancel", s)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.workflow_id = $1`, renewalID); n != 1 {
		t.Fatalf("%d charge attempts after a cancel during dunning, want 1", n)
	}
	waitEmails(t, email, "cancel", 1)
	recordHistory(t, renewalID, "renewal_canceled_in_dunning")
	recordHistory(t, workflows.SubscriptionChangeWorkflowID(subID, cancelKey), "subscription_change_cancel")
}

// doJSON sends a request with a JSON body, the Idempotency-Key key (none when empty) and any
// further headers given as name, value pairs, and returns the status and the raw body.
func doJSON(t testing.TB, method, path, key, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, dev.APIURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestCleanupRemovesOnlyWhatItShould(t *testing.T) {
	ctx := context.Background()
	tag := strings.ToLower(newKey(t)[4:14])
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	order := func(name, status string, age string) {
		exec(`INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, customer_email, customer_name, status,
			total_amount, currency, provider, created_at) VALUES ($1, $1, 'h', $1, 'c@example.com', 'C', $2, 100, 'usd', 'stripe', now() - $3::interval)`,
			"cleanup-"+tag+"-"+name, status, age)
	}
	order("abandoned", "pending", "3 days")
	order("recent", "pending", "1 hour")
	order("old-completed", "completed", "30 days")
	user := func(name, status, age string) {
		exec(`INSERT INTO users (email, name, status, created_at) VALUES ($1, 'U', $2, now() - $3::interval)`,
			name+"-"+tag+"@example.com", status, age)
	}
	user("stale", "pending", "60 days")
	user("fresh", "pending", "2 days")
	user("loyal", "confirmed", "400 days")
	exec(`INSERT INTO emails (event_key, kind, recipient, subject, status, created_at) VALUES
		($1, 'receipt', 'x@example.com', 's', 'sent', now() - interval '200 days'), ($2, 'receipt', 'x@example.com', 's', 'sent', now())`,
		"cleanup-"+tag+"-old", "cleanup-"+tag+"-new")
	exec(`INSERT INTO provider_events (provider, event_id, type, payload, received_at) VALUES
		('stripe', $1, 'payment_intent.succeeded', '{}', now() - interval '200 days'), ('stripe', $2, 'payment_intent.succeeded', '{}', now())`,
		"evt_old_"+tag, "evt_new_"+tag)

	triggerSchedule(t, workflows.CleanupScheduleID)
	waitFor(t, "cleanup", 30*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM provider_events WHERE event_id = $1`, "evt_old_"+tag) == 0 &&
			queryInt(t, `SELECT count(*) FROM orders WHERE checkout_id = $1 AND status = 'expired'`, "cleanup-"+tag+"-abandoned") == 1
	})
	checks := []struct {
		what string
		sql  string
		arg  string
		want int
	}{
		{"abandoned checkout expired", `SELECT count(*) FROM orders WHERE checkout_id = $1 AND status = 'expired' AND failure_code IS NOT NULL`, "cleanup-" + tag + "-abandoned", 1},
		{"recent checkout kept pending", `SELECT count(*) FROM orders WHERE checkout_id = $1 AND status = 'pending'`, "cleanup-" + tag + "-recent", 1},
		{"completed order kept", `SELECT count(*) FROM orders WHERE checkout_id = $1 AND status = 'completed'`, "cleanup-" + tag + "-old-completed", 1},
		{"stale unconfirmed user deleted", `SELECT count(*) FROM users WHERE email = $1`, "stale-" + tag + "@example.com", 0},
		{"fresh unconfirmed user kept", `SELECT count(*) FROM users WHERE email = $1`, "fresh-" + tag + "@example.com", 1},
		{"confirmed user kept", `SELECT count(*) FROM users WHERE email = $1`, "loyal-" + tag + "@example.com", 1},
		{"old email record pruned", `SELECT count(*) FROM emails WHERE event_key = $1`, "cleanup-" + tag + "-old", 0},
		{"new email record kept", `SELECT count(*) FROM emails WHERE event_key = $1`, "cleanup-" + tag + "-new", 1},
		{"new webhook event kept", `SELECT count(*) FROM provider_events WHERE event_id = $1`, "evt_new_" + tag, 1},
	}
	for _, c := range checks {
		if got := queryInt(t, c.sql, c.arg); got != c.want {
			t.Errorf("%s: count %d, want %d", c.what, got, c.want)
		}
	}
	recordHistory(t, latestRun(t, workflows.CleanupWorkflowType), "cleanup")
}

func TestDailySummaryIsStoredAndEmailedToOps(t *testing.T) {
	day := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	before := len(emailsTo(t, "ops@cartflow.local"))
	triggerSchedule(t, workflows.DailySummaryScheduleID)
	waitFor(t, "the summary row", 30*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM daily_summaries WHERE day = $1::date`, day) == 1
	})
	msgs := waitEmails(t, "ops@cartflow.local", day, 1)
	if len(emailsTo(t, "ops@cartflow.local")) <= before || len(msgs) != 1 {
		t.Fatalf("ops emails for %s: %+v", day, msgs)
	}
	recordHistory(t, latestRun(t, workflows.DailySummaryWorkflowType), "daily_summary")
}

func TestPaidPlanChargesTheFirstPeriodWithTheSavedCard(t *testing.T) {
	email := "yearly-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	body := validBody(email, "tok_visa")
	body.Items = []item{{SKU: "plan-yearly", Quantity: 1}}
	code, resp := postJSON(t, newKey(t), body)
	if code != http.StatusCreated || resp.Status != "completed" || resp.Amount != 9000 {
		t.Fatalf("yearly checkout: %d %+v", code, resp)
	}
	subID := subscriptionOf(t, resp.OrderID)
	var status, customerRef, pmRef string
	var start, end time.Time
	if err := db.QueryRow(context.Background(), `SELECT status, provider_customer_ref, provider_payment_method_ref, current_period_start, current_period_end
		FROM subscriptions WHERE id = $1`, subID).Scan(&status, &customerRef, &pmRef, &start, &end); err != nil {
		t.Fatal(err)
	}
	if status != "active" || !end.Equal(start.AddDate(1, 0, 0)) {
		t.Fatalf("subscription %s from %v to %v", status, start, end)
	}
	// One on-session charge of the saved card, set up for the renewals to come.
	var charges []string
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.Customer == customerRef {
			charges = append(charges, pi.ID)
			if pi.PaymentMethod != pmRef || pi.Amount != 9000 || pi.Status != "succeeded" || pi.OffSession || pi.SetupFutureUsage != "off_session" {
				t.Fatalf("first-period charge %+v", pi)
			}
		}
	}
	if len(charges) != 1 {
		t.Fatalf("%d charges for the customer", len(charges))
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'charge' AND status = 'succeeded' AND amount = 9000`, resp.OrderID); n != 1 {
		t.Fatalf("%d succeeded charges in the ledger", n)
	}
}

func TestTrialEndingReminderIsSentOnce(t *testing.T) {
	email := "reminder-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subID, _ := subscribe(t, email, "pm_card_visa")
	// The trial now ends in two days: inside the three-day reminder window.
	if _, err := db.Exec(context.Background(), `UPDATE subscriptions SET current_period_start = now() - interval '12 days',
		current_period_end = now() + interval '2 days', trial_end = now() + interval '2 days' WHERE id = $1`, subID); err != nil {
		t.Fatal(err)
	}
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	reminder := waitEmails(t, email, "trial ends", 1)
	if text := emailText(t, reminder[0].ID); !strings.Contains(text, "/account/subscriptions/"+subID) {
		t.Errorf("the reminder does not link to managing the subscription:\n%s", text)
	}
	waitFor(t, "the reminder to be recorded", 10*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM subscriptions WHERE id = $1 AND trial_reminder_sent_for = trial_end`, subID) == 1
	})
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	time.Sleep(2 * time.Second)
	if got := waitEmails(t, email, "trial ends", 1); len(got) != 1 {
		t.Fatalf("%d reminders after a second sweep", len(got))
	}
	if s, _, _ := subscriptionStatus(t, subID); s != "trialing" {
		t.Fatalf("a reminder changed the subscription to %s", s)
	}
}

// Two sweeps over the same due subscriptions, run at the same time on the real server, start
// each renewal once: Temporal refuses a renewal ID used before.
func TestOverlappingSweepsRenewEachPeriodOnce(t *testing.T) {
	ctx := context.Background()
	email := "overlap-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subID, _ := subscribe(t, email, "pm_card_visa")
	var userID, customerRef, pmRef string
	if err := db.QueryRow(ctx, `SELECT user_id::text, provider_customer_ref, provider_payment_method_ref FROM subscriptions WHERE id = $1`,
		subID).Scan(&userID, &customerRef, &pmRef); err != nil {
		t.Fatal(err)
	}
	const n = 40
	if _, err := db.Exec(ctx, `INSERT INTO subscriptions (user_id, sku, status, provider, provider_customer_ref,
			provider_payment_method_ref, current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT $1, 'plan-monthly', 'active', 'stripe', $2, $3, now() - interval '1 month',
			date_trunc('second', now()) - interval '1 minute' - g * interval '1 second', 900, 'usd', 'month'
		FROM generate_series(1, $4) g`, userID, customerRef, pmRef, n); err != nil {
		t.Fatal(err)
	}
	in := workflows.RenewalSweepInput{AsOf: time.Now(), BatchSize: 7, Dunning: workflows.DunningPolicy{RetryAfter: []time.Duration{time.Hour}}}
	var runs [2]client.WorkflowRun
	for i := range runs {
		var err error
		runs[i], err = temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: fmt.Sprintf("overlap-sweep-%s-%d", subID, i), TaskQueue: workflows.TaskQueue,
		}, workflows.RenewalSweepWorkflowType, in)
		if err != nil {
			t.Fatal(err)
		}
	}
	var progress [2]workflows.SweepProgress
	for i, r := range runs {
		if err := r.Get(ctx, &progress[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Each sweep accounts for every due subscription it saw, and between them they started all of
	// mine. Either may see fewer due than were seeded: a renewal the other started can finish,
	// and extend its period, before this one pages that far. That each period was renewed once
	// is checked below, in Postgres and at Stripe.
	for _, p := range progress {
		if p.Started+p.AlreadyStarted != p.Due {
			t.Fatalf("sweep %+v started or found started fewer renewals than it saw due", p)
		}
	}
	if progress[0].Started+progress[1].Started < n {
		t.Fatalf("sweeps %+v and %+v started fewer than the %d due subscriptions of mine", progress[0], progress[1], n)
	}
	// The seeded subscriptions are active already; renewed ones have a period that ends in the future.
	waitFor(t, "every renewal", time.Minute, func() bool {
		return queryInt(t, `SELECT count(*) FROM subscriptions WHERE user_id = $1 AND status = 'active'
			AND current_period_end > now()`, userID) == n
	})
	if got := queryInt(t, `SELECT count(*) FROM orders o JOIN subscriptions s ON s.id = o.subscription_id
		WHERE s.user_id = $1 AND o.kind = 'renewal'`, userID); got != n {
		t.Fatalf("%d renewal orders for %d subscriptions", got, n)
	}
	keys := map[string]bool{}
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		if pi.Customer == customerRef {
			if keys[pi.Metadata["cartflow_idempotency_key"]] {
				t.Fatalf("two charges with key %s", pi.Metadata["cartflow_idempotency_key"])
			}
			keys[pi.Metadata["cartflow_idempotency_key"]] = true
		}
	}
	if len(keys) != n {
		t.Fatalf("%d charges at Stripe for %d renewals", len(keys), n)
	}
}

func TestNewCardDuringDunningRenewsAtOnce(t *testing.T) {
	email := "fixed-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subID, _ := subscribe(t, email, "pm_card_chargeCustomerFail")
	periodEnd := makeDue(t, subID)
	triggerSchedule(t, workflows.RenewalSweepScheduleID)
	waitFor(t, "past_due", 30*time.Second, func() bool {
		s, _, _ := subscriptionStatus(t, subID)
		return s == "past_due"
	})

	code, raw := doJSON(t, http.MethodPut, "/api/v1/me/subscriptions/"+subID+"/payment-method", newKey(t),
		`{"provider":"stripe","token":"pm_card_visa"}`, asCustomer(signIn(t, email))...)
	if code != http.StatusOK {
		t.Fatalf("new card: %d %s", code, raw)
	}
	// The renewal was waiting a day for its next attempt; the new card cuts the wait short.
	waitFor(t, "the renewal with the new card", 15*time.Second, func() bool {
		s, _, _ := subscriptionStatus(t, subID)
		return s == "active"
	})
	renewalID := workflows.RenewalWorkflowID(subID, periodEnd)
	var pmRef string
	if err := db.QueryRow(context.Background(), `SELECT provider_payment_method_ref FROM subscriptions WHERE id = $1`, subID).Scan(&pmRef); err != nil {
		t.Fatal(err)
	}
	var attempts []string
	for _, pi := range dev.StripeProxy.PaymentIntents() {
		key := pi.Metadata["cartflow_idempotency_key"]
		if strings.HasPrefix(key, renewalID+"/charge/") {
			attempts = append(attempts, key+" "+pi.Status)
			if key == renewalID+"/charge/2" && (pi.PaymentMethod != pmRef || pi.Status != "succeeded") {
				t.Fatalf("second attempt %+v, want the new card %s", pi, pmRef)
			}
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("renewal attempts at Stripe: %v", attempts)
	}
	if n := queryInt(t, `SELECT count(*) FROM subscription_events WHERE subscription_id = $1 AND from_status = 'past_due' AND to_status = 'active'`, subID); n != 1 {
		t.Fatalf("%d past_due→active events", n)
	}
}
