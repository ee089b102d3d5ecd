//go:build integration

package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartflow/cartflow/internal/store"
)

// duePageSize is the renewal sweep's page, the production default (RENEWAL_BATCH_SIZE).
const duePageSize = 500

// benchRounds is how many times BenchmarkSweepQueries walks the due pages and repeats the transitions.
const benchRounds = 5

// sweepCost is what one statement costs: the median wall time, and the buffers it touched in
// subscriptions and users (heap and indexes, hit or read), which no other process can change.
type sweepCost struct {
	median  time.Duration
	buffers float64
}

// BenchmarkSweepQueries measures, without Temporal, the two statements of a renewal whose cost
// could grow with the number of subscriptions, at each size of CARTFLOW_BENCH_SUBS (default
// 1000,10000,100000): the sweep's keyset page over N due subscriptions (plus N not yet due and
// N/10 canceled, which the index must skip), every page of the whole walk; and a subscription
// transition, which refreshes the customer's subscription status, for one customer who holds
// all of them. It reports for each the median ms and the buffers touched, and both over the
// first size's: the buffers are the machine-independent figure, the time the one that matters.
// Each size runs once; run it with -benchtime 1x.
func BenchmarkSweepQueries(b *testing.B) {
	spec := os.Getenv("CARTFLOW_BENCH_SUBS")
	if spec == "" {
		spec = "1000,10000,100000"
	}
	var firstPage, firstTransition sweepCost
	for i, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("CARTFLOW_BENCH_SUBS: %q is not a positive count", f)
		}
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			page, transition := measureSweepQueries(b, n)
			if i == 0 {
				firstPage, firstTransition = page, transition
			}
			b.ReportMetric(ms(page.median), "ms/page")
			b.ReportMetric(page.buffers, "buffers/page")
			b.ReportMetric(ms(transition.median), "ms/transition")
			b.ReportMetric(transition.buffers, "buffers/transition")
			b.ReportMetric(page.buffers/firstPage.buffers, "page-buffers-vs-first")
			b.ReportMetric(transition.buffers/firstTransition.buffers, "transition-buffers-vs-first")
			b.ReportMetric(page.median.Seconds()/firstPage.median.Seconds(), "page-ms-vs-first")
			b.ReportMetric(transition.median.Seconds()/firstTransition.median.Seconds(), "transition-ms-vs-first")
		})
	}
}

// measureSweepQueries seeds a fresh database and measures a due page over all N and one
// subscription transition of the customer who holds them.
func measureSweepQueries(b *testing.B, n int) (page, transition sweepCost) {
	ctx := context.Background()
	pool := pg.NewDB(b)
	var userID string
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, name, status) VALUES ('bench@example.com', 'Bench', 'confirmed')
		RETURNING id::text`).Scan(&userID); err != nil {
		b.Fatal(err)
	}
	// Due (ended a minute to a day ago), not yet due (a month ahead) and canceled, in one customer's name.
	if _, err := pool.Exec(ctx, `INSERT INTO subscriptions (user_id, sku, status, provider, provider_customer_ref,
			provider_payment_method_ref, current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT $1, 'plan-monthly', s.status, 'stripe', 'cus_bench', 'pm_bench', s.period_end - interval '1 month', s.period_end,
			900, 'usd', 'month'
		FROM (
			SELECT 'active' AS status, date_trunc('second', now()) - interval '1 minute' - g * interval '1 second' AS period_end
			FROM generate_series(1, $2::int) g
			UNION ALL SELECT 'active', now() + interval '1 month' - g * interval '1 second' FROM generate_series(1, $2::int) g
			UNION ALL SELECT 'canceled', now() - interval '2 days' - g * interval '1 second' FROM generate_series(1, $2::int / 10) g
		) s`, userID, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE subscriptions, users`); err != nil {
		b.Fatal(err)
	}
	// One connection, so that one forced flush of its statistics makes every statement's buffers
	// visible; the database is this benchmark's alone.
	cfg := pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer one.Close()
	st := store.New(one)
	counter := buffersCounter(ctx, b, one)
	asOf := time.Now()

	b.ResetTimer()
	// Every page of benchRounds walks is timed on its own and the median reported: on a shared
	// machine the other processes add time to some statements, never take it away.
	var pages []time.Duration
	before := counter()
	for range benchRounds {
		var afterEnd time.Time
		var afterID string
		seen := 0
		for {
			start := time.Now()
			due, err := st.DueSubscriptions(ctx, asOf, afterEnd, afterID, duePageSize)
			if err != nil {
				b.Fatal(err)
			}
			pages = append(pages, time.Since(start))
			seen += len(due)
			if len(due) < duePageSize {
				break
			}
			afterEnd, afterID = due[len(due)-1].PeriodEnd, due[len(due)-1].ID
		}
		if seen != n {
			b.Fatalf("the sweep's pages held %d due subscriptions, want %d", seen, n)
		}
	}
	page = sweepCost{median: median(pages), buffers: float64(counter()-before) / float64(len(pages))}

	// Transitions of the earliest due subscriptions, each refreshing the customer's status.
	// MarkPastDue again in the same period is a transition too (past_due to past_due), so every
	// round refreshes it as many times.
	first, err := st.DueSubscriptions(ctx, asOf, time.Time{}, "", 100)
	if err != nil {
		b.Fatal(err)
	}
	var transitions []time.Duration
	before = counter()
	for range benchRounds {
		for _, d := range first {
			start := time.Now()
			if _, err := st.MarkPastDue(ctx, d.ID, d.PeriodEnd, 1, "bench"); err != nil {
				b.Fatal(err)
			}
			transitions = append(transitions, time.Since(start))
		}
	}
	transition = sweepCost{median: median(transitions), buffers: float64(counter()-before) / float64(len(transitions))}
	b.StopTimer()
	b.Logf("subs=%d: %d pages of %d, median %s, %.0f buffers each; %d transitions, median %s, %.0f buffers each",
		n, len(pages), duePageSize, page.median.Round(time.Microsecond), page.buffers,
		len(transitions), transition.median.Round(time.Microsecond), transition.buffers)
	return page, transition
}

// buffersCounter returns a function that reads how many buffers of subscriptions and users (heap
// and indexes) have been touched so far. pool's one backend is asked to flush its statistics
// first, and they are read without a cached snapshot, so that a count is current.
func buffersCounter(ctx context.Context, b *testing.B, pool *pgxpool.Pool) func() int64 {
	if _, err := pool.Exec(ctx, `SET stats_fetch_consistency = none`); err != nil {
		b.Fatal(err)
	}
	return func() int64 {
		if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			b.Fatal(err)
		}
		var n int64
		if err := pool.QueryRow(ctx, `SELECT sum(coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0)
				+ coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0))::bigint
			FROM pg_statio_user_tables WHERE relid IN ('subscriptions'::regclass, 'users'::regclass)`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
}

// median returns the middle of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
