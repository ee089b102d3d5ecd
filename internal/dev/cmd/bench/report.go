package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cartflow/cartflow/internal/dev/loadgen"
	"github.com/cartflow/cartflow/internal/dev/sinks"
)

// report is everything a run measured, as written to the JSON file.
type report struct {
	Mode     string            `json:"mode"`
	Date     string            `json:"date"`
	Commit   string            `json:"commit,omitempty"`
	Machine  loadgen.Machine   `json:"machine"`
	Settings map[string]string `json:"settings"`
	StackDir string            `json:"stack_dir"`

	Checkouts []checkoutRow `json:"checkouts,omitempty"`
	Reads     []readRow     `json:"reads,omitempty"`
	Memory    *memoryReport `json:"memory,omitempty"`
	Soak      *soakReport   `json:"soak,omitempty"`
	// Sinks is what the stack reported to Mixpanel, Sentry and the OTLP endpoints meanwhile:
	// proof that those features were on.
	Sinks    sinks.Counts `json:"sinks"`
	Profiles []string     `json:"profiles,omitempty"`
	// Missed counts the figures that missed their targets.
	Missed int    `json:"targets_missed"`
	Error  string `json:"error,omitempty"`
}

type checkoutRow struct {
	Concurrency   int             `json:"concurrency"`
	N             int             `json:"n"`
	CheckoutsPerS float64         `json:"checkouts_per_s"`
	BarePerS      float64         `json:"bare_workflows_per_s"`
	Ratio         float64         `json:"checkout_to_bare"`
	Checkout      loadgen.Summary `json:"checkout_latency"`
	Bare          loadgen.Summary `json:"bare_latency"`
	// NotCompleted counts the checkouts answered other than 201 "completed" (target: none).
	NotCompleted      int    `json:"not_completed"`
	FirstNotCompleted string `json:"first_not_completed,omitempty"`
	// CPU is the cores each component kept busy during the checkout rounds.
	CPU map[string]float64 `json:"cpu_cores"`
}

type readRow struct {
	Endpoint string `json:"endpoint"`
	loadgen.OpenResult
	TargetP99 float64 `json:"target_p99_ms,omitempty"`
	Pass      *bool   `json:"pass,omitempty"`
	// CPU is the cores each component kept busy meanwhile.
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
}

type procSample struct {
	RSSBytes   int64 `json:"rss_bytes"`
	Goroutines int   `json:"goroutines"`
}

type memoryReport struct {
	Before map[string]procSample `json:"before"`
	After  map[string]procSample `json:"after"`
}

type soakReport struct {
	Duration         string  `json:"duration"`
	MaxCheckoutsPerS float64 `json:"max_checkouts_per_s"`
	CheckoutRate     float64 `json:"checkout_rate"`
	ReadRate         float64 `json:"checkout_read_rate"`
	OrdersRate       float64 `json:"order_list_rate"`

	Loads []readRow `json:"loads"`
	// CPU is the cores each component kept busy during the load.
	CPU map[string]float64 `json:"cpu_cores"`
	// IdleBefore and IdleAfter are the stack at rest before and after the load, whose
	// goroutines are compared.
	IdleBefore  map[string]procSample `json:"idle_before"`
	IdleAfter   map[string]procSample `json:"idle_after"`
	Samples     []soakSample          `json:"samples"`
	FromSeconds float64               `json:"judged_from_s"`
	Judgements  []soakJudgement       `json:"judgements"`
	Verdict     string                `json:"verdict"`
}

type soakSample struct {
	AtSeconds float64               `json:"at_s"`
	Processes map[string]procSample `json:"processes"`
}

type soakJudgement struct {
	Process        string  `json:"process"`
	RSSGrowth      float64 `json:"rss_growth"`
	RSSPass        bool    `json:"rss_pass"`
	GoroutinesFrom int     `json:"goroutines_from"`
	GoroutinesTo   int     `json:"goroutines_to"`
	GoroutinesPass bool    `json:"goroutines_pass"`
}

func (s settings) describe() map[string]string {
	conc := make([]string, len(s.concurrencies))
	for i, c := range s.concurrencies {
		conc[i] = fmt.Sprint(c)
	}
	m := map[string]string{"checkouts": fmt.Sprint(s.checkouts), "concurrency": strings.Join(conc, ","),
		"read_rate": fmt.Sprint(s.readRate), "read_duration": s.readFor.String(),
		"orders_rate": fmt.Sprint(s.ordersRate), "orders_duration": s.ordersFor.String()}
	if len(s.env) > 0 {
		m["env"] = strings.Join(s.env, " ")
	}
	if s.soak > 0 {
		m["soak"], m["soak_warmup"], m["soak_sample"] = s.soak.String(), s.soakWarmup.String(), s.soakEvery.String()
	}
	return m
}

// addRead records an open loop's result against its p99 target.
func (r *report) addRead(endpoint string, res loadgen.OpenResult, targetP99 float64, cpu map[string]float64) {
	pass := res.Latency.Count > 0 && res.Latency.P99 <= targetP99 && res.Errors == 0 && res.Non2xx == 0 &&
		res.Achieved >= 0.95*res.Offered
	if !pass {
		r.Missed++
	}
	r.Reads = append(r.Reads, readRow{Endpoint: endpoint, OpenResult: res, TargetP99: targetP99, Pass: &pass, CPU: cpu})
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// print writes the report as tables.
func (r *report) print(out io.Writer) {
	m := r.Machine
	fmt.Fprintf(out, "\ncartflow %s, %s, commit %s\n", r.Mode, r.Date, r.Commit)
	fmt.Fprintf(out, "machine: %d CPUs (%s), %.1f GiB RAM, %s, load average at start %s\n", m.CPUs, m.CPUModel,
		float64(m.RAMBytes)/(1<<30), m.Go, m.LoadAverage)
	fmt.Fprintln(out, "The machine is shared and noisy: compare the checkout/bare ratio between runs, not the rates.")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if len(r.Checkouts) > 0 {
		fmt.Fprintln(out, "\nCheckouts (POST /api/v1/checkouts to its 201 completed) against the bare engine (3 no-op activities), alternating rounds of 50")
		fmt.Fprintln(w, "concurrency\tn\tcheckouts/s\tbare/s\tcheckout/bare\tcheckout p50\tcheckout p99\tbare p50\tbare p99\tnot 201 completed\t")
		for _, c := range r.Checkouts {
			fmt.Fprintf(w, "%d\t%d\t%.1f\t%.1f\t%.2f\t%.0f ms\t%.0f ms\t%.0f ms\t%.0f ms\t%d %s\t\n", c.Concurrency, c.N, c.CheckoutsPerS, c.BarePerS, c.Ratio,
				c.Checkout.P50, c.Checkout.P99, c.Bare.P50, c.Bare.P99, c.NotCompleted, verdict(c.NotCompleted == 0))
		}
		w.Flush()
		for _, c := range r.Checkouts {
			fmt.Fprintf(out, "  concurrency %d, cores busy during the checkouts: %s\n", c.Concurrency, formatCores(c.CPU))
			if c.FirstNotCompleted != "" {
				fmt.Fprintf(out, "  concurrency %d, first not completed: %s\n", c.Concurrency, c.FirstNotCompleted)
			}
		}
	}
	if len(r.Reads) > 0 {
		fmt.Fprintln(out, "\nReads, open loop (constant arrival rate; latency from each request's due time)")
		r.printLoads(out, w, r.Reads)
	}
	if r.Memory != nil && r.Memory.After != nil {
		fmt.Fprintln(out, "\nMemory: resident (VmRSS) and goroutines (go_goroutines), before and at the end of the load")
		fmt.Fprintln(w, "process\tRSS before\tRSS after\tgoroutines before\tgoroutines after\t")
		for _, name := range []string{"bff", "worker"} {
			a, z := r.Memory.Before[name], r.Memory.After[name]
			fmt.Fprintf(w, "%s\t%.1f MiB\t%.1f MiB\t%d\t%d\t\n", name, mib(a.RSSBytes), mib(z.RSSBytes), a.Goroutines, z.Goroutines)
		}
		w.Flush()
	}
	if s := r.Soak; s != nil {
		fmt.Fprintf(out, "\nSoak for %s at half the maximum rate (maximum %.1f checkouts/s)\n", s.Duration, s.MaxCheckoutsPerS)
		r.printLoads(out, w, s.Loads)
		fmt.Fprintf(out, "  cores busy during the soak: %s\n", formatCores(s.CPU))
		if len(s.Judgements) > 0 {
			fmt.Fprintf(out, "\nRSS from the first sample after the warm-up (%.0f s) to the end: growth < %.0f%%; goroutines at rest, before and after the load: not growing\n",
				s.FromSeconds, soakRSSGrowthLimit*100)
			fmt.Fprintln(w, "process\tRSS growth\t\tgoroutines at rest\t\t")
			for _, j := range s.Judgements {
				fmt.Fprintf(w, "%s\t%+.1f%%\t%s\t%d -> %d\t%s\t\n", j.Process, j.RSSGrowth*100, verdict(j.RSSPass), j.GoroutinesFrom, j.GoroutinesTo, verdict(j.GoroutinesPass))
			}
			w.Flush()
		}
		fmt.Fprintf(out, "soak: %s\n", s.Verdict)
	}
	c := r.Sinks
	fmt.Fprintf(out, "\nReported meanwhile: %d Mixpanel batches, %d Sentry envelopes, %d trace batches, %d log batches\n",
		c.MixpanelBatches, c.SentryEnvelopes, c.TraceBatches, c.LogBatches)
	for _, p := range r.Profiles {
		fmt.Fprintf(out, "profile: %s\n", p)
	}
	if r.Error != "" {
		fmt.Fprintf(out, "RUN ERROR: %s\n", r.Error)
	}
	fmt.Fprintf(out, "targets missed: %d\n", r.Missed)
}

func (r *report) printLoads(out io.Writer, w *tabwriter.Writer, rows []readRow) {
	fmt.Fprintln(w, "endpoint\toffered/s\tachieved/s\tp50\tp99\tmax\terrors\tnon-2xx\ttarget\tresult\t")
	for _, l := range rows {
		target, result := "", ""
		if l.Pass != nil {
			target, result = fmt.Sprintf("p99 <= %.0f ms", l.TargetP99), verdict(*l.Pass)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.1f ms\t%.1f ms\t%.0f ms\t%d\t%d\t%s\t%s\t\n", l.Endpoint, l.Offered, l.Achieved,
			l.Latency.P50, l.Latency.P99, l.Latency.Max, l.Errors, l.Non2xx, target, result)
	}
	w.Flush()
	for _, l := range rows {
		codes := make([]int, 0, len(l.Statuses))
		for code := range l.Statuses {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		var answers []string
		for _, code := range codes {
			answers = append(answers, fmt.Sprintf("%d: %d", code, l.Statuses[code]))
		}
		fmt.Fprintf(out, "  %s answers: %s\n", l.Endpoint, strings.Join(answers, ", "))
		if l.CPU != nil {
			fmt.Fprintf(out, "  %s cores busy: %s\n", l.Endpoint, formatCores(l.CPU))
		}
		if l.FirstError != "" {
			fmt.Fprintf(out, "  %s first error: %s\n", l.Endpoint, l.FirstError)
		}
	}
}

// formatCores lists the cores each component kept busy, in a fixed order.
func formatCores(cpu map[string]float64) string {
	var parts []string
	for _, name := range []string{"bff", "worker", "temporal", "postgres", "bench", "stolen"} {
		if v, ok := cpu[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", name, v))
		}
	}
	return strings.Join(parts, ", ")
}
