// Package mailpit starts a real Mailpit for a test and reads the messages it received
// through Mailpit's HTTP API, so that email tests assert on what an SMTP server actually got.
package mailpit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/dev/tb"
)

// Server is a Mailpit process owned by one test.
type Server struct {
	mp *stack.Mailpit
}

// Start starts Mailpit on free 127.0.0.1 ports and stops it when the test ends.
func Start(t tb.T) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mp, err := stack.StartMailpit(ctx, stack.MailpitOptions{})
	if err != nil {
		t.Fatalf("start Mailpit: %v", err)
	}
	t.Cleanup(func() {
		if err := mp.Stop(); err != nil {
			t.Errorf("stop Mailpit: %v", err)
		}
	})
	return &Server{mp: mp}
}

// SMTPAddr is the SMTP server's host:port.
func (s *Server) SMTPAddr() string { return s.mp.SMTPAddr() }

// Address is a mailbox as Mailpit reports it.
type Address struct {
	Name    string
	Address string
}

// Summary is a message in Mailpit's list.
type Summary struct {
	ID        string
	MessageID string
	From      Address
	To        []Address
	Subject   string
}

// Message is one message with its decoded bodies.
type Message struct {
	ID        string
	MessageID string
	From      Address
	To        []Address
	Subject   string
	Text      string
	HTML      string
}

// Messages lists every message received, newest first.
func (s *Server) Messages(t tb.T) []Summary {
	t.Helper()
	var list struct {
		Total    int
		Messages []Summary
	}
	s.get(t, "/api/v1/messages?limit=1000", &list)
	if list.Total != len(list.Messages) {
		t.Fatalf("Mailpit holds %d messages but listed %d", list.Total, len(list.Messages))
	}
	return list.Messages
}

// Message returns the message whose Mailpit ID is id.
func (s *Server) Message(t tb.T, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+url.PathEscape(id), &m)
	return m
}

// WaitForMessages returns the list once it holds at least n messages, failing the test after
// a few seconds. Callers assert on the exact count, so a duplicate still shows.
func (s *Server) WaitForMessages(t tb.T, n int) []Summary {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list := s.Messages(t)
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("Mailpit received %d messages, want at least %d", len(list), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) get(t tb.T, path string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.mp.UIURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Mailpit API %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("Mailpit API %s: decode: %v", path, err)
	}
}
