package analytics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/analytics"
)

// request is one request the fake Mixpanel received.
type request struct {
	path, query, contentType, accept string
	events                           []wireEvent
}

type wireEvent struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

// fakeMixpanel records what arrives at /track; answer decides each response (nil: accepted).
type fakeMixpanel struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	answer   func(n int, w http.ResponseWriter, r *http.Request) bool
}

func startMixpanel(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) bool) *fakeMixpanel {
	t.Helper()
	f := &fakeMixpanel{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var events []wireEvent
		if err := json.Unmarshal(body, &events); err != nil {
			t.Errorf("body is not a JSON array of events: %v: %s", err, body)
		}
		f.mu.Lock()
		f.requests = append(f.requests, request{path: r.URL.Path, query: r.URL.RawQuery,
			contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept"), events: events})
		n := len(f.requests)
		f.mu.Unlock()
		if f.answer != nil && f.answer(n, w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":1,"error":null}`))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMixpanel) got() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func newClient(t *testing.T, cfg analytics.Config) *analytics.Client {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = "project-token"
	}
	c, err := analytics.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func closeNow(t *testing.T, c *analytics.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func event(i int) analytics.Event {
	return analytics.Event{Name: "checkout_started", DistinctID: "user-1", InsertID: analytics.InsertID("wf", string(rune('a'+i))),
		Time: time.UnixMilli(1_700_000_000_000 + int64(i)), Properties: map[string]any{"order_id": i, "token": "overridden?"}}
}

// Events go out in batches of BatchSize, in the order tracked, in Mixpanel's /track format.
func TestBatchesInOrder(t *testing.T) {
	t.Parallel()
	mp := startMixpanel(t, nil)
	c := newClient(t, analytics.Config{APIURL: mp.URL, BatchSize: 3, FlushInterval: time.Hour})
	for i := range 7 {
		c.Track(event(i))
	}
	closeNow(t, c)

	reqs := mp.got()
	if len(reqs) != 3 || len(reqs[0].events) != 3 || len(reqs[1].events) != 3 || len(reqs[2].events) != 1 {
		t.Fatalf("got %d requests %+v, want batches of 3, 3, 1", len(reqs), reqs)
	}
	i := 0
	for _, r := range reqs {
		if r.path != "/track" || r.query != "verbose=1" || r.contentType != "application/json" || r.accept != "application/json" {
			t.Errorf("request %s?%s, Content-Type %q, Accept %q", r.path, r.query, r.contentType, r.accept)
		}
		for _, e := range r.events {
			want := event(i)
			p := e.Properties
			if e.Event != want.Name || p["distinct_id"] != "user-1" || p["$insert_id"] != want.InsertID ||
				p["time"] != float64(want.Time.UnixMilli()) || p["order_id"] != float64(i) || p["token"] != "project-token" {
				t.Errorf("event %d arrived as %+v", i, e)
			}
			i++
		}
	}
	if s := c.Stats(); s.Sent != 7 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// An incomplete batch is sent when the flush interval ends, without waiting for Close.
func TestFlushInterval(t *testing.T) {
	t.Parallel()
	mp := startMixpanel(t, nil)
	c := newClient(t, analytics.Config{APIURL: mp.URL, FlushInterval: 20 * time.Millisecond})
	c.Track(event(0))
	deadline := time.Now().Add(5 * time.Second)
	for len(mp.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := mp.got()[0].events; len(got) != 1 || got[0].Properties["$insert_id"] != event(0).InsertID {
		t.Fatalf("got %+v", got)
	}
}

// The same insert id tracked twice (an activity retried on this worker) is sent once.
func TestRecentInsertIDSentOnce(t *testing.T) {
	t.Parallel()
	mp := startMixpanel(t, nil)
	c := newClient(t, analytics.Config{APIURL: mp.URL})
	c.Track(event(0))
	c.Track(event(0))
	c.Track(event(1))
	closeNow(t, c)
	var ids []any
	for _, r := range mp.got() {
		for _, e := range r.events {
			ids = append(ids, e.Properties["$insert_id"])
		}
	}
	if len(ids) != 2 || ids[0] != event(0).InsertID || ids[1] != event(1).InsertID {
		t.Fatalf("insert ids that arrived: %v", ids)
	}
	if s := c.Stats(); s.Sent != 2 || s.Dropped != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A hung endpoint never holds up Track: the queue fills, further events are dropped and
// counted, and Close gives up when its context ends.
func TestTrackNeverBlocksWhenEndpointHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	mp := startMixpanel(t, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	defer close(release)
	c, err := analytics.New(analytics.Config{Token: "t", APIURL: mp.URL, BatchSize: 1, QueueSize: 4, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 200 {
		c.Track(event(i))
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("200 Track calls took %v against a hung endpoint", took)
	}
	if s := c.Stats(); s.Dropped < 190 {
		t.Fatalf("stats %+v: a full queue must drop events", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close against a hung endpoint: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("close took %v", took)
	}
	if s := c.Stats(); s.Sent != 0 {
		t.Fatalf("stats %+v: nothing can have been sent", s)
	}
	c.Track(event(500)) // after Close: dropped, and no panic
}

// A batch that meets a 500 is sent again, with the same events, and then counts as sent.
func TestRetryAfterServerError(t *testing.T) {
	t.Parallel()
	mp := startMixpanel(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}
		return false
	})
	c := newClient(t, analytics.Config{APIURL: mp.URL, RetryBackoff: time.Millisecond})
	c.Track(event(0))
	c.Track(event(1))
	closeNow(t, c)
	reqs := mp.got()
	if len(reqs) != 2 || len(reqs[1].events) != 2 || reqs[1].events[0].Properties["$insert_id"] != reqs[0].events[0].Properties["$insert_id"] {
		t.Fatalf("requests %+v, want the same batch twice", reqs)
	}
	if s := c.Stats(); s.Sent != 2 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A batch is given up after MaxAttempts failures, and one Mixpanel refuses is never retried.
func TestGivesUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		answer   func(int, http.ResponseWriter, *http.Request) bool
		requests int
	}{
		{"always 503", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}, 3},
		{"refused", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"status":0,"error":"token, missing or empty"}`))
			return true
		}, 1},
		{"400", func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":0,"error":"bad event"}`))
			return true
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mp := startMixpanel(t, tc.answer)
			c := newClient(t, analytics.Config{APIURL: mp.URL, MaxAttempts: 3, RetryBackoff: time.Millisecond})
			c.Track(event(0))
			closeNow(t, c)
			if n := len(mp.got()); n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
			if s := c.Stats(); s.Sent != 0 || s.Failed != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// Without a token there is no client, and a nil client does nothing.
func TestDisabled(t *testing.T) {
	t.Parallel()
	c, err := analytics.New(analytics.Config{APIURL: "http://127.0.0.1:1"})
	if err != nil || c != nil {
		t.Fatalf("New without a token = %v, %v; want nil, nil", c, err)
	}
	c.Track(event(0))
	if c.Enabled() || c.Flush(context.Background()) != nil || c.Close(context.Background()) != nil || c.Stats() != (analytics.Stats{}) {
		t.Fatal("a nil client must do nothing")
	}
	if _, err := analytics.New(analytics.Config{Token: "t", APIURL: "api.mixpanel.com"}); err == nil {
		t.Fatal("an API URL without a scheme must be refused")
	}
}

// Insert ids are stable, distinct per occurrence, and fit Mixpanel's 36 alphanumeric characters;
// email ids hash the standardized address.
func TestIdentifiers(t *testing.T) {
	t.Parallel()
	a := analytics.InsertID("checkout-k1", "checkout_started")
	if a != analytics.InsertID("checkout-k1", "checkout_started") {
		t.Fatal("the insert id must be stable")
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Fatalf("insert id %q does not fit Mixpanel's format", a)
	}
	for _, other := range []string{analytics.InsertID("checkout-k2", "checkout_started"), analytics.InsertID("checkout-k1", "payment_succeeded"),
		analytics.InsertID("checkout-k", "1checkout_started")} {
		if other == a {
			t.Fatalf("different occurrences share the insert id %s", a)
		}
	}
	if analytics.EmailID(" Ada@Example.com ") != analytics.EmailID("ada@example.com") || len(analytics.EmailID("ada@example.com")) != 64 {
		t.Fatal("the email id must hash the standardized address")
	}
}
