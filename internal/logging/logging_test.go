package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// recorder is a destination beside stdout, as the OTLP exporter is: it keeps what it is handed,
// through every logger derived with With.
type recorder struct {
	attrs []slog.Attr
	*shipment
}

type shipment struct {
	attrs   []slog.Attr // every field handed to any derived handler
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	r.shipment.attrs = append(r.shipment.attrs, as...)
	return &recorder{attrs: append(append([]slog.Attr{}, r.attrs...), as...), shipment: r.shipment}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// text is everything the destination was told: fields and messages.
func (r *recorder) text() string {
	var b strings.Builder
	for _, a := range r.shipment.attrs {
		b.WriteString(a.String() + " ")
	}
	for _, rec := range r.records {
		b.WriteString(rec.Message + " ")
		rec.Attrs(func(a slog.Attr) bool {
			b.WriteString(a.String() + " ")
			return true
		})
	}
	return b.String()
}

func TestEveryDestinationGetsTheRedactedRecord(t *testing.T) {
	var stdout bytes.Buffer
	shipped := &recorder{shipment: &shipment{}}
	// With hands the fields to the destinations' WithAttrs, which must be redacted too.
	log := New(&stdout, "info", "test", shipped).With("customer", "ada.lovelace@example.com")
	log.Info("charging tok_visa_debit_x", slog.Group("payment", slog.String("token", "pm_1NqAbcDEFghiJKLmno"),
		slog.String("note", "card "+visa)))

	for _, out := range []string{stdout.String(), shipped.text()} {
		for _, secret := range []string{"ada.lovelace@example.com", "tok_visa_debit_x", "pm_1NqAbcDEFghiJKLmno", visa} {
			if strings.Contains(out, secret) {
				t.Errorf("a destination keeps %q: %s", secret, out)
			}
		}
	}
	if len(shipped.records) != 1 {
		t.Fatalf("the shipping destination got %d records, want 1", len(shipped.records))
	}
}

func TestLinesCarryTheContextsFieldsAndTrace(t *testing.T) {
	var stdout bytes.Buffer
	log := New(&stdout, "info", "api")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	ctx = ContextWith(ctx, slog.String("request_id", "req-1"))
	log.InfoContext(ctx, "http request", "status", 201)

	var line map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"request_id": "req-1", "trace_id": tid.String(), "span_id": sid.String(), "process": "api", "status": 201.0}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, line[k], v, stdout.String())
		}
	}
}

func TestTemporalFieldsAreNamedAsCartflowsAndLevelsFilter(t *testing.T) {
	var stdout bytes.Buffer
	log := New(&stdout, "warn", "worker")
	log.Info("dropped: below the level")
	log.Warn("activity error", "WorkflowID", "checkout-k1", "RunID", "r1", "ActivityType", "Charge", "Attempt", 3)

	if strings.Contains(stdout.String(), "dropped") {
		t.Fatalf("an info line passed a warn logger: %s", stdout.String())
	}
	for _, want := range []string{`"workflow_id":"checkout-k1"`, `"run_id":"r1"`, `"activity":"Charge"`, `"attempt":3`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("line lacks %s: %s", want, stdout.String())
		}
	}
}
