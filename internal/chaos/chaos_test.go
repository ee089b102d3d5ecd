//go:build chaos

package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	"github.com/cartflow/cartflow/internal/dev/stack"
)

// The suite's knobs. The defaults are what `make chaos` runs; a quick run shortens them, e.g.
// make chaos CHAOS_FLAGS='-chaos.outage=10s -chaos.checkouts=30 -chaos.kills=3 -chaos.batch=15'.
var (
	outageFor   = flag.Duration("chaos.outage", 60*time.Second, "how long the Stripe layer is down in the provider-outage scenario")
	slowAnswer  = flag.Duration("chaos.slow", 5*time.Second, "how long the Stripe layer takes per answer in the slow-provider scenario")
	killCount   = flag.Int("chaos.kills", 10, "how often the worker is SIGKILLed in the worker-kill scenario")
	killLoad    = flag.Int("chaos.checkouts", 100, "checkouts during the worker kills")
	batchSize   = flag.Int("chaos.batch", 40, "checkouts (or due subscriptions) in each of the other scenarios")
	settleFor   = flag.Duration("chaos.settle", 3*time.Minute, "how long after its faults end a scenario's orders have to reach a final state")
	reportDir   = flag.String("chaos.out", "", "where the JSON report goes (default: .data/chaos in the repository)")
	concurrency = flag.Int("chaos.concurrency", 24, "checkouts in flight at most; more arrive only as others finish")
)

// harness is what every scenario works with: the running stack, its database, a Temporal client
// that reads payloads as the BFF does, and the supervisor that restarts what a scenario kills.
type harness struct {
	dev      *stack.Stack
	db       *pgxpool.Pool
	temporal client.Client
	sup      *supervisor
}

// TestChaos starts one stack like make dev's (Temporal on a file database, so that it survives a
// restart) and runs every scenario against it in turn, printing one row per scenario. It fails
// when any row counts a lost order, a double charge, an orphan payment, a 5xx other than 503 or
// a status URL answering 404 after a 202, or when a scenario found anything else wrong; the
// table is printed and written either way.
func TestChaos(t *testing.T) {
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := *reportDir
	if out == "" {
		out = filepath.Join(root, ".data", "chaos")
	}
	// The stack's state and logs stay after the run, for reading what went wrong; each run
	// starts from nothing.
	dir := filepath.Join(out, "stack")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, dir)
	started := time.Now()
	var rows []row
	for _, sc := range scenarios() {
		ok := t.Run(sc.name, func(t *testing.T) {
			r := h.runScenario(t, sc)
			rows = append(rows, r)
			for _, f := range r.Findings {
				t.Error(f)
			}
			if r.failed() {
				t.Errorf("%s: lost %d, double-charged %d, orphans %d, mismatched %d, 5xx other than 503: %d, 404 after 202: %d",
					sc.name, r.Lost, r.DoubleCharged, r.Orphans, r.Mismatched, r.ServerErrors, r.NotFoundAfterAccept)
			}
		})
		if !ok && !h.sup.healthy(t.Context()) {
			t.Log("the stack did not recover from the last scenario; the rest are skipped")
			break
		}
	}
	rep := report{Started: started.UTC(), Seconds: time.Since(started).Seconds(), Flags: flagValues(), Rows: rows,
		Logs: filepath.Join(dir, "logs"), Incidents: h.sup.incidents()}
	table := rep.table()
	fmt.Println(table)
	path, err := rep.write(out)
	if err != nil {
		t.Errorf("write the report: %v", err)
	} else {
		fmt.Println("report:", path, "  logs:", rep.Logs)
	}
}

// startHarness starts the stack and everything the scenarios need, and stops it when the test ends.
func startHarness(t *testing.T, dir string) *harness {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dev, err := stack.Start(ctx, stack.Options{
		Dir: dir, Persistent: true, Mailpit: true,
		// All of the suite's traffic comes from 127.0.0.1 with Stripe's few test cards, which
		// the rate limits and decline limits would soon refuse. The schedules stay paused so that
		// only the renewal scenario sweeps, when it means to.
		Env: append([]string{"LOG_LEVEL=info", "SCHEDULES_PAUSED=true"}, stack.LimitsOff...),
	})
	if err != nil {
		t.Fatalf("start the stack: %v", err)
	}
	h := &harness{dev: dev}
	t.Cleanup(dev.Stop)
	if h.db, err = pgxpool.New(ctx, dev.DatabaseURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.db.Close)
	dc, err := e2ekit.DevDataConverter()
	if err != nil {
		t.Fatal(err)
	}
	if h.temporal, err = e2ekit.DialTemporal(dev.Temporal.HostPort(), dc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.temporal.Close)
	h.sup = newSupervisor(dev)
	t.Cleanup(h.sup.stop)
	return h
}

// flagValues lists the suite's settings for the report.
func flagValues() map[string]string {
	out := map[string]string{}
	flag.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "chaos.") {
			out[f.Name] = f.Value.String()
		}
	})
	return out
}
