package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/loadgen"
)

func TestParseDefaultsAndOverrides(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	s, err := parse(nil, getenv)
	if err != nil || s.checkouts != 300 || len(s.concurrencies) != 2 || s.concurrencies[0] != 8 || s.concurrencies[1] != 32 ||
		s.readRate != 2500 || s.ordersRate != 300 || s.readFor != time.Minute || s.soak != 0 || s.strict {
		t.Fatalf("defaults = %+v, %v", s, err)
	}
	env["CARTFLOW_BENCH_CHECKOUTS"] = "120"
	if s, err = parse([]string{"-concurrency", "4", "-soak", "2m", "-strict"}, getenv); err != nil || s.checkouts != 120 ||
		len(s.concurrencies) != 1 || s.concurrencies[0] != 4 || s.soak != 2*time.Minute || !s.strict {
		t.Fatalf("overrides = %+v, %v", s, err)
	}
	if _, err := parse([]string{"-checkouts", "100"}, getenv); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-concurrency", "8,x"}, {"-checkouts", "0"}} {
		if _, err := parse(args, getenv); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
	env["CARTFLOW_BENCH_CHECKOUTS"] = "many"
	if _, err := parse(nil, getenv); err == nil {
		t.Error("CARTFLOW_BENCH_CHECKOUTS=many accepted")
	}
}

func sample(at float64, bffRSS int64, bffG, workerG int) soakSample {
	return soakSample{AtSeconds: at, Processes: map[string]procSample{
		"bff": {RSSBytes: bffRSS, Goroutines: bffG}, "worker": {RSSBytes: 100 << 20, Goroutines: workerG}}}
}

func TestSoakJudgesFromTheFirstSampleAfterTheWarmUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []soakSample
		verdict string
	}{
		// The growth during the warm-up (50 to 100 MiB) does not count.
		{"flat after warm-up", []soakSample{sample(0, 50<<20, 20, 40), sample(60, 100<<20, 30, 40), sample(120, 105<<20, 45, 50)}, "PASS"},
		{"memory grows", []soakSample{sample(0, 50<<20, 20, 40), sample(60, 100<<20, 30, 40), sample(120, 111<<20, 30, 40)}, "FAIL"},
		{"goroutines grow", []soakSample{sample(0, 50<<20, 20, 40), sample(60, 100<<20, 30, 40), sample(120, 100<<20, 51, 40)}, "FAIL"},
		{"nothing after warm-up", []soakSample{sample(0, 50<<20, 20, 40), sample(60, 100<<20, 30, 40)}, "not enough samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bench{set: settings{soak: 2 * time.Minute, soakWarmup: time.Minute}}
			soak := &soakReport{Samples: tc.samples}
			b.judgeSoak(soak)
			if !strings.HasPrefix(soak.Verdict, tc.verdict) {
				t.Fatalf("verdict %q, want %q (%+v)", soak.Verdict, tc.verdict, soak.Judgements)
			}
			if missed := b.report.Missed > 0; missed != (tc.verdict != "PASS") {
				t.Fatalf("targets missed %d with verdict %q", b.report.Missed, soak.Verdict)
			}
		})
	}
}

func TestAReadPassesOnlyWithinItsTarget(t *testing.T) {
	ok := loadgen.OpenResult{Offered: 100, Achieved: 99, Sent: 100, Latency: loadgen.Summary{Count: 100, P99: 9}}
	slow, failing, behind := ok, ok, ok
	slow.Latency.P99 = 11
	failing.Non2xx = 1
	behind.Achieved = 90
	var r report
	for _, res := range []loadgen.OpenResult{ok, slow, failing, behind} {
		r.addRead("GET /x", res, 10)
	}
	if r.Missed != 3 || !*r.Reads[0].Pass || *r.Reads[1].Pass || *r.Reads[2].Pass || *r.Reads[3].Pass {
		t.Fatalf("missed %d: %+v", r.Missed, r.Reads)
	}
}
