//go:build integration

package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// otlpCollector stands in for an OpenTelemetry collector (traces) and for Coralogix's OTLP
// ingress (logs): it decodes what the worker and the BFF export over OTLP/HTTP.
type otlpCollector struct {
	mu    sync.Mutex
	logs  []shippedLog
	spans []shippedSpan
}

// shippedLog is one exported log record with its resource's and its own attributes flattened.
type shippedLog struct {
	Authorization string
	Resource      map[string]string
	Body          string
	Attrs         map[string]string
	TraceID       string
}

// shippedSpan is one exported span.
type shippedSpan struct {
	Service, Name, TraceID, SpanID, ParentSpanID string
}

const coralogixKey = "e2e-coralogix-key"

// otlpEnv points the stack's trace export and Coralogix log shipping at the collector at url,
// with short batch delays so that tests need not wait long.
func otlpEnv(url string) []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url, "OTEL_BSP_SCHEDULE_DELAY=200", "OTEL_BLRP_SCHEDULE_DELAY=200",
		"CORALOGIX_ENDPOINT=" + url, "CORALOGIX_PRIVATE_KEY=" + coralogixKey, "CORALOGIX_APPLICATION_NAME=cartflow-e2e"}
}

// shipped is the collector the e2e stack exports to.
var shipped = &otlpCollector{}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := otlpBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var res proto.Message
	switch r.URL.Path {
	case "/v1/logs":
		var req collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.addLogs(r.Header.Get("Authorization"), &req)
		res = &collogs.ExportLogsServiceResponse{}
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.addSpans(&req)
		res = &coltrace.ExportTraceServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	out, _ := proto.Marshal(res)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func otlpBody(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	return io.ReadAll(body)
}

func flatten(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

func (c *otlpCollector) addLogs(auth string, req *collogs.ExportLogsServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		res := flatten(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				c.logs = append(c.logs, shippedLog{Authorization: auth, Resource: res, Body: anyString(lr.GetBody()),
					Attrs: flatten(lr.GetAttributes()), TraceID: hex.EncodeToString(lr.GetTraceId())})
			}
		}
	}
}

func (c *otlpCollector) addSpans(req *coltrace.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := flatten(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, shippedSpan{Service: service, Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()),
					SpanID: hex.EncodeToString(s.GetSpanId()), ParentSpanID: hex.EncodeToString(s.GetParentSpanId())})
			}
		}
	}
}

// logsWhere returns the shipped records whose attribute key has value.
func (c *otlpCollector) logsWhere(key, value string) []shippedLog {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []shippedLog
	for _, l := range c.logs {
		if l.Attrs[key] == value {
			out = append(out, l)
		}
	}
	return out
}

// trace returns the spans of one trace.
func (c *otlpCollector) trace(traceID string) []shippedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []shippedSpan
	for _, s := range c.spans {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

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
	var spans []shippedSpan
	defer func() {
		if t.Failed() {
			for _, s := range spans {
				t.Logf("span %s %s parent=%s", s.Service, s.Name, s.ParentSpanID)
			}
		}
	}()
	waitFor(t, "the checkout's spans", 15*time.Second, func() bool {
		spans = shipped.trace(traceID)
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
	var lines []shippedLog
	waitFor(t, "the checkout's log lines at the Coralogix endpoint", 15*time.Second, func() bool {
		lines = shipped.logsWhere("workflow_id", workflowID)
		return slices.ContainsFunc(lines, func(l shippedLog) bool { return l.Body == "charge succeeded" }) &&
			slices.ContainsFunc(lines, func(l shippedLog) bool { return l.Body == "http request" })
	})
	for _, l := range lines {
		process := l.Attrs["process"]
		switch {
		case l.Authorization != "Bearer "+coralogixKey:
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
	shipped.mu.Lock()
	defer shipped.mu.Unlock()
	for _, l := range shipped.logs {
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
