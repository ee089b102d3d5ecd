package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/logging"
)

// endpoint records the OTLP requests it receives, by path, with their Authorization header.
type endpoint struct {
	mu   sync.Mutex
	auth map[string][]string
}

func newEndpoint(t *testing.T) (*endpoint, string) {
	e := &endpoint{auth: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		e.mu.Lock()
		e.auth[r.URL.Path] = append(e.auth[r.URL.Path], r.Header.Get("Authorization"))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return e, srv.URL
}

func (e *endpoint) requests(path string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.auth[path]
}

// exercise traces a request through the Gin middleware and logs a line inside it, then shuts
// the telemetry down, which flushes whatever it buffered.
func exercise(t *testing.T, tel *Telemetry) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(tel.Gin())
	log := logging.New(io.Discard, "info", "api", tel.LogHandlers()...)
	r.GET("/x", func(c *gin.Context) {
		log.InfoContext(c.Request.Context(), "handled")
		c.Status(http.StatusNoContent)
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", bytes.NewReader(nil)))
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestUnconfiguredTelemetrySendsNothing(t *testing.T) {
	e, url := newEndpoint(t)
	// Even the exporters' own standard variable must not turn export on: only cartflow's config does.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	tel, err := Setup(context.Background(), Config{Process: "api", TraceSampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if h := tel.LogHandlers(); len(h) != 0 {
		t.Fatalf("%d log handlers without Coralogix settings", len(h))
	}
	if i, _ := tel.TemporalInterceptors(); len(i) != 0 {
		t.Fatalf("%d Temporal interceptors without tracing", len(i))
	}
	exercise(t, tel)
	if n := len(e.requests("/v1/traces")) + len(e.requests("/v1/logs")); n != 0 {
		t.Fatalf("%d OTLP requests from unconfigured telemetry", n)
	}
}

func TestConfiguredTelemetryExportsTracesAndShipsLogsWithTheKey(t *testing.T) {
	e, url := newEndpoint(t)
	tel, err := Setup(context.Background(), Config{Process: "api", TracesEndpoint: url, TraceSampleRatio: 1,
		Coralogix: Coralogix{Endpoint: url, PrivateKey: "cx-test-key", ApplicationName: "cartflow"}})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tel.TemporalInterceptors(); len(i) != 1 {
		t.Fatalf("%d Temporal interceptors with tracing on, want 1", len(i))
	}
	exercise(t, tel)
	if n := len(e.requests("/v1/traces")); n == 0 {
		t.Fatal("no trace export")
	}
	logs := e.requests("/v1/logs")
	if len(logs) == 0 {
		t.Fatal("no log shipment")
	}
	for _, auth := range logs {
		if auth != "Bearer cx-test-key" {
			t.Fatalf("log shipment authorized with %q", auth)
		}
	}
}

func TestCoralogixNeedsItsKey(t *testing.T) {
	if _, err := Setup(context.Background(), Config{Process: "worker", Coralogix: Coralogix{Endpoint: "https://ingress.example"}}); err == nil {
		t.Fatal("Coralogix without a private key was accepted")
	}
}
