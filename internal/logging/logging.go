// Package logging builds the JSON slog loggers every cartflow process writes with.
package logging

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// New returns a JSON logger at the named level ("debug", "info", "warn", "error"; unknown means
// info), tagged with the process name so that shipped logs can be told apart. Each record is
// redacted (Redact) and given the fields its context carries (ContextWith, the trace) before it is
// written to w and handed to every handler in also, such as the OTLP exporter to Coralogix.
func New(w io.Writer, level, process string, also ...slog.Handler) *slog.Logger {
	var out slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	if len(also) > 0 {
		out = slog.NewMultiHandler(append([]slog.Handler{out}, also...)...)
	}
	return slog.New(&handler{level: parseLevel(level), next: out}).With("process", process)
}

func parseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

type contextKey struct{}

// ContextWith returns a copy of ctx carrying attrs, which every record logged with that context
// (InfoContext, LogAttrs…) includes: the BFF puts the request id there once, instead of passing
// it to every log call.
func ContextWith(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(contextKey{}).([]slog.Attr)
	return context.WithValue(ctx, contextKey{}, append(slices.Clip(prev), attrs...))
}

// handler sits in front of every destination, so that all of them (stdout and the shipped copy)
// receive the same redacted records with the same field names.
type handler struct {
	level slog.Level
	next  slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	if attrs, ok := ctx.Value(contextKey{}).([]slog.Attr); ok {
		for _, a := range attrs {
			out.AddAttrs(clean(a))
		}
	}
	// The trace ids join a log line to its trace; the OTLP copy also carries them natively.
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(clean(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	cleaned := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cleaned[i] = clean(a)
	}
	return &handler{level: h.level, next: h.next.WithAttrs(cleaned)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{level: h.level, next: h.next.WithGroup(name)}
}

// temporalKeys renames the fields the Temporal SDK's loggers add to the names cartflow's own
// lines use, so that one query (workflow_id = …) finds a run's lines from both.
var temporalKeys = map[string]string{
	"WorkflowID": "workflow_id", "RunID": "run_id", "WorkflowType": "workflow_type",
	"ActivityType": "activity", "LocalActivityType": "activity", "ActivityID": "activity_id",
	"Attempt": "attempt", "TaskQueue": "task_queue", "Namespace": "namespace", "Error": "error",
	// The tracing interceptor's workflow loggers.
	"TraceID": "trace_id", "SpanID": "span_id",
}

// clean names a field as cartflow does and redacts it, group members included.
func clean(a slog.Attr) slog.Attr {
	if k, ok := temporalKeys[a.Key]; ok {
		a.Key = k
	}
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		members := a.Value.Group()
		cleaned := make([]slog.Attr, len(members))
		for i, m := range members {
			cleaned[i] = clean(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(cleaned...)}
	}
	return redactAttr(a)
}
