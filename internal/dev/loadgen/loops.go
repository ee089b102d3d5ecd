package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ClosedResult is what a closed loop measured.
type ClosedResult struct {
	// Wall is the time from the first call's start to the last one's end.
	Wall time.Duration
	// Latencies holds each call's duration.
	Latencies *Latencies
}

// Rate is the calls completed per second of wall time.
func (r ClosedResult) Rate() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Latencies.Summary().Count) / r.Wall.Seconds()
}

// Closed makes n calls of f, concurrency at a time, each starting as soon as one ends; i
// numbers the calls from 0. It stops at the first error and returns it.
func Closed(n, concurrency int, f func(i int) error) (ClosedResult, error) {
	res := ClosedResult{Latencies: &Latencies{}}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range min(concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				began := time.Now()
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				res.Latencies.Add(time.Since(began))
			}
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	return res, firstErr
}

// Outcome is what one open-loop request came to: its HTTP status, or the error that kept it
// from getting one.
type Outcome struct {
	Status int
	Err    error
}

// OpenLoop offers requests at a constant rate, whether or not earlier ones have answered.
type OpenLoop struct {
	// Rate is requests per second; Duration how long they are offered.
	Rate     float64
	Duration time.Duration
	// Workers bounds the requests in flight. When all are busy, due requests wait in a queue,
	// and that wait counts in their latency.
	Workers int
	// Do sends request i (numbered from 0).
	Do func(ctx context.Context, i int) Outcome
}

// OpenResult is what an open loop measured.
type OpenResult struct {
	Offered float64 `json:"offered_per_s"`
	// Achieved is the requests completed per second, from the first one's due time to the last one's end.
	Achieved float64 `json:"achieved_per_s"`
	Sent     int     `json:"sent"`
	// Errors are requests that got no HTTP answer; Non2xx those whose answer was not 2xx.
	Errors  int     `json:"errors"`
	Non2xx  int     `json:"non_2xx"`
	Latency Summary `json:"latency"`
	// FirstError is one of the errors or bad statuses, to say what went wrong.
	FirstError string `json:"first_error,omitempty"`
	// Statuses counts the answers by HTTP status.
	Statuses map[int]int `json:"statuses"`

	latencies *Latencies
}

// Latencies returns every request's latency, for merging into a larger summary.
func (r OpenResult) Latencies() *Latencies { return r.latencies }

// Run offers the requests until Duration has passed or ctx is done, then waits for those in
// flight. Each latency runs from the moment the request was due, not from when a worker got to
// it: a server that falls behind shows its queue in the latency (no coordinated omission).
func (o OpenLoop) Run(ctx context.Context) OpenResult {
	if o.Rate <= 0 || o.Duration <= 0 {
		return OpenResult{latencies: &Latencies{}}
	}
	total := int(o.Rate * o.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / o.Rate)
	type job struct {
		i   int
		due time.Time
	}
	// The queue holds a second's worth, so that a stalled server fills it rather than the
	// scheduler's sleep hiding the stall; past that the scheduler waits, and the requests it
	// sends late still count from their due time.
	queue := make(chan job, max(1, int(o.Rate)))
	lat := &Latencies{}
	var errs, non2xx atomic.Int64
	var statusMu sync.Mutex
	statuses := map[int]int{}
	var firstErr atomic.Value
	var lastEnd atomic.Int64
	var wg sync.WaitGroup
	for range max(1, o.Workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				out := o.Do(ctx, j.i)
				end := time.Now()
				lat.Add(end.Sub(j.due))
				for {
					prev := lastEnd.Load()
					if end.UnixNano() <= prev || lastEnd.CompareAndSwap(prev, end.UnixNano()) {
						break
					}
				}
				if out.Err == nil {
					statusMu.Lock()
					statuses[out.Status]++
					statusMu.Unlock()
				}
				switch {
				case out.Err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, out.Err.Error())
				case out.Status < 200 || out.Status > 299:
					non2xx.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d", out.Status))
				}
			}
		}()
	}
	start := time.Now()
	sent := 0
schedule:
	for ; sent < total; sent++ {
		due := start.Add(time.Duration(sent) * interval)
		// Sleeping for each of 2,500 requests a second would cost more than the requests; the
		// scheduler sleeps only when it is a millisecond or more ahead, and sends the rest at once.
		if wait := time.Until(due); wait > time.Millisecond {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case queue <- job{i: sent, due: due}:
		case <-ctx.Done():
			break schedule
		}
	}
	close(queue)
	wg.Wait()
	res := OpenResult{Offered: o.Rate, Sent: sent, Errors: int(errs.Load()), Non2xx: int(non2xx.Load()), Statuses: statuses,
		Latency: lat.Summary(), latencies: lat}
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	if end := time.Unix(0, lastEnd.Load()); sent > 0 && end.After(start) {
		res.Achieved = float64(res.Latency.Count-res.Errors) / end.Sub(start).Seconds()
	}
	return res
}

// Client returns an HTTP client for load: keep-alive connections, as many idle ones kept per
// host as there can be requests in flight, so that no request pays for a new connection, and
// no compression to spend the shared cores on.
func Client(inFlight int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = max(inFlight, 2)
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
