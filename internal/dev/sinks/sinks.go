// Package sinks stands in, in this process, for the services cartflow's worker and BFF report
// to: Mixpanel's ingestion API, Sentry's envelope endpoint, and an OTLP/HTTP collector that takes
// both the traces and Coralogix's log shipping. The e2e tests read what arrived; the bench only
// counts it, so that a load run keeps every feature on without spending its CPU on decoding.
package sinks

import (
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cartflow/cartflow/internal/analytics"
)

// Options configures Start.
type Options struct {
	// Name labels the stack that reports here: the Mixpanel token is Name+"-project-token", the
	// Sentry environment Name, the Coralogix application "cartflow-"+Name.
	Name string
	// CountOnly counts what arrives without decoding or keeping it.
	CountOnly bool
}

// Event is one Mixpanel event.
type Event struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

// Log is one exported log record with its resource's and its own attributes flattened.
type Log struct {
	Authorization string
	Resource      map[string]string
	Body          string
	Attrs         map[string]string
	TraceID       string
}

// Span is one exported span.
type Span struct {
	Service, Name, TraceID, SpanID, ParentSpanID string
}

// Counts is how many batches (requests) of each kind arrived.
type Counts struct {
	MixpanelBatches int64 `json:"mixpanel_batches"`
	SentryEnvelopes int64 `json:"sentry_envelopes"`
	TraceBatches    int64 `json:"trace_batches"`
	LogBatches      int64 `json:"log_batches"`
}

// Server is the local sink, served on a free 127.0.0.1 port.
type Server struct {
	// URL is the base URL: Mixpanel's API, the OTLP endpoint and, with a key, Sentry's DSN host.
	URL  string
	opts Options
	srv  *http.Server

	mu        sync.Mutex
	counts    Counts
	events    []Event
	envelopes []string
	logs      []Log
	spans     []Span
}

// Start serves a sink on a free loopback port until Close.
func Start(opts Options) (*Server, error) {
	if opts.Name == "" {
		return nil, errors.New("sinks: Options.Name is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sinks: listen: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opts: opts}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving.
func (s *Server) Close() { _ = s.srv.Close() }

// CoralogixKey is the private key the stack ships its logs with.
func (s *Server) CoralogixKey() string { return s.opts.Name + "-coralogix-key" }

// ApplicationName is the Coralogix application the stack's logs are filed under.
func (s *Server) ApplicationName() string { return "cartflow-" + s.opts.Name }

// Env points a stack's Mixpanel and Sentry at the sink, and its trace export and Coralogix log
// shipping too, with short flush and batch delays so that what is sent arrives soon.
func (s *Server) Env() []string {
	dsn := "http://public@" + strings.TrimPrefix(s.URL, "http://") + "/1"
	return []string{"MIXPANEL_TOKEN=" + s.opts.Name + "-project-token", "MIXPANEL_API_URL=" + s.URL, "MIXPANEL_FLUSH_INTERVAL=200ms",
		"SENTRY_DSN=" + dsn, "SENTRY_ENVIRONMENT=" + s.opts.Name,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + s.URL, "OTEL_BSP_SCHEDULE_DELAY=200", "OTEL_BLRP_SCHEDULE_DELAY=200",
		"CORALOGIX_ENDPOINT=" + s.URL, "CORALOGIX_PRIVATE_KEY=" + s.CoralogixKey(), "CORALOGIX_APPLICATION_NAME=" + s.ApplicationName()}
}

// ServeHTTP answers as each service does: Mixpanel's /track, Sentry's envelope endpoint, and
// OTLP/HTTP's /v1/traces and /v1/logs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/track":
		s.track(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/1/envelope"):
		s.envelope(w, r)
	case r.URL.Path == "/v1/traces" || r.URL.Path == "/v1/logs":
		s.otlp(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) track(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var batch []Event
	if !s.opts.CountOnly {
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, `{"status":0,"error":"bad batch"}`, http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	s.counts.MixpanelBatches++
	s.events = append(s.events, batch...)
	s.mu.Unlock()
	_, _ = io.WriteString(w, `{"status":1,"error":null}`)
}

func (s *Server) envelope(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.counts.SentryEnvelopes++
	if !s.opts.CountOnly {
		s.envelopes = append(s.envelopes, string(body))
	}
	s.mu.Unlock()
	_, _ = io.WriteString(w, `{"id":"`+s.opts.Name+`"}`)
}

func (s *Server) otlp(w http.ResponseWriter, r *http.Request) {
	var res proto.Message
	if r.URL.Path == "/v1/logs" {
		res = &collogs.ExportLogsServiceResponse{}
	} else {
		res = &coltrace.ExportTraceServiceResponse{}
	}
	if s.opts.CountOnly {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		if r.URL.Path == "/v1/logs" {
			s.counts.LogBatches++
		} else {
			s.counts.TraceBatches++
		}
		s.mu.Unlock()
	} else if err := s.decodeOTLP(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, _ := proto.Marshal(res)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *Server) decodeOTLP(r *http.Request) error {
	body, err := otlpBody(r)
	if err != nil {
		return err
	}
	if r.URL.Path == "/v1/logs" {
		var req collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			return err
		}
		s.addLogs(r.Header.Get("Authorization"), &req)
		return nil
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return err
	}
	s.addSpans(&req)
	return nil
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

func (s *Server) addLogs(auth string, req *collogs.ExportLogsServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.LogBatches++
	for _, rl := range req.GetResourceLogs() {
		res := flatten(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				s.logs = append(s.logs, Log{Authorization: auth, Resource: res, Body: anyString(lr.GetBody()),
					Attrs: flatten(lr.GetAttributes()), TraceID: hex.EncodeToString(lr.GetTraceId())})
			}
		}
	}
}

func (s *Server) addSpans(req *coltrace.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.TraceBatches++
	for _, rs := range req.GetResourceSpans() {
		service := flatten(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s.spans = append(s.spans, Span{Service: service, Name: sp.GetName(), TraceID: hex.EncodeToString(sp.GetTraceId()),
					SpanID: hex.EncodeToString(sp.GetSpanId()), ParentSpanID: hex.EncodeToString(sp.GetParentSpanId())})
			}
		}
	}
}

// Counts returns how many batches of each kind arrived so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Events returns every Mixpanel event received, in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// EventsFor lists, in arrival order, the funnel events of the customer with this email: every
// event carries the email's hash as $device_id, and never the email.
func (s *Server) EventsFor(email string) []string {
	var names []string
	for _, e := range s.Events() {
		if e.Properties["$device_id"] == analytics.EmailID(email) {
			names = append(names, e.Event)
		}
	}
	return names
}

// Envelopes returns every Sentry envelope received, in arrival order.
func (s *Server) Envelopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.envelopes...)
}

// EnvelopeMentioning returns the first Sentry envelope that contains str, or "".
func (s *Server) EnvelopeMentioning(str string) string {
	for _, env := range s.Envelopes() {
		if strings.Contains(env, str) {
			return env
		}
	}
	return ""
}

// SentryEventsMentioning counts the Sentry envelopes that contain str.
func (s *Server) SentryEventsMentioning(str string) int {
	n := 0
	for _, env := range s.Envelopes() {
		if strings.Contains(env, str) {
			n++
		}
	}
	return n
}

// Logs returns every shipped log record, in arrival order.
func (s *Server) Logs() []Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Log(nil), s.logs...)
}

// LogsWhere returns the shipped records whose attribute key has value.
func (s *Server) LogsWhere(key, value string) []Log {
	var out []Log
	for _, l := range s.Logs() {
		if l.Attrs[key] == value {
			out = append(out, l)
		}
	}
	return out
}

// Trace returns the spans of one trace.
func (s *Server) Trace(traceID string) []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Span
	for _, sp := range s.spans {
		if sp.TraceID == traceID {
			out = append(out, sp)
		}
	}
	return out
}
