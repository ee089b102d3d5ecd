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
	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	"github.com/cartflow/cartflow/internal/dev/loadgen"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/workflows"
)

// benchSizes are the numbers of due subscriptions BenchmarkRenewalSweep seeds, from
// CARTFLOW_BENCH_SUBS (comma-separated); two sizes show how the cost grows with N.
func benchSizes(b *testing.B) []int {
	spec := os.Getenv("CARTFLOW_BENCH_SUBS")
	if spec == "" {
		spec = "1000,10000"
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("CARTFLOW_BENCH_SUBS: %q is not a positive count", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// BenchmarkRenewalSweep seeds N subscriptions whose period has ended, starts a renewal sweep
// and measures until every one is renewed: the sweep's paging and fan-out, then each Renewal's
// off-session charge through the Stripe layer, its Postgres writes and its receipt email. A
// bare-engine baseline (workflows of three no-op activities) is measured in the same run, and
// the ratio is reported, because the machine is shared and noisy. Each size runs once; b.N is
// not used, so run it with -benchtime 1x.
func BenchmarkRenewalSweep(b *testing.B) {
	w, err := loadgen.StartBareWorker(temporal)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	prefix := strings.ToLower(newKey(b))

	// One customer with a saved card at the Stripe layer pays for every seeded subscription.
	gw := billing.NewStripe(billing.StripeConfig{SecretKey: stack.LocalStripeKey, APIURL: dev.StripeURL, Timeout: 10 * time.Second})
	saved, err := gw.SavePaymentMethod(ctx, billing.SavePaymentMethodRequest{
		IdempotencyKey: prefix + "/save", Token: "pm_card_visa", Email: prefix + "@example.com", Name: "Bench",
	})
	if err != nil {
		b.Fatal(err)
	}

	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			email := fmt.Sprintf("%s-%d@example.com", prefix, n)
			var userID string
			if err := db.QueryRow(ctx, `INSERT INTO users (email, name, status) VALUES ($1, 'Bench', 'confirmed') RETURNING id::text`,
				email).Scan(&userID); err != nil {
				b.Fatal(err)
			}
			if _, err := e2ekit.SeedDueSubscriptions(ctx, db, userID, saved.CustomerRef, saved.PaymentMethodRef, n); err != nil {
				b.Fatal(err)
			}
			asOf := time.Now()

			// The baseline: a tenth as many bare workflows, as many at once as the renewals get.
			bareN := max(n/10, 50)
			bare, err := loadgen.Closed(bareN, 32, func(i int) error {
				return loadgen.RunBare(ctx, temporal, fmt.Sprintf("%s-bare-%d-%d", prefix, n, i))
			})
			if err != nil {
				b.Fatal(err)
			}

			b.ResetTimer()
			start := time.Now()
			run, err := temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: fmt.Sprintf("%s-sweep-%d", prefix, n), TaskQueue: workflows.TaskQueue,
			}, workflows.RenewalSweepWorkflowType, workflows.RenewalSweepInput{
				AsOf: asOf, BatchSize: 500, Dunning: workflows.DunningPolicy{RetryAfter: []time.Duration{24 * time.Hour}},
			})
			if err != nil {
				b.Fatal(err)
			}
			var progress workflows.SweepProgress
			if err := run.Get(ctx, &progress); err != nil {
				b.Fatal(err)
			}
			sweepTime := time.Since(start)
			deadline := time.Now().Add(30 * time.Minute)
			for {
				var renewed int
				if err := db.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE user_id = $1 AND current_period_end > $2`,
					userID, asOf).Scan(&renewed); err != nil {
					b.Fatal(err)
				}
				if renewed == n {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d renewed after 30 minutes", renewed, n)
				}
				time.Sleep(250 * time.Millisecond)
			}
			total := time.Since(start)
			b.StopTimer()
			if progress.Started < n {
				b.Fatalf("sweep started %d renewals for %d due subscriptions", progress.Started, n)
			}
			rate := float64(n) / total.Seconds()
			bareRate := bare.Rate()
			b.ReportMetric(rate, "renewals/s")
			b.ReportMetric(float64(n)/sweepTime.Seconds(), "swept/s")
			b.ReportMetric(float64(total.Microseconds())/float64(n), "µs/renewal")
			b.ReportMetric(bareRate, "bare-workflows/s")
			b.ReportMetric(rate/bareRate, "renewal/bare")
		})
	}
}
