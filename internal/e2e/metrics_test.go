//go:build integration

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
)

// scrape returns a /metrics page.
func scrape(t *testing.T, url string) string {
	t.Helper()
	page, err := e2ekit.Scrape(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func TestMetricsMoveAfterAPurchase(t *testing.T) {
	key := newKey(t)
	if code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa")); code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	api := scrape(t, dev.APIInternalURL+"/metrics")
	for _, want := range []string{
		`cartflow_http_requests_total{method="POST",route="/api/v1/checkouts",status="201"}`,
		`cartflow_http_request_duration_seconds_count{method="POST",route="/api/v1/checkouts",status="201"}`,
	} {
		if !strings.Contains(api, want) {
			t.Errorf("BFF /metrics lacks %s", want)
		}
	}
	// The business counters moved on the worker.
	worker := scrape(t, dev.WorkerMetricsURL)
	for _, series := range []string{
		`cartflow_charges_total{outcome="succeeded",provider="stripe"}`,
		`cartflow_checkouts_total{outcome="completed"}`,
	} {
		if v := e2ekit.MetricValue(worker, series); v < 1 {
			t.Errorf("worker %s = %v, want at least 1", series, v)
		}
	}
	// The worker's Temporal SDK metrics are reported every second.
	waitFor(t, "the worker's Temporal metrics", 10*time.Second, func() bool {
		return strings.Contains(scrape(t, dev.WorkerMetricsURL), `temporal_workflow_completed_total{`) &&
			strings.Contains(scrape(t, dev.WorkerMetricsURL), `workflow_type="Purchase"`)
	})
}
