//go:build integration

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/sinks"
)

// TestCheckoutIsOneTraceAndItsLogsAreShipped follows a checkout sent with a storefront's W3C
// traceparent: the BFF, the Temporal client, the workflow and its activities all report spans of
// that one trace, and the worker's and the BFF's log lines reach the Coralogix endpoint with the
// workflow id, the request id and the trace, under cartflow's application and subsystem names,
// and with nothing personal in them.
func TestCheckoutIsOneTraceAndItsLogsAreShipped(t *testing.T) {
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"
	traceID, parentID := hex.EncodeToString(randomBytes(16)), hex.EncodeToString(randomBytes(8))
	requestID := "req-" + key
	raw, _ := json.Marshal(validBody(email, "pm_card_visa"))
	req, _ := http.NewRequest(http.MethodPost, dev.APIURL+"/api/v1/checkouts", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-Request-Id", requestID)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	code, res := do(t, req)
	if code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	waitStatus(t, res.CheckoutID, "completed", 30*time.Second)

	// The trace: the BFF's server span continues the storefront's; the rest descend from it.
	want := []string{"cartflow-api POST /api/v1/checkouts", "cartflow-api UpdateWithStartWorkflow:await-outcome",
		"cartflow-worker RunWorkflow:Purchase", "cartflow-worker StartActivity:Charge", "cartflow-worker RunActivity:Charge"}
	var spans []sinks.Span
	defer func() {
		if t.Failed() {
			for _, s := range spans {
				t.Logf("span %s %s parent=%s", s.Service, s.Name, s.ParentSpanID)
			}
		}
	}()
	waitFor(t, "the checkout's spans", 15*time.Second, func() bool {
		spans = reported.Trace(traceID)
		var have []string
		for _, s := range spans {
			have = append(have, s.Service+" "+s.Name)
		}
		for _, w := range want {
			if !slices.Contains(have, w) {
				return false
			}
		}
		return true
	})
	for _, s := range spans {
		if s.Name == "POST /api/v1/checkouts" && s.ParentSpanID != parentID {
			t.Errorf("the BFF's span has parent %s, want the storefront's %s", s.ParentSpanID, parentID)
		}
	}

	// The logs: every line about the checkout names its workflow, the BFF's also the request,
	// and all carry the trace; each process ships under its own subsystem.
	workflowID := "checkout-" + key
	var lines []sinks.Log
	waitFor(t, "the checkout's log lines at the Coralogix endpoint", 15*time.Second, func() bool {
		lines = reported.LogsWhere("workflow_id", workflowID)
		return slices.ContainsFunc(lines, func(l sinks.Log) bool { return l.Body == "charge succeeded" }) &&
			slices.ContainsFunc(lines, func(l sinks.Log) bool { return l.Body == "http request" })
	})
	for _, l := range lines {
		process := l.Attrs["process"]
		switch {
		case l.Authorization != "Bearer "+reported.CoralogixKey():
			t.Errorf("a log batch came without the Coralogix key: %q", l.Authorization)
		case l.Resource["cx.application.name"] != "cartflow-e2e" || l.Resource["cx.subsystem.name"] != process:
			t.Errorf("%s line %q filed under %q / %q", process, l.Body, l.Resource["cx.application.name"], l.Resource["cx.subsystem.name"])
		case l.TraceID != traceID:
			t.Errorf("log line %q carries trace %q, want %q", l.Body, l.TraceID, traceID)
		case process == "worker" && l.Attrs["run_id"] == "":
			t.Errorf("worker line %q has no run id: %v", l.Body, l.Attrs)
		case process == "api" && l.Attrs["request_id"] != requestID:
			t.Errorf("BFF line %q has request id %q, want %q", l.Body, l.Attrs["request_id"], requestID)
		case l.Body == "charge succeeded" && (l.Attrs["activity"] != "Charge" || l.Attrs["order_id"] == ""):
			t.Errorf("the charge's line lacks its activity or order: %v", l.Attrs)
		}
	}
	// Redaction applies to the shipped copy too.
	for _, l := range reported.Logs() {
		line := fmt.Sprint(l.Body, l.Attrs)
		if strings.Contains(line, email) || strings.Contains(line, "pm_card_visa") {
			t.Errorf("a shipped log line keeps the email or the payment token: %s", line)
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
