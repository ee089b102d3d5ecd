package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// fakeRates is the rate limits' PostgreSQL in memory: counters by bucket, key and window, the
// sources recorded per workflow, and declines to count per IP and email hash.
type fakeRates struct {
	rmu      sync.Mutex
	counters map[string]int
	sources  map[string]store.PaymentSource
	// declines are recorded declines' sources, as the worker would write them.
	declines []store.PaymentSource
	rateErr  error
}

func (f *fakeRates) IncrementRateCounter(_ context.Context, bucket, keyHash string, start time.Time) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if f.rateErr != nil {
		return 0, f.rateErr
	}
	if f.counters == nil {
		f.counters = map[string]int{}
	}
	k := bucket + "|" + keyHash + "|" + start.String()
	f.counters[k]++
	return f.counters[k], nil
}

func (f *fakeRates) RecordPaymentSource(_ context.Context, workflowID string, src store.PaymentSource) error {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if f.rateErr != nil {
		return f.rateErr
	}
	if f.sources == nil {
		f.sources = map[string]store.PaymentSource{}
	}
	f.sources[workflowID] = src
	return nil
}

func (f *fakeRates) CountDeclines(_ context.Context, src store.PaymentSource, _ string, _ time.Time) (store.DeclineCounts, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if f.rateErr != nil {
		return store.DeclineCounts{}, f.rateErr
	}
	var n store.DeclineCounts
	for _, d := range f.declines {
		if d.IPHash != "" && d.IPHash == src.IPHash {
			n.IP++
		}
		if d.EmailHash != "" && d.EmailHash == src.EmailHash {
			n.Email++
		}
	}
	return n, nil
}

// source is the workflow's recorded source.
func (f *fakeRates) source(workflowID string) (store.PaymentSource, bool) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	src, ok := f.sources[workflowID]
	return src, ok
}

// declineFrom records a decline from the source of workflowID, as the worker would.
func (f *fakeRates) declineFrom(t *testing.T, workflowID string) {
	t.Helper()
	src, ok := f.source(workflowID)
	if !ok {
		t.Fatalf("no source recorded for %s", workflowID)
	}
	f.rmu.Lock()
	defer f.rmu.Unlock()
	f.declines = append(f.declines, src)
}

// errRateStoreDown stands for PostgreSQL failing under the rate limits.
var errRateStoreDown = errors.New("postgres down")

// expectCheckouts makes the mocked Temporal complete every checkout; it returns the starts.
func (e *testEnv) expectCheckouts(t *testing.T) *startRecorder {
	t.Helper()
	return e.expectUpdateWithStart(t, workflowBehavior{get: completedCheckout})
}

// assertStarts fails unless n checkouts were started.
func assertStarts(t *testing.T, starts *startRecorder, n int) {
	t.Helper()
	if got := len(starts.all()); got != n {
		t.Fatalf("%d checkouts started, want %d", got, n)
	}
}

// assertError checks that rec is a JSON error with the status, code and field.
func assertError(t *testing.T, rec *httptest.ResponseRecorder, status int, code, field string) {
	t.Helper()
	got := decodeError(t, rec, status)
	if got.Code != code || got.Field != field {
		t.Fatalf("error {code %q, field %q}, want {%q, %q}", got.Code, got.Field, code, field)
	}
}

// withLimits rebuilds e's routes with the rate-limit settings changed by set.
func (e *testEnv) withLimits(set func(s *server)) {
	set(e.server)
	e.handler = e.server.routes()
}

// checkoutFrom is a checkout request from the client at ip, under its own key.
func checkoutFrom(ip, key, email string) *http.Request {
	body := `{"email":"` + email + `","name":"Ada","items":[{"sku":"mug","quantity":1}],"payment":{"provider":"stripe","token":"tok_visa"}}`
	req := newCheckoutRequest(key, body)
	req.RemoteAddr = ip + ":40000"
	return req
}

// assertRateHeaders checks the IETF RateLimit-* headers and Retry-After of a 429.
func assertRateHeaders(t *testing.T, rec *httptest.ResponseRecorder, limit, windowSeconds int) {
	t.Helper()
	h := rec.Header()
	if h.Get("RateLimit-Limit") != strconv.Itoa(limit) || h.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Limit %q, -Remaining %q; want %d and 0", h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), limit)
	}
	if want := strconv.Itoa(limit) + ";w=" + strconv.Itoa(windowSeconds); h.Get("RateLimit-Policy") != want {
		t.Errorf("RateLimit-Policy %q, want %q", h.Get("RateLimit-Policy"), want)
	}
	reset, err := strconv.Atoi(h.Get("RateLimit-Reset"))
	if err != nil || reset < 1 || reset > windowSeconds {
		t.Errorf("RateLimit-Reset %q, want 1..%d seconds", h.Get("RateLimit-Reset"), windowSeconds)
	}
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || retry < 1 || retry > windowSeconds {
		t.Errorf("Retry-After %q, want 1..%d seconds", h.Get("Retry-After"), windowSeconds)
	}
}

func TestCheckoutRateLimitPerIP(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) { s.cfg.RateLimits.Window, s.cfg.RateLimits.CheckoutPerIP = time.Minute, 2 })
	starts := e.expectCheckouts(t)
	for i := range 2 {
		rec := serve(e.handler, checkoutFrom("203.0.113.7", testKey[:30]+strconv.Itoa(i)+"aaaaa", "ada@example.com"))
		if rec.Code != http.StatusCreated {
			t.Fatalf("checkout %d: %d %s", i+1, rec.Code, rec.Body)
		}
		if rec.Header().Get("RateLimit-Remaining") != strconv.Itoa(1-i) {
			t.Errorf("checkout %d: RateLimit-Remaining %q", i+1, rec.Header().Get("RateLimit-Remaining"))
		}
	}
	rec := serve(e.handler, checkoutFrom("203.0.113.7", testKey[:30]+"9bbbbbb", "ada@example.com"))
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 2, 60)
	assertStarts(t, starts, 2)
	// Another IP has its own count.
	if rec := serve(e.handler, checkoutFrom("198.51.100.1", testKey[:30]+"8cccccc", "bob@example.com")); rec.Code != http.StatusCreated {
		t.Fatalf("another IP: %d %s", rec.Code, rec.Body)
	}
}

func TestCheckoutRateLimitPerEmail(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) { s.cfg.RateLimits.Window, s.cfg.RateLimits.CheckoutPerEmail = time.Minute, 1 })
	starts := e.expectCheckouts(t)
	if rec := serve(e.handler, checkoutFrom("203.0.113.7", testKey[:30]+"0aaaaaa", "Ada@Example.com")); rec.Code != http.StatusCreated {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	// The same email in other letters, from another IP.
	rec := serve(e.handler, checkoutFrom("198.51.100.1", testKey[:30]+"1aaaaaa", "ada@example.com"))
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 1, 60)
	assertStarts(t, starts, 1)
}

func TestSignInLimitHelper(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) {
		s.cfg.RateLimits.Window, s.cfg.RateLimits.SignInPerIP, s.cfg.RateLimits.SignInPerEmail = time.Minute, 3, 2
	})
	// What the lead's sign-in handler does: the limit first, then its 202.
	var started int
	r := e.server.routes()
	r.POST("/test/sign-in", func(c *gin.Context) {
		if !e.server.limitSignIn(c, c.Query("email")) {
			return
		}
		started++
		c.Status(http.StatusAccepted)
	})
	send := func(ip, email string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/test/sign-in?email="+email, nil)
		req.RemoteAddr = ip + ":1234"
		return serve(r, req)
	}
	for i := range 2 {
		if rec := send("203.0.113.7", "ada@example.com"); rec.Code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := send("203.0.113.7", "ada@example.com")
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 2, 60)
	// The IP's third request counted (it came before the email's), so the IP is out too.
	rec = send("203.0.113.7", "bob@example.com")
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 3, 60)
	if started != 2 {
		t.Fatalf("%d sign-ins went on, want 2", started)
	}
	if rec := send("198.51.100.1", "bob@example.com"); rec.Code != http.StatusAccepted {
		t.Fatalf("another IP and email: %d", rec.Code)
	}
}

func TestRateLimitCounterDownIs503(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) { s.cfg.RateLimits.Window, s.cfg.RateLimits.CheckoutPerIP = time.Minute, 2 })
	e.store.rateErr = errRateStoreDown
	rec := serve(e.handler, checkoutFrom("203.0.113.7", testKey, "ada@example.com"))
	assertError(t, rec, http.StatusServiceUnavailable, "service_unavailable", "")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	e.assertTemporalUntouched(t)
}

func TestReadsLimitedInMemory(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) { s.cfg.RateLimits.ReadsPerSecond, s.cfg.RateLimits.ReadsBurst = 1, 2 })
	// Reads never count in PostgreSQL, so an outage there cannot fail them either.
	e.store.rateErr = errRateStoreDown
	get := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/products", nil)
		req.RemoteAddr = ip + ":1234"
		return serve(e.handler, req)
	}
	for i := range 2 {
		if rec := get("203.0.113.7"); rec.Code != http.StatusOK {
			t.Fatalf("read %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := get("203.0.113.7")
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 2, 2)
	if rec := get("198.51.100.1"); rec.Code != http.StatusOK {
		t.Fatalf("another IP: %d", rec.Code)
	}
	e.store.assertCalls(t, "ListProducts", 3)
}

func TestTooManyDeclinesRefusedBeforeAnythingStarts(t *testing.T) {
	e := newTestEnv(t)
	e.withLimits(func(s *server) {
		s.cfg.Declines.Window, s.cfg.Declines.PerIP, s.cfg.Declines.PerEmail = time.Hour, 2, 10
	})
	starts := e.expectCheckouts(t)
	for i := range 2 {
		key := testKey[:30] + strconv.Itoa(i) + "aaaaa"
		if rec := serve(e.handler, checkoutFrom("203.0.113.7", key, "card"+strconv.Itoa(i)+"@example.com")); rec.Code != http.StatusCreated {
			t.Fatalf("checkout %d: %d %s", i+1, rec.Code, rec.Body)
		}
		// The worker declines it and records the decline against the source the BFF recorded.
		e.store.declineFrom(t, "checkout-"+key)
	}
	rec := serve(e.handler, checkoutFrom("203.0.113.7", testKey[:30]+"9zzzzzz", "new@example.com"))
	assertError(t, rec, http.StatusTooManyRequests, "too_many_declines", "")
	if ra, _ := strconv.Atoi(rec.Header().Get("Retry-After")); ra != 3600 {
		t.Errorf("Retry-After %q, want the decline window", rec.Header().Get("Retry-After"))
	}
	assertStarts(t, starts, 2)
	if _, ok := e.store.source("checkout-" + testKey[:30] + "9zzzzzz"); ok {
		t.Error("a refused checkout recorded its source")
	}
	// The source holds hashes, never the IP or email in clear.
	src, _ := e.store.source("checkout-" + testKey[:30] + "0aaaaa")
	if strings.Contains(src.IPHash, "203.0.113.7") || len(src.IPHash) != 64 || len(src.EmailHash) != 64 {
		t.Errorf("source %+v is not hashed", src)
	}
}

// A card change takes the per-subscription limit and the decline check before its workflow
// starts, and records its source for that workflow.
func TestCardChangeGuarded(t *testing.T) {
	e := newTestEnv(t)
	e.store.putSubscription(testSubscription(), testHistory()...)
	e.withLimits(func(s *server) {
		s.cfg.RateLimits.Window, s.cfg.RateLimits.CardChangePerSub = time.Minute, 1
		s.cfg.Declines.Window, s.cfg.Declines.PerEmail = time.Hour, 1
	})
	changes := e.expectChange(t, changeBehavior{get: applyChange(e.store)})
	change := func(key string) *httptest.ResponseRecorder {
		return serve(e.handler, changeRequest(http.MethodPut, "/api/v1/me/subscriptions/"+sub1+"/payment-method", key,
			`{"provider":"stripe","token":"pm_card_visa"}`))
	}
	key1 := testKey[:30] + "1aaaaa"
	if rec := change(key1); rec.Code != http.StatusOK {
		t.Fatalf("first change: %d %s", rec.Code, rec.Body)
	}
	wf := workflows.SubscriptionChangeWorkflowID(sub1, key1)
	src, ok := e.store.source(wf)
	if !ok || src.EmailHash == "" {
		t.Fatalf("no source with the subscription's email recorded for %s: %+v", wf, src)
	}
	rec := change(testKey[:30] + "2aaaaa")
	assertError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	assertRateHeaders(t, rec, 1, 60)

	// The card was declined in that workflow: the subscription's email is now blocked too.
	e.store.declineFrom(t, wf)
	e.withLimits(func(s *server) { s.cfg.RateLimits.CardChangePerSub = 0 })
	rec = change(testKey[:30] + "3aaaaa")
	assertError(t, rec, http.StatusTooManyRequests, "too_many_declines", "")
	if n := len(changes.all()); n != 1 {
		t.Fatalf("%d change workflows started, want 1", n)
	}
}
