package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestSummaryIsNearestRank(t *testing.T) {
	l := &Latencies{}
	for i := 100; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	got := l.Summary()
	want := Summary{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("Summary() = %+v, want %+v", got, want)
	}
	if (&Latencies{}).Summary() != (Summary{}) {
		t.Fatal("an empty distribution has figures")
	}
}

func TestClosedStopsAtTheFirstError(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	_, err := Closed(100, 1, func(i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() != 4 {
		t.Fatalf("Closed = %v after %d calls, want boom after 4", err, calls.Load())
	}
	res, err := Closed(10, 4, func(int) error { return nil })
	if err != nil || res.Latencies.Summary().Count != 10 || res.Rate() <= 0 {
		t.Fatalf("Closed = %+v, %v", res.Latencies.Summary(), err)
	}
}

// A server that stalls makes the requests due meanwhile wait; an open loop counts that wait,
// where a closed loop (or a latency timed from the send) would not.
func TestOpenLoopCountsTheQueueInTheLatency(t *testing.T) {
	var n atomic.Int64
	res := OpenLoop{Rate: 200, Duration: 500 * time.Millisecond, Workers: 1, Do: func(context.Context, int) Outcome {
		if n.Add(1) == 1 {
			time.Sleep(200 * time.Millisecond) // the first request stalls the only worker
		}
		return Outcome{Status: http.StatusOK}
	}}.Run(context.Background())
	if res.Sent != 100 || res.Latency.Count != 100 {
		t.Fatalf("sent %d, measured %d, want 100", res.Sent, res.Latency.Count)
	}
	// Every request due in the stall's first 150 ms waited for it: at least 30 of 100 took 50 ms or more.
	if res.Latency.P50 >= 50 || res.Latency.Max < 190 {
		t.Fatalf("latency %+v: the stall does not show", res.Latency)
	}
	l := res.Latencies().Summary()
	if l.P90 < 50 {
		t.Fatalf("p90 %.1f ms: the requests queued behind the stall were timed from their send", l.P90)
	}
}

func TestOpenLoopCountsErrorsAndBadStatuses(t *testing.T) {
	res := OpenLoop{Rate: 100, Duration: 100 * time.Millisecond, Workers: 4, Do: func(_ context.Context, i int) Outcome {
		switch i % 5 {
		case 0:
			return Outcome{Err: fmt.Errorf("refused %d", i)}
		case 1:
			return Outcome{Status: http.StatusServiceUnavailable}
		}
		return Outcome{Status: http.StatusOK}
	}}.Run(context.Background())
	if res.Sent != 10 || res.Errors != 2 || res.Non2xx != 2 || res.FirstError == "" {
		t.Fatalf("result %+v, want 10 sent, 2 errors, 2 non-2xx", res)
	}
	if res.Achieved <= 0 || res.Achieved > 100 {
		t.Fatalf("achieved %.1f/s of 100 offered with 2 errors", res.Achieved)
	}
}

func TestTreeCPUCountsTheProcesssTime(t *testing.T) {
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until this process has used 200 ms more CPU by its own account (however long a loaded
	// machine takes to give it that), then the group must show it too.
	own := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := own()
	for deadline := time.Now().Add(20 * time.Second); own()-start < 200*time.Millisecond && time.Now().Before(deadline); {
	}
	after, err := TreeCPU(os.Getpid())
	if err != nil || after-before < 150*time.Millisecond {
		t.Fatalf("200 ms of this process's CPU moved its tree's from %s to %s (%v)", before, after, err)
	}
	if _, err := TreeCPU(-5); err == nil {
		t.Fatal("no process has a CPU time")
	}
}

func TestStealIsTheEighthTimeOfTheCPUsTotal(t *testing.T) {
	got, err := parseSteal("cpu  275582 0 55700 1192890 5142 0 6113 92924 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
	if err != nil || got != 929240*time.Millisecond {
		t.Fatalf("steal = %s, %v; want 929.24 s", got, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7", "cpu 1 2 3 4 5 6 7 x"} {
		if _, err := parseSteal(bad); err == nil {
			t.Errorf("parseSteal(%q) found a steal time", bad)
		}
	}
	if _, err := StolenCPU(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
}

func TestRSSAndGoroutines(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS of this test = %d, %v", rss, err)
	}
	if _, err := RSS(-1); err == nil {
		t.Fatal("RSS of no process succeeded")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# HELP go_goroutines Number of goroutines.\ngo_goroutines_total_x 3\ngo_goroutines 42\n")
	}))
	defer srv.Close()
	if g, err := Goroutines(context.Background(), srv.Client(), srv.URL); err != nil || g != 42 {
		t.Fatalf("Goroutines = %d, %v, want 42", g, err)
	}
	if _, err := MetricValue(context.Background(), srv.Client(), srv.URL, "go_threads"); err == nil {
		t.Fatal("a missing series has a value")
	}
}
