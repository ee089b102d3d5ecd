// Package telemetry sets up OpenTelemetry for a cartflow process: traces that run from the BFF
// through Temporal into the activities, exported over OTLP/HTTP when an endpoint is configured,
// and a copy of every log record shipped to Coralogix over OTLP/HTTP when its settings are
// present. Whatever is not configured is off and costs nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// instrumentationName names cartflow's tracers and loggers in exported data.
const instrumentationName = "github.com/cartflow/cartflow"

// Config says where a process's telemetry goes.
type Config struct {
	// Process is "api" or "worker"; the service is named cartflow-<Process>.
	Process     string
	Release     string
	Environment string
	// TracesEndpoint is an OTLP/HTTP base URL (http://collector:4318); empty turns tracing off.
	TracesEndpoint string
	// TraceSampleRatio is the share of new traces recorded; a continued trace follows its caller.
	TraceSampleRatio float64
	Coralogix        Coralogix
}

// Coralogix says where and as what logs are shipped to Coralogix.
type Coralogix struct {
	// Endpoint is Coralogix's OTLP/HTTP ingress base URL (https://ingress.eu2.coralogix.com).
	Endpoint string
	// PrivateKey is the Send-Your-Data API key, sent as a bearer token; it is never logged.
	PrivateKey      string
	ApplicationName string
	// SubsystemName defaults to the process name.
	SubsystemName string
}

// Enabled reports whether logs are shipped to Coralogix.
func (c Coralogix) Enabled() bool { return c.Endpoint != "" }

// Telemetry holds a process's providers; a nil provider is a signal that is off.
type Telemetry struct {
	traces *sdktrace.TracerProvider
	logs   *sdklog.LoggerProvider
}

// propagator carries the trace in W3C traceparent and baggage headers, over HTTP and in
// Temporal's workflow and activity headers alike.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Setup builds the providers cfg asks for. Nothing is sent until something is traced or logged,
// so an unreachable collector never stops a process from starting.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{}
	service := []attribute.KeyValue{
		semconv.ServiceName("cartflow-" + cfg.Process), semconv.DeploymentEnvironmentName(cfg.Environment),
	}
	if cfg.Release != "" {
		service = append(service, semconv.ServiceVersion(cfg.Release))
	}
	if cfg.TracesEndpoint != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.TracesEndpoint, "/")+"/v1/traces"))
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		t.traces = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewSchemaless(service...)),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.TraceSampleRatio))),
		)
		otel.SetTracerProvider(t.traces)
		otel.SetTextMapPropagator(propagator)
	}
	if cx := cfg.Coralogix; cx.Enabled() {
		if cx.PrivateKey == "" {
			return nil, errors.New("CORALOGIX_ENDPOINT is set without CORALOGIX_PRIVATE_KEY")
		}
		subsystem := cx.SubsystemName
		if subsystem == "" {
			subsystem = cfg.Process
		}
		exp, err := otlploghttp.New(ctx,
			otlploghttp.WithEndpointURL(strings.TrimSuffix(cx.Endpoint, "/")+"/v1/logs"),
			otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + cx.PrivateKey}),
			otlploghttp.WithCompression(otlploghttp.GzipCompression))
		if err != nil {
			return nil, fmt.Errorf("OTLP log exporter: %w", err)
		}
		// Coralogix files every record under the application and subsystem named in its resource.
		res := resource.NewSchemaless(append(service,
			attribute.String("cx.application.name", cx.ApplicationName), attribute.String("cx.subsystem.name", subsystem))...)
		t.logs = sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)), sdklog.WithResource(res))
	}
	return t, nil
}

// LogHandlers returns the slog handlers that ship records, for logging.New; none when shipping is off.
func (t *Telemetry) LogHandlers() []slog.Handler {
	if t.logs == nil {
		return nil
	}
	return []slog.Handler{otelslog.NewHandler(instrumentationName, otelslog.WithLoggerProvider(t.logs))}
}

// Tracer returns cartflow's tracer; with tracing off it records nothing.
func (t *Telemetry) Tracer() trace.Tracer {
	if t.traces == nil {
		return noop.NewTracerProvider().Tracer(instrumentationName)
	}
	return t.traces.Tracer(instrumentationName)
}

// TemporalInterceptors returns the Temporal client interceptors that trace workflow starts,
// signals, updates, workflows and activities, carrying the trace in Temporal's headers. Set on
// the client, they also apply to every worker built from it. None with tracing off.
func (t *Telemetry) TemporalInterceptors() ([]interceptor.ClientInterceptor, error) {
	if t.traces == nil {
		return nil, nil
	}
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: t.traces.Tracer(instrumentationName + "/temporal"), TextMapPropagator: propagator,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return []interceptor.ClientInterceptor{i}, nil
}

// Shutdown sends what is still buffered and stops the exporters, within ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.traces != nil {
		errs = append(errs, t.traces.Shutdown(ctx))
	}
	if t.logs != nil {
		errs = append(errs, t.logs.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
