//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/stack"
)

// component is a part of the stack that the supervisor takes down and brings back.
type component string

const (
	workerProcess  component = "worker"
	temporalServer component = "temporal"
	postgresServer component = "postgres"
	// stripeLayer is the Stripe test-mode layer's listener: down, every call to Stripe is refused.
	stripeLayer component = "stripe"
)

// shutdown is how a component is taken down.
type shutdown int

const (
	// graceful asks it to stop (SIGTERM; Postgres's fast shutdown, SIGINT).
	graceful shutdown = iota
	// crash kills it with SIGKILL, as a power cut would.
	crash
)

func (s shutdown) String() string {
	if s == crash {
		return "SIGKILL"
	}
	return "stop"
}

// incident is one thing the supervisor did or saw, for the report.
type incident struct {
	At        time.Time `json:"at"`
	Component component `json:"component"`
	// What happened: "SIGKILL", "stop", "back", "exited by itself", "restart failed: …".
	What string `json:"what"`
	// Planned says a scenario asked for it; an unplanned exit of a component is a finding.
	Planned bool `json:"planned"`
	// Took is how long the component took to be healthy again, for "back".
	Took time.Duration `json:"took_ns,omitempty"`
}

// supervisor takes components down when a scenario asks, brings them back and waits until the
// stack is healthy again, and restarts any component that dies without being asked to, noting
// it: the stack must stay whole between the faults a scenario injects.
type supervisor struct {
	dev *stack.Stack
	// mu serialises every change: a restart is never raced by another, or by the watch.
	mu   sync.Mutex
	down map[component]time.Time // taken down by a scenario, and when
	log  []incident
	quit chan struct{}
	done chan struct{}
}

func newSupervisor(dev *stack.Stack) *supervisor {
	s := &supervisor{dev: dev, down: map[component]time.Time{}, quit: make(chan struct{}), done: make(chan struct{})}
	go s.watch()
	return s
}

// stop ends the watch; what is down stays down.
func (s *supervisor) stop() {
	close(s.quit)
	<-s.done
}

// incidents returns what happened so far.
func (s *supervisor) incidents() []incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]incident(nil), s.log...)
}

func (s *supervisor) note(c component, what string, planned bool, took time.Duration) {
	s.log = append(s.log, incident{At: time.Now().UTC(), Component: c, What: what, Planned: planned, Took: took})
}

// crash kills c with SIGKILL and brings it back at once: the worker-kill scenario.
func (s *supervisor) crash(ctx context.Context, c component) error {
	if err := s.takeDown(c, crash); err != nil {
		return err
	}
	return s.bringBack(ctx, c)
}

// takeDown stops c the way given; it stays down until bringBack.
func (s *supervisor) takeDown(c component, how shutdown) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, isDown := s.down[c]; isDown {
		return fmt.Errorf("%s is down already", c)
	}
	var err error
	switch c {
	case workerProcess:
		if how == crash {
			err = s.dev.KillWorker()
		} else if w := s.dev.Worker(); w != nil {
			err = w.Stop(10 * time.Second)
		}
	case temporalServer:
		if how == crash {
			err = s.dev.Temporal.Kill()
		} else {
			err = s.dev.Temporal.Stop()
		}
	case postgresServer:
		if how == crash {
			err = s.dev.Postgres.Kill()
		} else {
			err = s.dev.Postgres.Stop()
		}
	case stripeLayer:
		s.dev.StopStripeProxy()
	}
	if err != nil {
		return fmt.Errorf("take %s down (%s): %w", c, how, err)
	}
	s.down[c] = time.Now()
	s.note(c, how.String(), true, 0)
	return nil
}

// bringBack starts c again and waits until the stack is healthy: the BFF ready (its checks
// cover PostgreSQL and Temporal) and a worker polling.
func (s *supervisor) bringBack(ctx context.Context, c component) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, isDown := s.down[c]
	if !isDown {
		return fmt.Errorf("%s is not down", c)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := s.start(ctx, c); err != nil {
		s.note(c, "restart failed: "+err.Error(), true, 0)
		return fmt.Errorf("bring %s back: %w", c, err)
	}
	delete(s.down, c)
	if err := s.waitHealthy(ctx); err != nil {
		s.note(c, "back but unhealthy: "+err.Error(), true, 0)
		return err
	}
	s.note(c, "back", true, time.Since(since))
	return nil
}

// start starts c again; the caller holds mu.
func (s *supervisor) start(ctx context.Context, c component) error {
	switch c {
	case workerProcess:
		return s.dev.StartWorker(ctx)
	case temporalServer:
		return s.dev.Temporal.Restart(ctx)
	case postgresServer:
		return s.dev.Postgres.Restart(ctx)
	case stripeLayer:
		return s.dev.StartStripeProxy()
	}
	return fmt.Errorf("unknown component %s", c)
}

// healthy waits until the stack is healthy, for at most two minutes, and says whether it is.
func (s *supervisor) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.down) == 0 && s.waitHealthy(ctx) == nil
}

// waitHealthy polls until the BFF answers /readyz with 200 and a worker runs; the caller holds mu.
func (s *supervisor) waitHealthy(ctx context.Context) error {
	var last error
	for {
		if w := s.dev.Worker(); w == nil {
			last = errors.New("no worker running")
		} else if last = stack.GetOK(ctx, s.dev.APIInternalURL+"/readyz", io.Discard); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the stack is not healthy: %v", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// watch restarts a worker, Temporal server or PostgreSQL that exited by itself, and notes it.
// While a scenario has something down it leaves everything alone: a worker that gave up on a
// Temporal server that is away could not start before that server is back anyway.
func (s *supervisor) watch() {
	defer close(s.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		if len(s.down) == 0 {
			s.reviveExited()
		}
		s.mu.Unlock()
	}
}

// reviveExited restarts what has exited; the caller holds mu.
func (s *supervisor) reviveExited() {
	exited := func(p *stack.Process) bool {
		if p == nil {
			return true
		}
		select {
		case <-p.Done():
			return true
		default:
			return false
		}
	}
	for _, c := range []component{postgresServer, temporalServer, workerProcess} {
		var gone bool
		switch c {
		case postgresServer:
			gone = exited(s.dev.Postgres.Process())
		case temporalServer:
			gone = exited(s.dev.Temporal.Process())
		case workerProcess:
			gone = exited(s.dev.Worker())
		}
		if !gone {
			continue
		}
		s.note(c, "exited by itself", false, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		began := time.Now()
		if err := s.start(ctx, c); err != nil {
			s.note(c, "restart failed: "+err.Error(), false, 0)
		} else {
			s.note(c, "back", false, time.Since(began))
		}
		cancel()
	}
	if exited(s.dev.API()) {
		// The stack cannot start another BFF; the scenarios' requests will fail and say so.
		if n := len(s.log); n == 0 || s.log[n-1].Component != "api" {
			s.note("api", "exited by itself", false, 0)
		}
	}
}
