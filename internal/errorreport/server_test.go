package errorreport

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// sentryServer stands in for Sentry: a local HTTP endpoint that records every envelope the
// SDK posts to /api/<project>/envelope/, as the tests' DSN points at it.
type sentryServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	bodies   []string
	events   []receivedEvent
}

// receivedEvent is the part of a Sentry event the tests look at.
type receivedEvent struct {
	Message string            `json:"message"`
	Level   string            `json:"level"`
	Release string            `json:"release"`
	Env     string            `json:"environment"`
	Tags    map[string]string `json:"tags"`
	User    map[string]any    `json:"user"`
	Request *struct {
		URL         string            `json:"url"`
		Data        string            `json:"data"`
		QueryString string            `json:"query_string"`
		Cookies     string            `json:"cookies"`
		Headers     map[string]string `json:"headers"`
	} `json:"request"`
	Exception []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"exception"`
}

func newSentryServer(t *testing.T) *sentryServer {
	t.Helper()
	s := &sentryServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

// DSN is a Sentry DSN for project 1 on the local server.
func (s *sentryServer) DSN() string {
	return "http://public@" + strings.TrimPrefix(s.srv.URL, "http://") + "/1"
}

func (s *sentryServer) handle(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.bodies = append(s.bodies, string(b))
	if r.URL.Path == "/api/1/envelope/" {
		s.events = append(s.events, eventsInEnvelope(b)...)
	}
	w.WriteHeader(http.StatusOK)
}

// eventsInEnvelope decodes the error events of an envelope: a header line, then pairs of an item
// header line and a payload line. Transactions and other items are skipped.
func eventsInEnvelope(b []byte) []receivedEvent {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	var out []receivedEvent
	if !sc.Scan() { // envelope header
		return nil
	}
	for sc.Scan() {
		var item struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(sc.Bytes(), &item) != nil || !sc.Scan() {
			break
		}
		if item.Type != "event" {
			continue
		}
		var e receivedEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// Events returns the error events received so far.
func (s *sentryServer) Events() []receivedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedEvent(nil), s.events...)
}

// Requests returns how many requests of any kind reached the server, and their bodies.
func (s *sentryServer) Requests() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, strings.Join(s.bodies, "\n")
}

// wantNoRequests fails unless no request of any kind reached the server; what says when
// (for a decline, without a DSN...).
func (s *sentryServer) wantNoRequests(t *testing.T, what string) {
	t.Helper()
	if n, body := s.Requests(); n != 0 {
		t.Fatalf("%d requests to Sentry %s: %s", n, what, body)
	}
}

// oneEvent fails unless exactly one error event reached the server so far, and returns it.
func (s *sentryServer) oneEvent(t *testing.T) receivedEvent {
	t.Helper()
	events := s.Events()
	if len(events) != 1 {
		t.Fatalf("want 1 event, got %d", len(events))
	}
	return events[0]
}

// newReporter builds a Reporter that sends to s, and flushes it when the test ends.
func newReporter(t *testing.T, s *sentryServer, expected ...string) *Reporter {
	t.Helper()
	r, err := New(Config{DSN: s.DSN(), Release: "cartflow@test", Environment: "test", ExpectedErrorTypes: expected})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Enabled() {
		t.Fatal("reporter with a DSN is not enabled")
	}
	return r
}

// flush waits until every queued event reached the server.
func flush(t *testing.T, r *Reporter) {
	t.Helper()
	if !r.Flush(5 * time.Second) {
		t.Fatal("events not delivered within 5s")
	}
}
