package telemetry

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Gin returns middleware that records one server span per request, named by method and route
// (never by the raw path, which holds ids), continuing the caller's trace when it sends a W3C
// traceparent. The handlers' context carries the span, so a workflow started from it joins the
// trace. Probes and scrapes (untraced) are not traced: they would bury the checkouts. With
// tracing off (or no Telemetry) the middleware only passes the request on.
func (t *Telemetry) Gin(untraced ...string) gin.HandlerFunc {
	if t == nil || t.traces == nil {
		return func(c *gin.Context) { c.Next() }
	}
	tracer := t.traces.Tracer(instrumentationName + "/http")
	return func(c *gin.Context) {
		route := c.FullPath()
		if slices.Contains(untraced, route) {
			c.Next()
			return
		}
		if route == "" {
			route = "unmatched"
		}
		ctx := propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, c.Request.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(c.Request.Method), semconv.HTTPRoute(route)))
		defer span.End()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}
