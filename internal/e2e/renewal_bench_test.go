//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/dev/loadgen"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/workflows"
)

// benchSweepBatch is the sweep's page size in the benchmark, the production default.
const benchSweepBatch = 500

// benchBareWorkflows is how many bare-engine workflows the baseline of each size runs: the same
// for every size, so that the baseline measures the machine, not the size.
const benchBareWorkflows = 500

// benchSizes are the numbers of due subscriptions BenchmarkRenewalSweep seeds, from
// CARTFLOW_BENCH_SUBS (comma-separated); several sizes show how the cost grows with N.
func benchSizes(b *testing.B) []int {
	return benchInts(b, "CARTFLOW_BENCH_SUBS", "1000,10000,100000")
}

// benchWindow is how many renewals a size is measured over, from CARTFLOW_BENCH_WINDOW. A size
// up to the window is measured until every subscription is renewed; a larger one over this many
// renewals once its sweep has started them all (see BenchmarkRenewalSweep).
func benchWindow(b *testing.B) int {
	return benchInts(b, "CARTFLOW_BENCH_WINDOW", "10000")[0]
}

func benchInts(b *testing.B, name, fallback string) []int {
	spec := os.Getenv(name)
	if spec == "" {
		spec = fallback
	}
	var ns []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a positive count", name, f)
		}
		ns = append(ns, n)
	}
	return ns
}

// renewalFigures is what one size measured.
type renewalFigures struct {
	n      int
	window bool
	// steadyRenewals were measured after the sweep returned (perRenewal), e2eCount from its start (perRenewalE2E).
	steadyRenewals, e2eCount, pages int
	perRenewal, perRenewalE2E       time.Duration
	sweepPerPage, barePerWorkflow   time.Duration
	sweepTime, e2eTime, steadyTime  time.Duration
}

// costRatio is the wall time of a renewal in units of a bare-engine workflow measured just before.
func (f renewalFigures) costRatio() float64 {
	return f.perRenewal.Seconds() / f.barePerWorkflow.Seconds()
}

// BenchmarkRenewalSweep seeds N due subscriptions (one customer each, as in production, all
// paying with one saved card at the Stripe layer), starts a renewal sweep, and measures:
//
//   - sweep-ms/page: the sweep's wall time per page of 500 (its keyset query and the batch of
//     workflow starts), over all N, while the renewals it started already run;
//   - ms/renewal: wall time per renewal once the sweep has finished, over every remaining
//     renewal, or over CARTFLOW_BENCH_WINDOW of them when N is larger than that window: each is
//     an off-session charge through the Stripe layer, its Postgres writes and a receipt email;
//   - e2e-ms/renewal: from the sweep's start to the receipt of the last renewal, per renewal,
//     for a size within the window; for a larger size the same over its first window renewals,
//     which then all run alongside the sweep;
//   - renewal/bare: ms/renewal over the wall time per workflow of a bare-engine baseline (three
//     no-op activities) measured just before, because the machine is shared and noisy;
//   - vs-first and cost-vs-first: ms/renewal and renewal/bare over the first size's.
//
// Each renewal's end is its receipt's sent_at in Postgres, so that how often the benchmark
// polls does not move the figures. Each size runs once; b.N is not used, so run it with
// -benchtime 1x. A size larger than the window leaves its other renewals running when it is
// measured, which would load the next size, so it must be the last.
func BenchmarkRenewalSweep(b *testing.B) {
	sizes, window := benchSizes(b), benchWindow(b)
	for i, n := range sizes {
		if n > window && i != len(sizes)-1 {
			b.Fatalf("CARTFLOW_BENCH_SUBS: %d is larger than the window (%d) and must come last", n, window)
		}
	}
	w, err := loadgen.StartBareWorker(temporal)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	prefix := strings.ToLower(newKey(b))

	// One saved card at the Stripe layer pays for every seeded subscription.
	gw := billing.NewStripe(billing.StripeConfig{SecretKey: stack.LocalStripeKey, APIURL: dev.StripeURL, Timeout: 10 * time.Second})
	saved, err := gw.SavePaymentMethod(ctx, billing.SavePaymentMethodRequest{
		IdempotencyKey: prefix + "/save", Token: "pm_card_visa", Email: prefix + "@example.com", Name: "Bench",
	})
	if err != nil {
		b.Fatal(err)
	}

	var all []renewalFigures
	for _, n := range sizes {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			f := measureRenewals(ctx, b, fmt.Sprintf("%s-%d", prefix, n), n, window, saved)
			all = append(all, f)
			first := all[0]
			b.ReportMetric(ms(f.perRenewal), "ms/renewal")
			b.ReportMetric(ms(f.perRenewalE2E), "e2e-ms/renewal")
			b.ReportMetric(ms(f.sweepPerPage), "sweep-ms/page")
			b.ReportMetric(ms(f.barePerWorkflow), "bare-ms/workflow")
			b.ReportMetric(f.costRatio(), "renewal/bare")
			b.ReportMetric(f.perRenewal.Seconds()/first.perRenewal.Seconds(), "vs-first")
			b.ReportMetric(f.costRatio()/first.costRatio(), "cost-vs-first")
		})
	}
	if len(all) > 0 {
		b.Log(renewalTable(all))
	}
}

// measureRenewals seeds n due subscriptions, each with a customer of its own whose email starts
// with tag, and measures one sweep over them and their renewals.
func measureRenewals(ctx context.Context, b *testing.B, tag string, n, window int, saved billing.SavedPaymentMethod) renewalFigures {
	f := renewalFigures{n: n, window: n > window, pages: n/benchSweepBatch + 1}
	if _, err := db.Exec(ctx, `WITH u AS (
			INSERT INTO users (email, name, status)
			SELECT $1 || '-' || g || '@example.com', 'Bench', 'confirmed' FROM generate_series(1, $4::int) g
			RETURNING id)
		INSERT INTO subscriptions (user_id, sku, status, provider, provider_customer_ref, provider_payment_method_ref,
			current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT id, 'plan-monthly', 'active', 'stripe', $2, $3, now() - interval '1 month',
			date_trunc('second', now()) - interval '1 minute' - (row_number() OVER ()) * interval '1 second', 900, 'usd', 'month'
		FROM u`, tag, saved.CustomerRef, saved.PaymentMethodRef, n); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE users, subscriptions`); err != nil {
		b.Fatal(err)
	}
	asOf := time.Now()

	bare, err := loadgen.Closed(benchBareWorkflows, 32, func(int) error {
		return loadgen.RunBare(ctx, temporal, fmt.Sprintf("%s-bare-%s", tag, strings.ToLower(newKey(b))))
	})
	if err != nil {
		b.Fatal(err)
	}
	bareTime := bare.Wall
	f.barePerWorkflow = bareTime / benchBareWorkflows

	b.ResetTimer()
	start := time.Now()
	run, err := temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		// Where the schedule runs it, apart from the renewals it starts.
		ID: tag + "-sweep", TaskQueue: workflows.JobsTaskQueue,
	}, workflows.RenewalSweepWorkflowType, workflows.RenewalSweepInput{
		AsOf: asOf, BatchSize: benchSweepBatch, Dunning: workflows.DunningPolicy{RetryAfter: []time.Duration{24 * time.Hour}},
	})
	if err != nil {
		b.Fatal(err)
	}
	// Get follows the sweep through its continue-as-new runs to the last one's result.
	var progress workflows.SweepProgress
	if err := run.Get(ctx, &progress); err != nil {
		b.Fatal(err)
	}
	sweepEnd := time.Now()
	f.sweepTime = sweepEnd.Sub(start)
	f.sweepPerPage = f.sweepTime / time.Duration(f.pages)
	if progress.Started != n {
		b.Fatalf("the sweep started %d renewals for %d due subscriptions (%+v)", progress.Started, n, progress)
	}

	// The renewals' receipts, found by the seeded customers' addresses among the emails written
	// since the sweep started (emails_created_at_idx), so that a poll reads this size's rows only.
	pattern := tag + "-%"
	const receipts = `FROM emails WHERE created_at >= $1 AND status = 'sent' AND event_key LIKE 'receipt/order/%' AND recipient LIKE $2`
	target := n
	if f.window {
		// The first window renewals after the sweep ended, however many finished before.
		var before int
		if err := db.QueryRow(ctx, `SELECT count(*) `+receipts+` AND sent_at <= $3`, start, pattern, sweepEnd).Scan(&before); err != nil {
			b.Fatal(err)
		}
		target = min(n, before+window)
	}
	deadline := time.Now().Add(60 * time.Minute)
	for {
		var done int
		if err := db.QueryRow(ctx, `SELECT count(*) `+receipts, start, pattern).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if done >= target {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d renewals done after an hour", done, target)
		}
		// Polls no oftener than a hundredth of the time so far: the count reads every receipt of
		// this size, and the figures come from sent_at, not from when a poll noticed.
		time.Sleep(max(250*time.Millisecond, time.Since(start)/100))
	}
	b.StopTimer()

	// The nth receipt's sent_at (1-based) among those sent after from.
	nth := func(from time.Time, k int) time.Time {
		var at time.Time
		if err := db.QueryRow(ctx, `SELECT sent_at `+receipts+` AND sent_at > $3 ORDER BY sent_at OFFSET $4 LIMIT 1`,
			start, pattern, from, k-1).Scan(&at); err != nil {
			b.Fatalf("receipt %d after %s: %v", k, from.Format(time.RFC3339Nano), err)
		}
		return at
	}
	f.e2eCount = min(n, window)
	f.e2eTime = nth(start, f.e2eCount).Sub(start)
	f.perRenewalE2E = f.e2eTime / time.Duration(f.e2eCount)
	var before int
	if err := db.QueryRow(ctx, `SELECT count(*) `+receipts+` AND sent_at <= $3`, start, pattern, sweepEnd).Scan(&before); err != nil {
		b.Fatal(err)
	}
	f.steadyRenewals = target - before
	if f.steadyRenewals <= 0 {
		b.Fatalf("every renewal was done before the sweep returned: nothing to measure after it")
	}
	f.steadyTime = nth(sweepEnd, f.steadyRenewals).Sub(sweepEnd)
	f.perRenewal = f.steadyTime / time.Duration(f.steadyRenewals)
	b.Logf("subs=%d: sweep %s (%d pages); %d renewals done when it returned; %d more in %s; first %d in %s",
		n, f.sweepTime.Round(time.Millisecond), f.pages, before, f.steadyRenewals, f.steadyTime.Round(time.Millisecond),
		f.e2eCount, f.e2eTime.Round(time.Millisecond))
	return f
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// renewalTable is the figures of every size as a Markdown table, for docs/testing.md.
func renewalTable(all []renewalFigures) string {
	var s strings.Builder
	s.WriteString("\n| N | measured | sweep ms/page | ms/renewal | e2e ms/renewal | bare ms/workflow | renewal/bare | vs first | cost vs first |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	first := all[0]
	for _, f := range all {
		measured := "all"
		if f.window {
			measured = fmt.Sprintf("%d after the sweep; e2e over the first %d", f.steadyRenewals, f.e2eCount)
		}
		fmt.Fprintf(&s, "| %d | %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", f.n, measured, ms(f.sweepPerPage),
			ms(f.perRenewal), ms(f.perRenewalE2E), ms(f.barePerWorkflow), f.costRatio(),
			f.perRenewal.Seconds()/first.perRenewal.Seconds(), f.costRatio()/first.costRatio())
	}
	return s.String()
}
