//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// scenario is one fault, injected while a batch of its own checkouts (or renewals) runs, and
// counted into a row.
type scenario struct {
	name string
	run  func(ctx context.Context, h *harness, r *row)
}

// scenarios are the suite's, in the order they run. Each leaves the stack whole for the next.
func scenarios() []scenario {
	return []scenario{
		{"worker-kills", workerKills},
		{"temporal-restart", temporalRestarts},
		{"postgres-restart", postgresRestarts},
		{"provider-outage", providerOutage},
		{"dropped-answers", droppedAnswers},
		{"slow-provider", slowProvider},
		{"duplicate-storm", duplicateStorm},
		{"webhook-storm", webhookStorm},
		{"renewal-worker-kills", renewalWorkerKills},
	}
}

// runScenario runs sc and completes its row with what the BFF's own metrics counted: the most
// of the clients' count of 5xx other than 503 and the BFF's, so that an answer no client lived
// to read counts too.
func (h *harness) runScenario(t *testing.T, sc scenario) row {
	r := row{Scenario: sc.name, Answers: map[string]int{}, lostUnderFault: map[string]string{}}
	began := time.Now()
	before, err := h.bffServerErrors(t.Context())
	if err != nil {
		r.finding("the BFF's /metrics before the scenario: %v", err)
	}
	fmt.Printf("=== chaos: %s\n", sc.name)
	sc.run(t.Context(), h, &r)
	if after, err := h.bffServerErrors(t.Context()); err != nil {
		r.finding("the BFF's /metrics after the scenario: %v", err)
	} else if n := int(after - before); n > r.ServerErrors {
		r.finding("the BFF's metrics count %d answers 5xx other than 503, the clients %d", n, r.ServerErrors)
		r.ServerErrors = n
	}
	r.Seconds = time.Since(began).Seconds()
	if !h.sup.healthy(t.Context()) {
		r.finding("the stack was not healthy again within two minutes of the scenario")
	}
	// A component that died without being asked to is a fault of cartflow's, or of the stack's.
	for _, in := range h.sup.incidents() {
		if !in.Planned && !in.At.Before(began) {
			r.finding("%s %s at %s", in.Component, in.What, in.At.Format(time.TimeOnly))
		}
	}
	return r
}

// bffServerErrors is how many answers the BFF has given with a 5xx other than 503, by its metrics.
func (h *harness) bffServerErrors(ctx context.Context) (float64, error) {
	page, err := e2ekit.Scrape(ctx, h.dev.APIInternalURL+"/metrics")
	if err != nil {
		return 0, err
	}
	return e2ekit.AnswersWithStatus(page, func(s int) bool { return s >= 500 && s != http.StatusServiceUnavailable }), nil
}

// faultPlan injects a scenario's faults while its checkouts cs run. It returns once the faults
// are over; load is closed when every checkout has reached its end, for faults that last as long
// as the load does.
type faultPlan func(ctx context.Context, r *row, cs []*checkout, load <-chan struct{}) error

// loadWithFaults sends n checkouts, arriving evenly over window, while plan injects faults.
// Once the faults are over, the checkouts have -chaos.settle to reach a final state; then the
// batch is counted from PostgreSQL and the Stripe layer.
func (h *harness) loadWithFaults(ctx context.Context, r *row, prefix string, n int, window time.Duration, plan faultPlan) {
	cs := newCheckouts(prefix, n)
	piFrom := len(h.dev.StripeProxy.PaymentIntents())
	sh := newShopper(h.dev.APIURL)
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	load := make(chan struct{})
	go func() {
		defer close(load)
		sh.run(loadCtx, cs, window/time.Duration(max(n, 1)))
	}()
	if err := plan(ctx, r, cs, load); err != nil {
		r.finding("the faults could not be injected as planned: %v", err)
	}
	deadline := time.Now().Add(*settleFor)
	stopLoad := time.AfterFunc(time.Until(deadline), cancelLoad)
	<-load
	stopLoad.Stop()
	orders, err := h.settle(ctx, cs, deadline)
	if err != nil {
		r.finding("reading the orders: %v", err)
		return
	}
	h.auditCheckouts(ctx, r, cs, orders, piFrom)
	r.absorb(sh)
}

// absorb adds the shopper's tally of answers to the row.
func (r *row) absorb(sh *shopper) {
	answers, serverErrors := sh.tallies()
	for status, n := range answers {
		r.Answers[status] += n
	}
	r.ServerErrors += len(serverErrors)
	for i, e := range serverErrors {
		if i == 20 {
			r.finding("… and %d more 5xx answers", len(serverErrors)-i)
			break
		}
		r.finding("5xx: %s", e)
	}
}

// at sleeps until start+offset, with up to jitter more, so that faults land at every step of a
// checkout rather than in step with the arrivals; it says whether ctx is still live.
func at(ctx context.Context, start time.Time, offset, jitter time.Duration) bool {
	if jitter > 0 {
		offset += rand.N(jitter)
	}
	return sleep(ctx, time.Until(start.Add(offset)))
}

// heldAnswer is how long Stripe holds its answer to a PaymentIntent create or confirm it has
// executed, in the scenarios that take a component down mid-charge: long enough for a fault to
// land between the money moving and the worker learning of it, the riskiest moment there is.
const heldAnswer = 500 * time.Millisecond

// holdChargeAnswers makes Stripe hold its answers to PaymentIntent creates and confirms for
// heldAnswer, until the returned release is called.
func (h *harness) holdChargeAnswers() (release func()) {
	h.dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents",
		DelayAfterMS: int(heldAnswer.Milliseconds())})
	return h.dev.StripeProxy.ClearFaults
}

// charging waits, at most within, until one of the checkouts has a charge under way at the
// provider (pending in the ledger), so that the fault that follows lands mid-charge; it says
// whether one was.
func (h *harness) charging(ctx context.Context, cs []*checkout, within time.Duration) bool {
	keys := keysOf(cs)
	deadline := time.Now().Add(within)
	for {
		var n int
		if err := h.db.QueryRow(ctx, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
			WHERE o.idempotency_key = ANY($1) AND p.kind = 'charge' AND p.status = 'pending'`, keys).Scan(&n); err == nil && n > 0 {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, 20*time.Millisecond) {
			return false
		}
	}
}

// 1. The worker SIGKILLed -chaos.kills times during -chaos.checkouts checkouts, each time while
// a charge is at Stripe, and restarted at once.
func workerKills(ctx context.Context, h *harness, r *row) {
	kills := *killCount
	gap := 6 * time.Second
	window := time.Duration(kills+1) * gap
	r.Faults = fmt.Sprintf("worker SIGKILLed %d times, about %s apart and each while a charge was at Stripe (answers held %s), during %d checkouts arriving over %s; restarted at once",
		kills, gap, heldAnswer, *killLoad, window)
	h.loadWithFaults(ctx, r, "kill", *killLoad, window, func(ctx context.Context, r *row, cs []*checkout, _ <-chan struct{}) error {
		defer h.holdChargeAnswers()()
		start := time.Now()
		for i := 1; i <= kills; i++ {
			if !at(ctx, start, time.Duration(i)*gap-gap/4, gap/2) {
				return ctx.Err()
			}
			midCharge := h.charging(ctx, cs, gap/2)
			began := time.Now()
			if err := h.sup.crash(ctx, workerProcess); err != nil {
				return err
			}
			r.note("kill %d (mid-charge: %v): worker back and the BFF ready in %.1fs", i, midCharge, time.Since(began).Seconds())
		}
		return nil
	})
}

// outage takes c down the way given for down, then brings it back, noting it.
func (h *harness) outage(ctx context.Context, r *row, c component, how shutdown, down time.Duration) error {
	if err := h.sup.takeDown(c, how); err != nil {
		return err
	}
	sleep(ctx, down)
	began := time.Now()
	if err := h.sup.bringBack(ctx, c); err != nil {
		return err
	}
	r.note("%s %s, down %s, healthy %.1fs after the restart", c, how, down, time.Since(began).Seconds())
	return nil
}

// twoRestarts is the plan of the Temporal and PostgreSQL scenarios: a graceful restart a third
// of the way through the arrivals, and a crash (SIGKILL) two thirds of the way, each while a
// charge is at Stripe and each down for five seconds.
func (h *harness) twoRestarts(c component, window time.Duration) faultPlan {
	return func(ctx context.Context, r *row, cs []*checkout, _ <-chan struct{}) error {
		defer h.holdChargeAnswers()()
		start := time.Now()
		for i, how := range []shutdown{graceful, crash} {
			if !at(ctx, start, time.Duration(i+1)*window/3, time.Second) {
				return ctx.Err()
			}
			if !h.charging(ctx, cs, 5*time.Second) {
				r.note("no charge was at Stripe when %s was taken down (%s)", c, how)
			}
			if err := h.outage(ctx, r, c, how, 5*time.Second); err != nil {
				return err
			}
		}
		return nil
	}
}

// 2. The Temporal dev server (on its SQLite file) restarted twice mid-load.
func temporalRestarts(ctx context.Context, h *harness, r *row) {
	window := 45 * time.Second
	r.Faults = fmt.Sprintf("Temporal dev server stopped (SIGTERM), then killed (SIGKILL), each while a charge was at Stripe, 5 s down each, during %d checkouts over %s",
		*batchSize, window)
	h.loadWithFaults(ctx, r, "temporal", *batchSize, window, h.twoRestarts(temporalServer, window))
}

// 3. PostgreSQL restarted twice mid-load.
func postgresRestarts(ctx context.Context, h *harness, r *row) {
	window := 45 * time.Second
	r.Faults = fmt.Sprintf("PostgreSQL fast shutdown, then SIGKILL (crash recovery), each while a charge was at Stripe, 5 s down each, during %d checkouts over %s",
		*batchSize, window)
	h.loadWithFaults(ctx, r, "postgres", *batchSize, window, h.twoRestarts(postgresServer, window))
}

// 4. Stripe unreachable for -chaos.outage: the first half answering 500 to everything, the
// second half refusing connections.
func providerOutage(ctx context.Context, h *harness, r *row) {
	lead := 10 * time.Second
	window := lead + *outageFor + 10*time.Second
	r.Faults = fmt.Sprintf("Stripe layer down for %s (500 to every call for the first half, connections refused for the second), from %s into %d checkouts over %s",
		*outageFor, lead, *batchSize, window)
	h.loadWithFaults(ctx, r, "outage", *batchSize, window, func(ctx context.Context, r *row, _ []*checkout, _ <-chan struct{}) error {
		if !sleep(ctx, lead) {
			return ctx.Err()
		}
		proxy := h.dev.StripeProxy
		proxy.AddFault(stripefake.Fault{PathPrefix: "/v1/", Status: http.StatusInternalServerError})
		sleep(ctx, *outageFor/2)
		proxy.ClearFaults()
		return h.outage(ctx, r, stripeLayer, graceful, *outageFor/2)
	})
}

// 5. Stripe executes a call and drops the connection before answering. Two thirds of the
// checkouts lose the answers to their PaymentIntent's confirm or create twice over (net/http
// quietly retries an idempotent request once on a reused connection, so only a second drop
// reaches cartflow's retry); and throughout the arrivals, whenever no such drop is pending, the
// next create or confirm of any checkout is dropped too.
func droppedAnswers(ctx context.Context, h *harness, r *row) {
	window := 30 * time.Second
	r.Faults = fmt.Sprintf("Stripe executes, then drops the connection unanswered: twice for the confirm or the create of 2 in 3 of %d checkouts, "+
		"and for the next create or confirm whenever no drop is pending, for %s", *batchSize, window)
	h.loadWithFaults(ctx, r, "drop", *batchSize, window, func(ctx context.Context, r *row, cs []*checkout, load <-chan struct{}) error {
		proxy := h.dev.StripeProxy
		from := len(proxy.Requests())
		for i, c := range cs {
			key := "checkout-" + c.Key + "/charge"
			switch i % 3 {
			case 0:
				key += "/confirm"
			case 2:
				continue
			}
			proxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", IdempotencyKey: key, Count: 2, DropAfter: true})
		}
		anyKey := func(f stripefake.Fault) bool { return f.IdempotencyKey == "" }
		end := time.Now().Add(window)
		for time.Now().Before(end) {
			if !slices.ContainsFunc(proxy.Faults(), anyKey) {
				proxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1, DropAfter: true})
			}
			select {
			case <-load:
				end = time.Now()
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		proxy.ClearFaults()
		dropped, replays := 0, 0
		for _, req := range proxy.Requests()[from:] {
			if req.Dropped {
				dropped++
			}
			if req.Replayed {
				replays++
			}
		}
		r.note("%d answers dropped after the call ran; %d calls answered from Stripe's idempotency replay", dropped, replays)
		if dropped == 0 {
			return fmt.Errorf("no answer was dropped: the scenario tested nothing")
		}
		return nil
	})
}

// 6. Every Stripe answer takes -chaos.slow, half before the call runs and half after. A slow
// provider still works, so the checkouts must complete while it is slow: one not final within
// the arrivals plus -chaos.settle counts as lost, even if it completes once Stripe is fast again.
func slowProvider(ctx context.Context, h *harness, r *row) {
	window := 20 * time.Second
	r.Faults = fmt.Sprintf("every Stripe call answers after %s (half before it runs, half after), for the whole of %d checkouts over %s and %s after",
		*slowAnswer, *batchSize, window, *settleFor)
	h.loadWithFaults(ctx, r, "slow", *batchSize, window, func(ctx context.Context, r *row, cs []*checkout, load <-chan struct{}) error {
		half := int(slowAnswer.Milliseconds() / 2)
		h.dev.StripeProxy.AddFault(stripefake.Fault{PathPrefix: "/v1/", DelayMS: half, DelayAfterMS: half})
		defer h.dev.StripeProxy.ClearFaults()
		select {
		case <-load:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(window + *settleFor):
		}
		orders, err := h.ordersByKey(ctx, keysOf(cs))
		if err != nil {
			return err
		}
		waiting := 0
		for _, c := range cs {
			c.mu.Lock()
			sent := c.Answered || c.Accepted
			c.mu.Unlock()
			o, ok := orders[c.Key]
			switch {
			case ok && !final(o.Status), !ok && sent:
				r.lostUnderFault[c.Key] = fmt.Sprintf("not final %s into a slow provider (order %q)", window+*settleFor, o.Status)
			case !ok:
				// Not sent yet: every slot of the client was taken by a checkout that did not end.
				waiting++
			}
		}
		r.note("%d checkouts were not final while Stripe was slow, and %d not yet sent behind them; Stripe is fast again for the rest of the scenario",
			len(r.lostUnderFault), waiting)
		return nil
	})
}
