package metrics_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/metrics"
)

func init() { gin.SetMode(gin.TestMode) }

var quiet = slog.New(slog.DiscardHandler)

// scrape GETs /metrics from h over a real HTTP server and returns every sample,
// keyed by the series exactly as exposed (name{label="v",...}, labels sorted by name).
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	return scrapeURL(t, srv.URL+"/metrics")
}

func scrapeURL(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	return parseSamples(t, resp.Body)
}

func parseSamples(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read scrape: %v", err)
	}
	return out
}

func TestGinLabelsByRouteTemplate(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	e := gin.New()
	e.Use(reg.Gin())
	e.GET("/api/v1/checkouts/:id", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"id": c.Param("id")}) })
	e.POST("/api/v1/checkouts", func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{}) })

	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/checkouts/chk_aaa"},
		{http.MethodGet, "/api/v1/checkouts/chk_bbb"},
		{http.MethodPost, "/api/v1/checkouts"},
		{http.MethodGet, "/wp-admin/secret-probe"},
		{"BREW", "/coffee-pot"},
	} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}

	got := scrape(t, reg.Handler())
	for series, want := range map[string]float64{
		`cartflow_http_requests_total{method="GET",route="/api/v1/checkouts/:id",status="200"}`:                 2,
		`cartflow_http_request_duration_seconds_count{method="GET",route="/api/v1/checkouts/:id",status="200"}`: 2,
		`cartflow_http_requests_total{method="POST",route="/api/v1/checkouts",status="201"}`:                    1,
		`cartflow_http_requests_total{method="GET",route="unmatched",status="404"}`:                             1,
		`cartflow_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}`:             1,
		`cartflow_http_requests_total{method="other",route="unmatched",status="404"}`:                           1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	// Raw paths and methods never become label values.
	for series := range got {
		for _, leak := range []string{"chk_aaa", "chk_bbb", "secret-probe", "coffee-pot", "BREW"} {
			if strings.Contains(series, leak) {
				t.Errorf("series %s carries the raw request value %q", series, leak)
			}
		}
	}
	// The runtime and process collectors are part of every registry.
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("go_goroutines missing from the scrape")
	}
}

func TestBusinessCounters(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	before := scrape(t, reg.Handler())
	// Series exist at zero before the first event, so rate() has a baseline.
	for _, series := range []string{
		`cartflow_checkouts_total{outcome="completed"}`,
		`cartflow_charges_total{outcome="declined",provider="paypal"}`,
		`cartflow_renewals_total{outcome="past_due"}`,
		`cartflow_refunds_total{outcome="succeeded",provider="braintree"}`,
		`cartflow_orphan_payments_total{found_by="reconciliation",provider="paypal"}`,
	} {
		if v, ok := before[series]; !ok || v != 0 {
			t.Errorf("before any event: %s = %v (present %v), want 0", series, v, ok)
		}
	}

	reg.CheckoutOutcome("completed")
	reg.CheckoutOutcome("completed")
	reg.CheckoutOutcome("failed")
	reg.CheckoutOutcome("bogus")
	reg.Charge("stripe", "succeeded")
	reg.Charge("stripe", "declined")
	reg.Charge("braintree", "requires_action")
	reg.Charge("adyen", "succeeded")
	reg.Charge("paypal", "exploded")
	reg.Renewal("renewed")
	reg.Renewal("past_due")
	reg.Renewal("whatever")
	reg.Refund("stripe", "succeeded")
	reg.Refund("paypal", "rejected")
	reg.Refund("", "")
	reg.OrphanPayment("stripe", "webhook")
	reg.OrphanPayment("braintree", "reconciliation")
	reg.OrphanPayment("adyen", "bogus")

	got := scrape(t, reg.Handler())
	for series, want := range map[string]float64{
		`cartflow_checkouts_total{outcome="completed"}`:                                  2,
		`cartflow_checkouts_total{outcome="failed"}`:                                     1,
		`cartflow_checkouts_total{outcome="other"}`:                                      1,
		`cartflow_checkouts_total{outcome="expired"}`:                                    0,
		`cartflow_charges_total{outcome="succeeded",provider="stripe"}`:                  1,
		`cartflow_charges_total{outcome="declined",provider="stripe"}`:                   1,
		`cartflow_charges_total{outcome="requires_action",provider="braintree"}`:         1,
		`cartflow_charges_total{outcome="succeeded",provider="other"}`:                   1,
		`cartflow_charges_total{outcome="other",provider="paypal"}`:                      1,
		`cartflow_renewals_total{outcome="renewed"}`:                                     1,
		`cartflow_renewals_total{outcome="past_due"}`:                                    1,
		`cartflow_renewals_total{outcome="other"}`:                                       1,
		`cartflow_renewals_total{outcome="canceled"}`:                                    0,
		`cartflow_refunds_total{outcome="succeeded",provider="stripe"}`:                  1,
		`cartflow_refunds_total{outcome="rejected",provider="paypal"}`:                   1,
		`cartflow_refunds_total{outcome="other",provider="other"}`:                       1,
		`cartflow_orphan_payments_total{found_by="webhook",provider="stripe"}`:           1,
		`cartflow_orphan_payments_total{found_by="reconciliation",provider="braintree"}`: 1,
		`cartflow_orphan_payments_total{found_by="webhook",provider="braintree"}`:        0,
		`cartflow_orphan_payments_total{found_by="other",provider="other"}`:              1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	for series := range got {
		for _, leak := range []string{"bogus", "adyen", "exploded", "whatever"} {
			if strings.Contains(series, leak) {
				t.Errorf("series %s carries the unbounded value %q", series, leak)
			}
		}
	}
}

func TestNilRegistryIsANoOp(t *testing.T) {
	t.Parallel()
	var reg *metrics.Registry
	reg.CheckoutOutcome("completed")
	reg.Charge("stripe", "succeeded")
	reg.Renewal("renewed")
	reg.Refund("stripe", "succeeded")
	reg.OrphanPayment("stripe", "webhook")
	if reg.TemporalMetricsHandler() != client.MetricsNopHandler {
		t.Error("nil registry: TemporalMetricsHandler is not the SDK's no-op handler")
	}
	if err := reg.Close(); err != nil {
		t.Errorf("nil registry: Close: %v", err)
	}

	// The middleware still passes requests on to the handlers.
	e := gin.New()
	e.Use(reg.Gin())
	e.GET("/ping", func(c *gin.Context) { c.String(http.StatusTeapot, "pong") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ping", nil))
	if rec.Code != http.StatusTeapot || rec.Body.String() != "pong" {
		t.Errorf("nil registry middleware: got %d %q, want 418 pong", rec.Code, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil registry handler: status %d, want 404", rec.Code)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestServeUntilContextDone(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	reg.Charge("paypal", "succeeded")
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, addr, reg.Handler(), quiet) }()

	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("scrape: status %d", resp.StatusCode)
			}
			got = parseSamples(t, resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics listener never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := got[`cartflow_charges_total{outcome="succeeded",provider="paypal"}`]; v != 1 {
		t.Errorf("served charges counter = %v, want 1", v)
	}

	// A second listener on the same address fails at once instead of hanging.
	if err := metrics.Serve(ctx, addr, reg.Handler(), quiet); err == nil {
		t.Error("Serve on an address in use returned nil")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was canceled")
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Error("metrics listener still accepts connections after shutdown")
	}
}
