//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/workflows"
)

// renewalPrice is what SeedDueSubscriptions bills a period, in cents.
const renewalPrice = 900

// 9. A renewal sweep over -chaos.batch due subscriptions (pages of five) loses its worker three
// times: when the first renewal has begun (the sweep still paging), and when a third and two
// thirds of the subscriptions are renewed. Each subscription must be renewed exactly once for
// its period, and charged once.
func renewalWorkerKills(ctx context.Context, h *harness, r *row) {
	n := *batchSize
	const pageSize = 5
	prefix := "renew-" + randomText()
	gw := billing.NewStripe(billing.StripeConfig{SecretKey: stack.LocalStripeKey, APIURL: h.dev.StripeURL, Timeout: 10 * time.Second})
	saved, err := gw.SavePaymentMethod(ctx, billing.SavePaymentMethodRequest{
		IdempotencyKey: prefix + "/save", Token: "pm_card_visa", Email: prefix + "@example.com", Name: "Chaos Renewals"})
	if err != nil {
		r.finding("save the card the renewals charge: %v", err)
		return
	}
	var userID string
	if err := h.db.QueryRow(ctx, `INSERT INTO users (email, name, status) VALUES ($1, 'Chaos Renewals', 'confirmed') RETURNING id::text`,
		prefix+"@example.com").Scan(&userID); err != nil {
		r.finding("create the customer: %v", err)
		return
	}
	subs, err := e2ekit.SeedDueSubscriptions(ctx, h.db, userID, saved.CustomerRef, saved.PaymentMethodRef, n)
	if err != nil {
		r.finding("seed the subscriptions: %v", err)
		return
	}
	renewalIDs := make([]string, len(subs))
	byRenewalID := map[string]e2ekit.DueSubscription{}
	for i, s := range subs {
		renewalIDs[i] = workflows.RenewalWorkflowID(s.ID, s.PeriodEnd)
		byRenewalID[renewalIDs[i]] = s
	}
	r.Faults = fmt.Sprintf("renewal sweep over %d due subscriptions, pages of %d; worker SIGKILLed when the first renewal began and at 1/3 and 2/3 renewed",
		n, pageSize)
	piFrom := len(h.dev.StripeProxy.PaymentIntents())

	count := func(query string, args ...any) int {
		var c int
		if err := h.db.QueryRow(ctx, query, args...).Scan(&c); err != nil {
			return -1
		}
		return c
	}
	begun := func() int { return count(`SELECT count(*) FROM orders WHERE workflow_id = ANY($1)`, renewalIDs) }
	renewed := func() int {
		return count(`SELECT count(*) FROM subscriptions WHERE user_id = $1 AND current_period_end > now()`, userID)
	}

	sweepID := prefix + "-sweep"
	run, err := h.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: sweepID, TaskQueue: workflows.TaskQueue},
		workflows.RenewalSweepWorkflowType, workflows.RenewalSweepInput{AsOf: time.Now(), BatchSize: pageSize,
			Dunning: workflows.DunningPolicy{RetryAfter: []time.Duration{24 * time.Hour}}})
	if err != nil {
		r.finding("start the sweep: %v", err)
		return
	}
	deadline := time.Now().Add(*settleFor)
	kills := []struct {
		when  string
		ready func() bool
	}{
		{"the first renewal began", func() bool { return begun() > 0 }},
		{"a third renewed", func() bool { return renewed() >= n/3 }},
		{"two thirds renewed", func() bool { return renewed() >= 2*n/3 }},
	}
	for _, k := range kills {
		for !k.ready() {
			if time.Now().After(deadline) || !sleep(ctx, 50*time.Millisecond) {
				r.finding("never reached the point to kill at: %s", k.when)
				break
			}
		}
		sweepRunning := false
		if desc, err := h.temporal.DescribeWorkflowExecution(ctx, sweepID, ""); err == nil {
			sweepRunning = desc.GetWorkflowExecutionInfo().GetCloseTime() == nil
		}
		began, done := begun(), renewed()
		if err := h.sup.crash(ctx, workerProcess); err != nil {
			r.finding("kill the worker: %v", err)
			return
		}
		r.note("killed when %s: %d renewals begun, %d renewed, sweep still running: %v", k.when, began, done, sweepRunning)
	}

	sweepCtx, cancel := context.WithDeadline(ctx, deadline)
	var progress workflows.SweepProgress
	err = run.Get(sweepCtx, &progress)
	cancel()
	if err != nil {
		r.finding("the sweep did not finish: %v", err)
	} else {
		r.note("sweep: %d due, %d renewals started, %d already started (a retried page)", progress.Due, progress.Started, progress.AlreadyStarted)
	}
	waitUntil(ctx, deadline, func() bool { return renewed() == n })
	h.auditRenewals(ctx, r, subs, byRenewalID, piFrom)
}

// auditRenewals counts the renewals into r: renewed exactly once for the period (one period
// further, paid once), failed cleanly (past due or canceled, nothing kept), lost (neither),
// charged twice for a period, or paid for a period that was not renewed.
func (h *harness) auditRenewals(ctx context.Context, r *row, subs []e2ekit.DueSubscription, byRenewalID map[string]e2ekit.DueSubscription, piFrom int) {
	r.Started += len(subs)
	ids := make([]string, len(subs))
	dues := make([]time.Time, len(subs))
	for i, s := range subs {
		ids[i], dues[i] = s.ID, s.PeriodEnd
	}
	type state struct {
		status        string
		renewed, once bool
	}
	states := map[string]state{}
	rows, err := h.db.Query(ctx, `SELECT s.id::text, s.status, s.current_period_end > d.due, s.current_period_end = d.due + interval '1 month'
		FROM subscriptions s JOIN unnest($1::uuid[], $2::timestamptz[]) AS d(id, due) ON d.id = s.id`, ids, dues)
	if err != nil {
		r.finding("read the subscriptions: %v", err)
		return
	}
	for rows.Next() {
		var id string
		var st state
		if err := rows.Scan(&id, &st.status, &st.renewed, &st.once); err != nil {
			r.finding("read the subscriptions: %v", err)
		}
		states[id] = st
	}
	rows.Close()

	all := h.dev.StripeProxy.PaymentIntents()
	kept := map[string][]stripefake.PaymentIntent{}
	ours := map[string]bool{}
	for _, pi := range all[min(piFrom, len(all)):] {
		key := pi.Metadata[chargeKeyMetadata]
		renewalID, _, isRenewal := strings.Cut(key, "/charge/")
		if _, mine := byRenewalID[renewalID]; !isRenewal || !mine {
			continue
		}
		ours[key] = true
		if paid(pi) > 0 {
			kept[byRenewalID[renewalID].ID] = append(kept[byRenewalID[renewalID].ID], pi)
		}
	}
	for _, s := range subs {
		st, charges := states[s.ID], kept[s.ID]
		var keptAmount int64
		for _, pi := range charges {
			keptAmount += paid(pi)
		}
		switch {
		case st.once:
			r.Completed++
			if keptAmount != renewalPrice {
				r.mismatch(s.ID, fmt.Sprintf("renewed, but Stripe keeps %d for the period (%s)", keptAmount, piSummary(charges)))
			}
		case st.renewed:
			r.mismatch(s.ID, "renewed more than once: the period moved further than one month")
		case st.status == "past_due" || st.status == "canceled":
			r.FailedCleanly++
		default:
			r.lost(s.ID, fmt.Sprintf("still %s and not renewed after the deadline (period ended %s)", st.status, s.PeriodEnd.Format(time.RFC3339)))
		}
		if len(charges) > 1 {
			r.DoubleCharged++
			r.finding("%s: DOUBLE CHARGE for one period: %s", s.ID, piSummary(charges))
		}
		if len(charges) > 0 && !st.renewed {
			r.Orphans++
			r.finding("%s: ORPHAN PAYMENT: not renewed, but Stripe keeps %s", s.ID, piSummary(charges))
		}
	}
	h.auditStrays(ctx, r, all[min(piFrom, len(all)):], ours)
}
