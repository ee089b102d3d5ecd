package mailer_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/mailer"
)

func TestSendIsNotSentWhenPortClosed(t *testing.T) {
	t.Parallel()
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	m := mailer.New(mailer.Config{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), From: "shop@example.com", Timeout: 5 * time.Second})
	err = m.Send(context.Background(), mailer.Message{To: "ada@example.com", Subject: "hi", Text: "hi"})
	if err == nil || !mailer.IsNotSent(err) || errors.Is(err, mailer.ErrOutcomeUnknown) || errors.Is(err, mailer.ErrInvalidMessage) {
		t.Fatalf("got %v, want a not-sent dial error", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Fatalf("got %v, want it to wrap the dial error", err)
	}
}

// fakeSMTP is a scripted SMTP server on 127.0.0.1 for the failures Mailpit cannot be made to
// produce on demand: a refused recipient, a connection lost at the end of DATA, a server that
// stops answering.
type fakeSMTP struct {
	addr     string
	conns    atomic.Int32
	bodyEnds atomic.Int32 // final "." lines received
}

// fakeScript says how the fake answers. An empty reply means "hang up without answering"; a
// reply of "silence" means "stop answering but keep the connection open".
type fakeScript struct {
	ehlo, mail, rcpt, dataEnd string
}

var okScript = fakeScript{ehlo: "250 fake", mail: "250 ok", rcpt: "250 ok", dataEnd: "250 queued"}

func startFakeSMTP(t *testing.T, s fakeScript) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeSMTP{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(t, conn, s)
		}
	}()
	return f
}

func (f *fakeSMTP) serve(t *testing.T, conn net.Conn, s fakeScript) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	// reply answers; it reports whether the session goes on.
	reply := func(line string) bool {
		switch line {
		case "":
			return false
		case "silence":
			_, _ = r.ReadString(0) // until the client gives up and closes
			return false
		}
		_, err := conn.Write([]byte(line + "\r\n"))
		return err == nil
	}
	if !reply("220 fake ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		var ok bool
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			ok = reply(s.ehlo)
		case strings.HasPrefix(cmd, "MAIL"):
			ok = reply(s.mail)
		case strings.HasPrefix(cmd, "RCPT"):
			ok = reply(s.rcpt)
		case cmd == "DATA":
			if ok = reply("354 go ahead"); !ok {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			f.bodyEnds.Add(1)
			ok = reply(s.dataEnd)
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			ok = reply("250 ok")
		}
		if !ok {
			return
		}
	}
}

func TestSendClassifiesFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     func(fakeScript) fakeScript
		wantBodies int32
		notSent    bool
	}{
		{"accepted", func(s fakeScript) fakeScript { return s }, 1, false},
		{"sender refused", func(s fakeScript) fakeScript { s.mail = "553 5.7.1 sender not allowed"; return s }, 0, true},
		{"recipient refused", func(s fakeScript) fakeScript { s.rcpt = "550 5.1.1 no such user"; return s }, 0, true},
		{"hang-up at EHLO", func(s fakeScript) fakeScript { s.ehlo = ""; return s }, 0, true},
		{"hang-up at RCPT", func(s fakeScript) fakeScript { s.rcpt = ""; return s }, 0, true},
		// The whole body reached the server; whether it queued it is unknown.
		{"hang-up after the body", func(s fakeScript) fakeScript { s.dataEnd = ""; return s }, 1, false},
		{"refused after the body", func(s fakeScript) fakeScript { s.dataEnd = "451 4.3.0 try later"; return s }, 1, false},
		{"silent after the body", func(s fakeScript) fakeScript { s.dataEnd = "silence"; return s }, 1, false},
		{"silent at EHLO", func(s fakeScript) fakeScript { s.ehlo = "silence"; return s }, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startFakeSMTP(t, tc.script(okScript))
			m := mailer.New(mailer.Config{Addr: srv.addr, From: "shop@example.com", Timeout: time.Second})
			start := time.Now()
			err := m.Send(context.Background(), mailer.Message{To: "ada@example.com", Subject: "hi", Text: "hello"})
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Send took %v with a 1s timeout", took)
			}
			if n := srv.bodyEnds.Load(); n != tc.wantBodies {
				t.Fatalf("server received %d complete bodies, want %d", n, tc.wantBodies)
			}
			switch {
			case tc.name == "accepted":
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			case tc.notSent:
				if !mailer.IsNotSent(err) || errors.Is(err, mailer.ErrOutcomeUnknown) {
					t.Fatalf("got %v, want a not-sent error", err)
				}
			default:
				if err == nil || mailer.IsNotSent(err) || !errors.Is(err, mailer.ErrOutcomeUnknown) {
					t.Fatalf("got %v, want an unknown-outcome error", err)
				}
			}
		})
	}
}

// A server that stops answering holds Send only until its context ends, whether the context
// reaches its deadline or is canceled; the mailer's own (long) timeout plays no part.
func TestSendStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	srv := startFakeSMTP(t, fakeScript{ehlo: "silence"})
	m := mailer.New(mailer.Config{Addr: srv.addr, From: "shop@example.com", Timeout: time.Minute})
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			err := m.Send(ctx, mailer.Message{To: "ada@example.com", Subject: "hi", Text: "hello"})
			if took := time.Since(start); !mailer.IsNotSent(err) || took > 5*time.Second {
				t.Fatalf("got %v after %v, want a not-sent error soon after the context ended", err, took)
			}
		})
	}
}

func TestSendRefusesInvalidMessagesWithoutConnecting(t *testing.T) {
	t.Parallel()
	srv := startFakeSMTP(t, okScript)
	tests := map[string]struct {
		cfg mailer.Config
		msg mailer.Message
	}{
		"bad recipient":         {mailer.Config{Addr: srv.addr, From: "shop@example.com"}, mailer.Message{To: "not an address", Subject: "x", Text: "x"}},
		"empty recipient":       {mailer.Config{Addr: srv.addr, From: "shop@example.com"}, mailer.Message{Subject: "x", Text: "x"}},
		"bad sender":            {mailer.Config{Addr: srv.addr, From: ""}, mailer.Message{To: "ada@example.com", Subject: "x", Text: "x"}},
		"server without port":   {mailer.Config{Addr: "127.0.0.1", From: "shop@example.com"}, mailer.Message{To: "ada@example.com", Subject: "x", Text: "x"}},
		"line break in subject": {mailer.Config{Addr: srv.addr, From: "shop@example.com"}, mailer.Message{To: "ada@example.com", Subject: "x\r\nBcc: e@example.com", Text: "x"}},
	}
	for name, tc := range tests {
		err := mailer.New(tc.cfg).Send(context.Background(), tc.msg)
		if !errors.Is(err, mailer.ErrInvalidMessage) || !mailer.IsNotSent(err) {
			t.Errorf("%s: got %v, want ErrInvalidMessage", name, err)
		}
		if strings.Contains(err.Error(), "not an address") {
			t.Errorf("%s: the error quotes the recipient: %v", name, err)
		}
	}
	if n := srv.conns.Load(); n != 0 {
		t.Fatalf("%d connections to the server, want none", n)
	}
}
