package e2ekit

import (
	"encoding/json"
	"net/http"
	"testing"
)

const page = `# HELP cartflow_http_requests_total HTTP requests answered.
# TYPE cartflow_http_requests_total counter
cartflow_http_requests_total{method="GET",route="/api/v1/products",status="200"} 12
cartflow_http_requests_total{method="POST",route="/api/v1/checkouts",status="201"} 7
cartflow_http_requests_total{method="POST",route="/api/v1/checkouts",status="500"} 2
cartflow_http_requests_total{method="GET",route="/api/v1/checkouts/:id",status="503"} 4
cartflow_http_requests_total{method="POST",route="/webhooks/:provider",status="502"} 1
cartflow_checkouts_total{outcome="completed"} 7
cartflow_checkouts_total{outcome="completed_late"} 1
`

func TestAnswersWithStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		match func(int) bool
		want  float64
	}{
		"500 only":           {func(s int) bool { return s == http.StatusInternalServerError }, 2},
		"5xx other than 503": {func(s int) bool { return s >= 500 && s != http.StatusServiceUnavailable }, 3},
		"every answer":       {func(int) bool { return true }, 26},
		"none":               {func(s int) bool { return s == http.StatusTeapot }, 0},
	} {
		if got := AnswersWithStatus(page, tc.match); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestMetricValue(t *testing.T) {
	// A series whose name another series' name starts with is matched whole.
	if got := MetricValue(page, `cartflow_checkouts_total{outcome="completed"}`); got != 7 {
		t.Errorf("completed = %v, want 7", got)
	}
	if got := MetricValue(page, `cartflow_checkouts_total{outcome="failed"}`); got != -1 {
		t.Errorf("an absent series = %v, want -1", got)
	}
}

func TestCheckoutIsTheStorefrontsRequest(t *testing.T) {
	raw, err := json.Marshal(Checkout("ada@example.com", "pm_card_visa"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"email":"ada@example.com","name":"Ada Lovelace","items":[{"sku":"tshirt-classic","quantity":2},` +
		`{"sku":"mug-enamel","quantity":1}],"payment":{"provider":"stripe","token":"pm_card_visa"}}`
	if string(raw) != want {
		t.Errorf("body %s\nwant %s", raw, want)
	}
}
