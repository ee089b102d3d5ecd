// Command bench measures cartflow on the whole local stack, started in the `make dev`
// configuration with every feature on (receipt emails through Mailpit, Mixpanel, Sentry, traces
// and Coralogix log shipping to a local sink, the payload codec), rate limits off for the load.
//
// `make bench` measures checkouts against the bare engine at two concurrencies, then the two
// hot reads in open loops, and the BFF's and the worker's memory before and after; `make soak`
// (-soak) runs a mixed load at half the maximum rate instead and watches memory and
// goroutines. It prints a table, writes the figures as JSON (-out), and exits non-zero on a run
// error, or with -strict also when a target is missed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/dev/loadgen"
	"github.com/cartflow/cartflow/internal/dev/sinks"
	"github.com/cartflow/cartflow/internal/dev/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, errTargetsMissed) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errTargetsMissed is run's answer under -strict when a figure misses its target.
var errTargetsMissed = errors.New("targets missed")

// settings are the command line's.
type settings struct {
	checkouts     int
	concurrencies []int
	readRate      float64
	readFor       time.Duration
	ordersRate    float64
	ordersFor     time.Duration
	soak          time.Duration
	soakWarmup    time.Duration
	soakEvery     time.Duration
	out           string
	strict        bool
	profile       bool
	keep          bool
	// env is added to the worker's and the BFF's environment, to measure another setting.
	env []string
}

// envFlag collects repeated -env KEY=VALUE flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func parse(args []string, getenv func(string) string) (settings, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var s settings
	checkouts := 200
	if v := getenv("CARTFLOW_BENCH_CHECKOUTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return s, fmt.Errorf("CARTFLOW_BENCH_CHECKOUTS=%q is not a positive count", v)
		}
		checkouts = n
	}
	fs.IntVar(&s.checkouts, "checkouts", checkouts, "checkouts (and bare workflows) per concurrency (env CARTFLOW_BENCH_CHECKOUTS)")
	conc := fs.String("concurrency", "8,32", "the concurrencies of the checkout phase, comma-separated")
	fs.Float64Var(&s.readRate, "read-rate", 2500, "GET /api/v1/checkouts/{id} requests per second")
	fs.DurationVar(&s.readFor, "read-duration", time.Minute, "how long the checkout reads are offered")
	fs.Float64Var(&s.ordersRate, "orders-rate", 300, "GET /api/v1/me/orders requests per second")
	fs.DurationVar(&s.ordersFor, "orders-duration", time.Minute, "how long the order-list reads are offered")
	fs.DurationVar(&s.soak, "soak", 0, "run the soak for this long instead of the benchmark (make soak: 10m)")
	fs.DurationVar(&s.soakWarmup, "soak-warmup", time.Minute, "the soak's warm-up, after which memory growth is measured")
	fs.DurationVar(&s.soakEvery, "soak-sample", 30*time.Second, "how often the soak samples memory and goroutines")
	fs.StringVar(&s.out, "out", "", "the JSON report's path (default .data/bench/<mode>-<time>.json); profiles go beside it")
	fs.BoolVar(&s.strict, "strict", false, "exit non-zero when a figure misses its target")
	fs.BoolVar(&s.profile, "profile", false, "capture 30 s CPU profiles of the BFF, the worker and the load generator in the checkout and read phases, and as the soak starts")
	fs.BoolVar(&s.keep, "keep", false, "keep the stack's folder (logs, databases) instead of deleting it")
	var env envFlag
	fs.Var(&env, "env", "KEY=VALUE added to the worker's and the BFF's environment, to measure another setting (repeatable)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	s.env = env
	for f := range strings.SplitSeq(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return s, fmt.Errorf("-concurrency: %q is not a positive count", f)
		}
		s.concurrencies = append(s.concurrencies, n)
	}
	if s.checkouts <= 0 || s.readRate < 0 || s.ordersRate < 0 || s.soak < 0 || s.soakEvery <= 0 {
		return s, errors.New("counts, rates and durations must be positive")
	}
	return s, nil
}

// bench is one run: the stack, the clients that drive it, and what was measured.
type bench struct {
	set    settings
	stdout io.Writer
	stack  *stack.Stack
	sink   *sinks.Server
	engine client.Client
	shop   *loadgen.Shop
	// tag makes this run's keys and emails its own, so that a stack reused through
	// DATABASE_URL holds no earlier run's under the same names.
	tag string
	// seq numbers every key and workflow id of the run, so that no two phases share one.
	seq    atomic.Int64
	outDir string
	stamp  string
	report report
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	set, err := parse(args, getenv)
	if err != nil {
		return err
	}
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	mode := "bench"
	if set.soak > 0 {
		mode = "soak"
	}
	now := time.Now()
	b := &bench{set: set, stdout: stdout, tag: strconv.FormatInt(now.UnixNano()%1e12, 36), stamp: now.Format("20060102-150405")}
	if set.out == "" {
		set.out = filepath.Join(root, ".data", "bench", mode+"-"+b.stamp+".json")
		b.set.out = set.out
	}
	b.outDir = filepath.Dir(set.out)
	if err := os.MkdirAll(b.outDir, 0o755); err != nil {
		return err
	}
	b.report = report{Mode: mode, Date: now.UTC().Format(time.RFC3339), Machine: loadgen.ThisMachine(), Commit: commit(root),
		Settings: set.describe()}

	if err := b.start(ctx); err != nil {
		return err
	}
	defer b.stop()

	if mode == "soak" {
		err = b.runSoak(ctx)
	} else {
		err = b.runBench(ctx)
	}
	b.report.Sinks = b.sink.Counts()
	if err != nil {
		// What was measured up to the error is still worth reading.
		b.report.Error = err.Error()
	}
	if werr := b.report.write(set.out); werr != nil && err == nil {
		err = werr
	}
	b.report.print(stdout)
	fmt.Fprintf(stdout, "\nJSON: %s\n", set.out)
	if err != nil {
		return err
	}
	if set.strict && b.report.Missed > 0 {
		return fmt.Errorf("%w: %d", errTargetsMissed, b.report.Missed)
	}
	return nil
}

// start brings the stack up in the make dev configuration, with the sink, the engine client
// and the bare worker.
func (b *bench) start(ctx context.Context) (err error) {
	dir, err := os.MkdirTemp("", "cartflow-bench-")
	if err != nil {
		return err
	}
	b.report.StackDir = dir
	if b.sink, err = sinks.Start(sinks.Options{Name: "bench", CountOnly: true}); err != nil {
		return err
	}
	opts := stack.DevOptions(dir)
	opts.Env = append(append([]string(nil), stack.LimitsOff...), b.sink.Env()...)
	if b.set.profile {
		opts.Env = append(opts.Env, "PPROF_ENABLED=true")
	}
	opts.Env = append(opts.Env, b.set.env...)
	fmt.Fprintf(b.stdout, "Starting the stack in %s (make dev's configuration, every feature on)...\n", dir)
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if b.stack, err = stack.Start(startCtx, opts); err != nil {
		return err
	}
	// The engine client speaks through the payload codec, as the worker and the BFF do.
	devCodec, err := codec.FromSettings(config.DevCodecKeys, config.DevCodecKeyID)
	if err != nil {
		return err
	}
	conv := codec.DataConverter(devCodec)
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if b.engine, err = client.Dial(client.Options{HostPort: b.stack.Temporal.HostPort(), Logger: quiet,
		DataConverter: conv, FailureConverter: codec.FailureConverter(conv)}); err != nil {
		return err
	}
	b.shop = &loadgen.Shop{APIURL: b.stack.APIURL, MailpitURL: b.stack.Mailpit.UIURL(), HTTP: loadgen.Client(3 * maxInFlight)} // the soak runs three open loops at once
	return nil
}

func (b *bench) stop() {
	if b.engine != nil {
		b.engine.Close()
	}
	if b.stack != nil {
		b.stack.Stop()
	}
	if b.sink != nil {
		b.sink.Close()
	}
	if !b.set.keep && b.report.StackDir != "" {
		_ = os.RemoveAll(b.report.StackDir)
	}
}

// maxInFlight bounds the open loops' requests in flight: far more than a healthy BFF needs at
// these rates (2,500/s at 10 ms is 25), so that a slow one shows as latency, not as a cap.
const maxInFlight = 512

// commit names the code measured: the commit, marked when the work tree had changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+changes"
	}
	return c
}

// processes are the stack's processes whose memory the run watches, by report name.
func (b *bench) processes() []watched {
	return []watched{
		{name: "bff", pid: b.stack.API().Pid(), metrics: b.stack.APIInternalURL + "/metrics"},
		{name: "worker", pid: b.stack.Worker().Pid(), metrics: b.stack.WorkerMetricsURL},
	}
}

type watched struct {
	name    string
	pid     int
	metrics string
}

// cpuTimes reads the CPU time used so far by each component of the stack and by this process,
// and the time the hypervisor stole from the machine, so that a phase can say which of them its
// load kept busy and how much of the two cores it had at all.
func (b *bench) cpuTimes() map[string]time.Duration {
	roots := map[string]int{"bff": b.stack.API().Pid(), "worker": b.stack.Worker().Pid(), "temporal": b.stack.Temporal.Process().Pid()}
	if b.stack.Postgres != nil {
		roots["postgres"] = b.stack.Postgres.Process().Pid()
	}
	out := map[string]time.Duration{}
	for name, pid := range roots {
		if d, err := loadgen.TreeCPU(pid); err == nil {
			out[name] = d
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["bench"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// Not a process: the time other guests of the host took from this machine's CPUs.
	if d, err := loadgen.StolenCPU(); err == nil {
		out["stolen"] = d
	}
	return out
}

// cores turns the CPU time used between two cpuTimes readings into cores busy over wall.
func cores(from, to map[string]time.Duration, wall time.Duration) map[string]float64 {
	out := map[string]float64{}
	for name, t := range to {
		if wall > 0 {
			out[name] = math.Round((t-from[name]).Seconds()/wall.Seconds()*100) / 100
		}
	}
	return out
}

// sample reads each watched process's resident memory and goroutines.
func (b *bench) sample(ctx context.Context) (map[string]procSample, error) {
	out := map[string]procSample{}
	for _, p := range b.processes() {
		rss, err := loadgen.RSS(p.pid)
		if err != nil {
			return nil, err
		}
		g, err := loadgen.Goroutines(ctx, http.DefaultClient, p.metrics)
		if err != nil {
			return nil, err
		}
		out[p.name] = procSample{RSSBytes: rss, Goroutines: g}
	}
	return out, nil
}

// profile captures a CPU profile of the BFF, of the worker and of this process for seconds,
// into files named for phase; it returns at once, and the returned function waits for all three.
func (b *bench) profile(ctx context.Context, phase string, seconds int) (wait func()) {
	if !b.set.profile {
		return func() {}
	}
	bases := map[string]string{
		"bff":    b.stack.APIInternalURL,
		"worker": strings.TrimSuffix(b.stack.WorkerMetricsURL, "/metrics"),
	}
	done := make(chan string, len(bases)+1)
	// The load generator shares the cores with what it measures: its own profile shows what it costs.
	self := filepath.Join(b.outDir, fmt.Sprintf("%s-%s-bench-%s.pprof", b.report.Mode, b.stamp, phase))
	go func() {
		if err := profileSelf(ctx, self, time.Duration(seconds)*time.Second); err != nil {
			done <- fmt.Sprintf("%s: %v", self, err)
			return
		}
		done <- self
	}()
	for name, base := range bases {
		path := filepath.Join(b.outDir, fmt.Sprintf("%s-%s-%s.pprof", b.report.Mode, b.stamp, name+"-"+phase))
		go func() {
			if err := fetchProfile(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), path); err != nil {
				done <- fmt.Sprintf("%s: %v", path, err)
				return
			}
			done <- path
		}()
	}
	return func() {
		for range len(bases) + 1 {
			b.report.Profiles = append(b.report.Profiles, <-done)
		}
	}
}

// profileSelf writes this process's CPU profile over d to path.
func profileSelf(ctx context.Context, path string, d time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return f.Close()
}

// fetchProfile saves the pprof profile that url serves to path.
func fetchProfile(ctx context.Context, url, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := stack.GetOK(ctx, url, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
