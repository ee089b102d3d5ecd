package sinks

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func post(t *testing.T, url, contentType string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func traceBatch(t *testing.T) []byte {
	t.Helper()
	req := &coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "cartflow-api"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "GET /x", TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8)}}}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTheSinkAnswersAsEachServiceAndKeepsWhatArrived(t *testing.T) {
	s, err := Start(Options{Name: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := strings.Join(s.Env(), " ")
	for _, want := range []string{"MIXPANEL_TOKEN=unit-project-token", "MIXPANEL_API_URL=" + s.URL, "SENTRY_DSN=http://public@",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + s.URL, "CORALOGIX_PRIVATE_KEY=unit-coralogix-key", "CORALOGIX_APPLICATION_NAME=cartflow-unit"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s: %s", want, env)
		}
	}
	if code := post(t, s.URL+"/track?verbose=1", "application/json", []byte(`[{"event":"checkout_started","properties":{"$device_id":"x"}}]`)); code != http.StatusOK {
		t.Fatalf("track: %d", code)
	}
	if code := post(t, s.URL+"/track", "application/json", []byte(`not json`)); code != http.StatusBadRequest {
		t.Fatalf("track of a bad batch: %d, want 400", code)
	}
	if code := post(t, s.URL+"/api/1/envelope/", "application/x-sentry-envelope", []byte("{}\n{\"type\":\"event\"}\nboom checkout-1")); code != http.StatusOK {
		t.Fatalf("envelope: %d", code)
	}
	if code := post(t, s.URL+"/v1/traces", "application/x-protobuf", traceBatch(t)); code != http.StatusOK {
		t.Fatalf("traces: %d", code)
	}
	if ev := s.Events(); len(ev) != 1 || ev[0].Event != "checkout_started" {
		t.Errorf("events %+v", ev)
	}
	if n := s.SentryEventsMentioning("checkout-1"); n != 1 || s.EnvelopeMentioning("checkout-1") == "" {
		t.Errorf("%d envelopes mention checkout-1", n)
	}
	if spans := s.Trace(strings.Repeat("01", 16)); len(spans) != 1 || spans[0].Service != "cartflow-api" || spans[0].Name != "GET /x" {
		t.Errorf("trace %+v", spans)
	}
	if c := s.Counts(); c != (Counts{MixpanelBatches: 1, SentryEnvelopes: 1, TraceBatches: 1}) {
		t.Errorf("counts %+v", c)
	}
}

func TestACountOnlySinkCountsAndKeepsNothing(t *testing.T) {
	s, err := Start(Options{Name: "bench", CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	post(t, s.URL+"/track", "application/json", []byte(`[{"event":"a"},{"event":"b"}]`))
	post(t, s.URL+"/api/1/envelope/", "application/x-sentry-envelope", []byte("{}"))
	post(t, s.URL+"/v1/traces", "application/x-protobuf", traceBatch(t))
	post(t, s.URL+"/v1/logs", "application/x-protobuf", nil)
	if c := s.Counts(); c != (Counts{MixpanelBatches: 1, SentryEnvelopes: 1, TraceBatches: 1, LogBatches: 1}) {
		t.Errorf("counts %+v", c)
	}
	if len(s.Events()) != 0 || len(s.Envelopes()) != 0 || len(s.Logs()) != 0 || len(s.Trace(strings.Repeat("01", 16))) != 0 {
		t.Error("a count-only sink kept what arrived")
	}
}
