package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/loadgen"
)

func TestParseDefaultsAndOverrides(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	s, err := parse(nil, getenv)
	if err != nil || s.checkouts != 200 || len(s.concurrencies) != 2 || s.concurrencies[0] != 8 || s.concurrencies[1] != 32 ||
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

func sample(at float64, bffRSS int64) soakSample {
	return soakSample{AtSeconds: at, Processes: map[string]procSample{
		"bff": {RSSBytes: bffRSS, Goroutines: 900}, "worker": {RSSBytes: 100 << 20, Goroutines: 70}}}
}

func atRest(bff, worker int) map[string]procSample {
	return map[string]procSample{"bff": {Goroutines: bff}, "worker": {Goroutines: worker}}
}

func TestSoakJudgesFromTheFirstSampleAfterTheWarmUp(t *testing.T) {
	warm := []soakSample{sample(0, 50<<20), sample(60, 100<<20)}
	for _, tc := range []struct {
		name        string
		samples     []soakSample
		after       map[string]procSample
		verdict     string
		failsMemory bool
	}{
		// The growth during the warm-up (50 to 100 MiB) does not count, nor the goroutines under load.
		{"flat after warm-up", append(warm, sample(120, 105<<20)), atRest(30, 50), "PASS", false},
		{"memory grows", append(warm, sample(120, 111<<20)), atRest(25, 45), "FAIL", true},
		{"goroutines left behind", append(warm, sample(120, 100<<20)), atRest(36, 45), "FAIL", false},
		{"nothing after warm-up", warm, atRest(25, 45), "not enough samples", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bench{set: settings{soak: 2 * time.Minute, soakWarmup: time.Minute}}
			soak := &soakReport{Samples: slices.Clone(tc.samples), IdleBefore: atRest(25, 45), IdleAfter: tc.after}
			b.judgeSoak(soak)
			if !strings.HasPrefix(soak.Verdict, tc.verdict) {
				t.Fatalf("verdict %q, want %q (%+v)", soak.Verdict, tc.verdict, soak.Judgements)
			}
			if missed := b.report.Missed > 0; missed != (tc.verdict != "PASS") {
				t.Fatalf("targets missed %d with verdict %q", b.report.Missed, soak.Verdict)
			}
			if len(soak.Judgements) > 0 && !soak.Judgements[0].RSSPass != tc.failsMemory {
				t.Fatalf("the BFF's memory judged %+v", soak.Judgements[0])
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
		r.addRead("GET /x", res, 10, nil)
	}
	if r.Missed != 3 || !*r.Reads[0].Pass || *r.Reads[1].Pass || *r.Reads[2].Pass || *r.Reads[3].Pass {
		t.Fatalf("missed %d: %+v", r.Missed, r.Reads)
	}
}
