package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/loadgen"
)

// The targets (README, "Rate limits"; issue 13).
const (
	checkoutReadP99Target = 10.0 // ms, GET /api/v1/checkouts/{id} at 2,500 requests/s
	myOrdersP99Target     = 20.0 // ms, GET /api/v1/me/orders at 300 requests/s
	// soakRSSGrowthLimit is the resident memory growth the soak allows from the first sample
	// after warm-up to the end.
	soakRSSGrowthLimit = 0.10
)

// round is how many checkouts, and then bare workflows, run before the other kind takes its
// turn: short rounds make both see the same machine load.
const round = 50

// customerOrders is how many checkouts the signed-in customer of the order-list reads has.
const customerOrders = 10

func (b *bench) runBench(ctx context.Context) error {
	before, err := b.sample(ctx)
	if err != nil {
		return err
	}
	b.report.Memory = &memoryReport{Before: before}
	bare, err := loadgen.StartBareWorker(b.engine)
	if err != nil {
		return err
	}
	defer bare.Stop()

	fmt.Fprintln(b.stdout, "Warming up both paths...")
	if err := b.warmUp(ctx, true); err != nil {
		return err
	}
	var ids []string
	for i, conc := range b.set.concurrencies {
		fmt.Fprintf(b.stdout, "Checkouts against the bare engine, concurrency %d, %d of each...\n", conc, b.set.checkouts)
		// The profile covers the checkouts of the last, most concurrent phase.
		var profile func() (wait func())
		if i == len(b.set.concurrencies)-1 && b.set.profile {
			profile = func() func() { return b.profile(ctx, "checkouts", 30) }
		}
		row, got, err := b.checkoutsVsBare(ctx, conc, profile)
		ids = append(ids, got...)
		if err != nil {
			return err
		}
		if row.NotCompleted > 0 {
			b.report.Missed++
		}
		b.report.Checkouts = append(b.report.Checkouts, row)
	}

	fmt.Fprintf(b.stdout, "Signing in a customer with %d orders...\n", customerOrders)
	cookie, err := b.customer(ctx)
	if err != nil {
		return err
	}

	if len(ids) == 0 {
		return errors.New("no checkout completed: nothing to read")
	}
	fmt.Fprintf(b.stdout, "GET /api/v1/checkouts/{id}: %.0f requests/s for %s over %d completed checkouts...\n", b.set.readRate, b.set.readFor, len(ids))
	wait := b.profile(ctx, "reads", int(min(30*time.Second, b.set.readFor).Seconds()))
	cpu0, start := b.cpuTimes(), time.Now()
	reads := b.checkoutReads(ids, b.set.readRate, b.set.readFor).Run(ctx)
	b.report.addRead("GET /api/v1/checkouts/{id}", reads, checkoutReadP99Target, cores(cpu0, b.cpuTimes(), time.Since(start)))
	wait()

	fmt.Fprintf(b.stdout, "GET /api/v1/me/orders: %.0f requests/s for %s...\n", b.set.ordersRate, b.set.ordersFor)
	cpu0, start = b.cpuTimes(), time.Now()
	orders := b.myOrders(cookie, b.set.ordersRate, b.set.ordersFor).Run(ctx)
	b.report.addRead("GET /api/v1/me/orders", orders, myOrdersP99Target, cores(cpu0, b.cpuTimes(), time.Since(start)))

	// The generator's idle keep-alive connections each hold a goroutine in the BFF; closed, what
	// is left is what the BFF itself keeps.
	b.shop.HTTP.CloseIdleConnections()
	time.Sleep(time.Second)
	if b.report.Memory.After, err = b.sample(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// bareTimeout bounds one bare workflow: the engine runs one in milliseconds when idle, so
// minutes mean the bare worker is gone, and the run should say so rather than hang.
const bareTimeout = 2 * time.Minute

// runBare runs one bare workflow, numbered from the run's sequence.
func (b *bench) runBare(ctx context.Context, kind string) error {
	ctx, cancel := context.WithTimeout(ctx, bareTimeout)
	defer cancel()
	return loadgen.RunBare(ctx, b.engine, fmt.Sprintf("bench-%s-%s-%d", b.tag, kind, b.seq.Add(1)))
}

// warmUp runs a few checkouts, and with bare a few bare workflows, before anything is measured:
// connections, caches, the first workflow tasks.
func (b *bench) warmUp(ctx context.Context, bare bool) error {
	n := 8
	if bare {
		if _, err := loadgen.Closed(n, n, func(int) error { return b.runBare(ctx, "warm-bare") }); err != nil {
			return fmt.Errorf("bare warm-up: %w", err)
		}
	}
	_, err := loadgen.Closed(n, n, func(i int) error {
		key := fmt.Sprintf("bench-%s-warm-%d", b.tag, i)
		_, err := b.shop.BuyAndWait(ctx, key, key+"@example.com")
		return err
	})
	return err
}

// purchases collects what a closed loop of checkouts bought: the completed checkouts' ids, and
// how many answered otherwise (a 202 after CHECKOUT_WAIT, a decline), with the first such answer.
type purchases struct {
	mu                sync.Mutex
	ids               []string
	notCompleted      int
	firstNotCompleted string
}

// buy buys one checkout under a fresh key of kind, for an email of its own.
func (b *bench) buy(ctx context.Context, kind string) (loadgen.Checkout, error) {
	key := fmt.Sprintf("bench-%s-%s-%d", b.tag, kind, b.seq.Add(1))
	return b.shop.Buy(ctx, key, key+"@example.com")
}

// buyer is a closed loop's step that buys one checkout of kind into p. A checkout that did not
// complete is counted rather than failed, so that an overloaded machine still gets figures.
func (b *bench) buyer(ctx context.Context, kind string, p *purchases) func(int) error {
	return func(int) error {
		res, err := b.buy(ctx, kind)
		if nc := (*loadgen.NotCompletedError)(nil); errors.As(err, &nc) {
			p.mu.Lock()
			if p.notCompleted == 0 {
				p.firstNotCompleted = nc.Error()
			}
			p.notCompleted++
			p.mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.ids = append(p.ids, res.CheckoutID)
		p.mu.Unlock()
		return nil
	}
}

// checkoutsVsBare runs the set's checkouts and as many bare workflows at conc, in alternating
// rounds, and returns the row and the completed checkouts' ids. With profile, it starts the
// profile with the first round of checkouts and, after the measured ones, goes on with
// checkouts until the profile is complete, so that the profile sees checkouts all along; those
// extra ones are not counted.
func (b *bench) checkoutsVsBare(ctx context.Context, conc int, profile func() (wait func())) (checkoutRow, []string, error) {
	var wait func()
	var bought purchases
	bareRun := func(int) error { return b.runBare(ctx, "bare") }
	checkout := b.buyer(ctx, "co", &bought)
	row := checkoutRow{Concurrency: conc, N: b.set.checkouts}
	bareLat, coLat := &loadgen.Latencies{}, &loadgen.Latencies{}
	var bareWall, coWall time.Duration
	coCPU := map[string]time.Duration{}
	for done := 0; done < b.set.checkouts; done += round {
		n := min(round, b.set.checkouts-done)
		r, err := loadgen.Closed(n, conc, bareRun)
		if err != nil {
			return row, bought.ids, fmt.Errorf("bare workflow: %w", err)
		}
		bareWall += r.Wall
		bareLat.Merge(r.Latencies)
		if profile != nil && wait == nil {
			wait = profile()
		}
		cpu0 := b.cpuTimes()
		if r, err = loadgen.Closed(n, conc, checkout); err != nil {
			return row, bought.ids, err
		}
		for name, t := range b.cpuTimes() {
			coCPU[name] += t - cpu0[name]
		}
		coWall += r.Wall
		coLat.Merge(r.Latencies)
	}
	if wait != nil {
		profiled := make(chan struct{})
		go func() { wait(); close(profiled) }()
	more:
		for {
			select {
			case <-profiled:
				break more
			default:
			}
			if _, err := loadgen.Closed(conc, conc, checkout); err != nil {
				return row, bought.ids, err
			}
		}
	}
	row.CheckoutsPerS = float64(b.set.checkouts) / coWall.Seconds()
	row.BarePerS = float64(b.set.checkouts) / bareWall.Seconds()
	row.Ratio = row.CheckoutsPerS / row.BarePerS
	row.Checkout, row.Bare = coLat.Summary(), bareLat.Summary()
	row.CPU = cores(map[string]time.Duration{}, coCPU, coWall)
	row.NotCompleted, row.FirstNotCompleted = bought.notCompleted, bought.firstNotCompleted
	return row, bought.ids, nil
}

// customer buys customerOrders checkouts for one email, signs that customer in through the
// magic link in Mailpit, and returns the session cookie for the order-list reads.
func (b *bench) customer(ctx context.Context) (string, error) {
	email := fmt.Sprintf("bench-%s-customer@example.com", b.tag)
	if _, err := loadgen.Closed(customerOrders, 4, func(i int) error {
		_, err := b.shop.BuyAndWait(ctx, fmt.Sprintf("bench-%s-customer-%d", b.tag, i), email)
		return err
	}); err != nil {
		return "", err
	}
	session, err := b.shop.SignIn(ctx, email)
	if err != nil {
		return "", err
	}
	return "cartflow_session=" + session, nil
}

// checkoutReads is the open loop of GET /api/v1/checkouts/{id} over ids, in turn.
func (b *bench) checkoutReads(ids []string, rate float64, d time.Duration) loadgen.OpenLoop {
	paths := make([]string, len(ids))
	for i, id := range ids {
		paths[i] = "/api/v1/checkouts/" + id
	}
	return loadgen.OpenLoop{Rate: rate, Duration: d, Workers: maxInFlight, Do: func(ctx context.Context, i int) loadgen.Outcome {
		return b.shop.Get(ctx, paths[i%len(paths)], "")
	}}
}

// myOrders is the open loop of GET /api/v1/me/orders as the signed-in customer.
func (b *bench) myOrders(cookie string, rate float64, d time.Duration) loadgen.OpenLoop {
	return loadgen.OpenLoop{Rate: rate, Duration: d, Workers: maxInFlight, Do: func(ctx context.Context, _ int) loadgen.Outcome {
		return b.shop.Get(ctx, "/api/v1/me/orders", cookie)
	}}
}

// runSoak measures the maximum checkout rate under the soak's reads, then offers half of it,
// with half the read targets' rates, for the soak's duration, sampling memory and goroutines as
// it goes. The maximum is measured with the reads running because the checkouts share the two
// cores with them: measured alone, "half the maximum" saturated the stack once the reads joined.
func (b *bench) runSoak(ctx context.Context) error {
	fmt.Fprintln(b.stdout, "Warming up...")
	if err := b.warmUp(ctx, false); err != nil {
		return err
	}
	var bought purchases
	seed := min(b.set.checkouts, 20)
	if _, err := loadgen.Closed(seed, 8, b.buyer(ctx, "soak", &bought)); err != nil {
		return err
	}
	if len(bought.ids) == 0 {
		return errors.New("no checkout completed: nothing to read")
	}
	cookie, err := b.customer(ctx)
	if err != nil {
		return err
	}
	readRate, ordersRate := b.set.readRate/2, b.set.ordersRate/2
	calibrate := min(b.set.checkouts, 100)
	fmt.Fprintf(b.stdout, "Measuring the maximum checkout rate (%d checkouts at concurrency 32) under %.0f checkout reads/s and %.0f order-list reads/s...\n",
		calibrate, readRate, ordersRate)
	calib, err := b.underReads(ctx, bought.ids, readRate, cookie, ordersRate, func() (loadgen.ClosedResult, error) {
		return loadgen.Closed(calibrate, 32, b.buyer(ctx, "soak", &bought))
	})
	if err != nil {
		return err
	}
	ids := bought.ids
	soak := &soakReport{Duration: b.set.soak.String(), MaxCheckoutsPerS: calib.Rate(),
		CheckoutRate: calib.Rate() / 2, ReadRate: readRate, OrdersRate: ordersRate}
	b.report.Soak = soak
	fmt.Fprintf(b.stdout, "Soak for %s: %.1f checkouts/s, %.0f checkout reads/s, %.0f order-list reads/s; memory every %s...\n",
		b.set.soak, soak.CheckoutRate, soak.ReadRate, soak.OrdersRate, b.set.soakEvery)

	loops := map[string]loadgen.OpenLoop{
		"POST /api/v1/checkouts": {Rate: soak.CheckoutRate, Duration: b.set.soak, Workers: 64,
			Do: func(ctx context.Context, _ int) loadgen.Outcome {
				_, err := b.buy(ctx, "soak")
				if nc := (*loadgen.NotCompletedError)(nil); errors.As(err, &nc) {
					return loadgen.Outcome{Status: nc.Code} // a 202 is served, only later than it should be
				}
				if err != nil {
					return loadgen.Outcome{Err: err}
				}
				return loadgen.Outcome{Status: http.StatusCreated}
			}},
		"GET /api/v1/checkouts/{id}": b.checkoutReads(ids, soak.ReadRate, b.set.soak),
		"GET /api/v1/me/orders":      b.myOrders(cookie, soak.OrdersRate, b.set.soak),
	}
	if soak.IdleBefore, err = b.idle(ctx, nil); err != nil {
		return err
	}
	var mu sync.Mutex
	results := map[string]loadgen.OpenResult{}
	var wg sync.WaitGroup
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := loop.Run(ctx)
			mu.Lock()
			results[name] = r
			mu.Unlock()
		}()
	}
	start, cpu0 := time.Now(), b.cpuTimes()
	waitProfile := b.profile(ctx, "soak", 30)
	sampleErr := b.sampleSoak(ctx, start, soak)
	wg.Wait()
	soak.CPU = cores(cpu0, b.cpuTimes(), time.Since(start))
	waitProfile()
	for _, name := range []string{"POST /api/v1/checkouts", "GET /api/v1/checkouts/{id}", "GET /api/v1/me/orders"} {
		soak.Loads = append(soak.Loads, readRow{Endpoint: name, OpenResult: results[name]})
	}
	if sampleErr != nil {
		return sampleErr
	}
	fmt.Fprintln(b.stdout, "Waiting for the stack to settle after the load...")
	if soak.IdleAfter, err = b.idle(ctx, soak.IdleBefore); err != nil {
		return err
	}
	b.judgeSoak(soak)
	return ctx.Err()
}

// underReads runs measure while the checkout reads over ids and the order-list reads as
// cookie's customer are offered at their rates, and stops the reads when it returns.
func (b *bench) underReads(ctx context.Context, ids []string, readRate float64, cookie string, ordersRate float64,
	measure func() (loadgen.ClosedResult, error)) (loadgen.ClosedResult, error) {
	readCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// The loops' duration is a bound the cancel always beats.
	for _, loop := range []loadgen.OpenLoop{b.checkoutReads(ids, readRate, time.Hour), b.myOrders(cookie, ordersRate, time.Hour)} {
		wg.Go(func() { loop.Run(readCtx) })
	}
	res, err := measure()
	stop()
	wg.Wait()
	return res, err
}

// sampleSoak samples memory and goroutines every soakEvery until the soak's end, and once at it.
func (b *bench) sampleSoak(ctx context.Context, start time.Time, soak *soakReport) error {
	tick := time.NewTicker(b.set.soakEvery)
	defer tick.Stop()
	end := time.NewTimer(b.set.soak)
	defer end.Stop()
	take := func() error {
		s, err := b.sample(ctx)
		if err != nil {
			return err
		}
		soak.Samples = append(soak.Samples, soakSample{AtSeconds: time.Since(start).Seconds(), Processes: s})
		fmt.Fprintf(b.stdout, "  %4.0fs  BFF %6.1f MiB %4d goroutines   worker %6.1f MiB %4d goroutines\n", time.Since(start).Seconds(),
			mib(s["bff"].RSSBytes), s["bff"].Goroutines, mib(s["worker"].RSSBytes), s["worker"].Goroutines)
		return nil
	}
	if err := take(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return take()
		case <-tick.C:
			if time.Since(start) < b.set.soak-time.Second {
				if err := take(); err != nil {
					return err
				}
			}
		}
	}
}

// goroutineSlack is the growth in goroutines the soak forgives between two idle moments: the
// SDK's pollers and the pools' connections come and go; a leak keeps what it took.
func goroutineSlack(before int) int { return max(10, before/10) }

// idle samples the stack at rest: the generator's idle connections closed (each holds a
// goroutine in the BFF), and, given a sample to settle towards, up to a minute for the work
// still running (checkouts the BFF answered 202) to finish.
func (b *bench) idle(ctx context.Context, towards map[string]procSample) (map[string]procSample, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		b.shop.HTTP.CloseIdleConnections()
		time.Sleep(time.Second)
		now, err := b.sample(ctx)
		if err != nil || towards == nil || time.Now().After(deadline) {
			return now, err
		}
		settled := true
		for name, s := range now {
			settled = settled && s.Goroutines <= towards[name].Goroutines+goroutineSlack(towards[name].Goroutines)
		}
		if settled {
			return now, nil
		}
	}
}

// judgeSoak compares the first sample after warm-up with the last: resident memory may grow
// by less than soakRSSGrowthLimit. Goroutines are compared at rest, before and after the load,
// since under load they count the requests in flight: they may grow by no more than the slack.
func (b *bench) judgeSoak(soak *soakReport) {
	warmup := min(b.set.soakWarmup, b.set.soak/2)
	var first *soakSample
	for i := range soak.Samples {
		if soak.Samples[i].AtSeconds >= warmup.Seconds() {
			first = &soak.Samples[i]
			break
		}
	}
	last := soak.Samples[len(soak.Samples)-1]
	if first == nil || first == &soak.Samples[len(soak.Samples)-1] {
		soak.Verdict = "not enough samples after the warm-up to judge"
		b.report.Missed++
		return
	}
	soak.FromSeconds = first.AtSeconds
	pass := true
	for _, name := range []string{"bff", "worker"} {
		a, z := first.Processes[name], last.Processes[name]
		growth := float64(z.RSSBytes-a.RSSBytes) / float64(a.RSSBytes)
		g0, g1 := soak.IdleBefore[name].Goroutines, soak.IdleAfter[name].Goroutines
		j := soakJudgement{Process: name, RSSGrowth: growth, GoroutinesFrom: g0, GoroutinesTo: g1,
			RSSPass: growth < soakRSSGrowthLimit, GoroutinesPass: g1 <= g0+goroutineSlack(g0)}
		pass = pass && j.RSSPass && j.GoroutinesPass
		soak.Judgements = append(soak.Judgements, j)
	}
	if pass {
		soak.Verdict = "PASS"
	} else {
		soak.Verdict = "FAIL"
		b.report.Missed++
	}
}
