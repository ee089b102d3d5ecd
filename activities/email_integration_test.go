//go:build integration

package activities_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/dev/mailpit"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/store"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wantEmailStatus fails unless the emails row of the event key has the status want.
func wantEmailStatus(t *testing.T, pool *pgxpool.Pool, key, want string) {
	t.Helper()
	if s := emailStatus(t, pool, key); s != want {
		t.Fatalf("emails row is %s, want %s", s, want)
	}
}

// wantOneMessage waits for Mailpit's first message, fails unless it received exactly one,
// and returns it.
func wantOneMessage(t *testing.T, mp *mailpit.Server) mailpit.Summary {
	t.Helper()
	list := mp.WaitForMessages(t, 1)
	if len(list) != 1 {
		t.Fatalf("Mailpit received %d messages, want 1", len(list))
	}
	return list[0]
}

// wantNoMessage fails if Mailpit received any message.
func wantNoMessage(t *testing.T, mp *mailpit.Server) {
	t.Helper()
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("Mailpit received %d messages, want none", n)
	}
}

func emailStatus(t *testing.T, pool *pgxpool.Pool, key string) string {
	t.Helper()
	var status string
	err := pool.QueryRow(context.Background(), `SELECT status FROM emails WHERE event_key = $1`, key).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "(none)"
	}
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func closedSMTPAddr(t *testing.T) string {
	t.Helper()
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

var receiptInput = activities.EmailInput{
	EventKey: "receipt/order/ord-1", To: "Ada Lovelace <ada@example.com>",
	Receipt: &activities.ReceiptEmail{Name: "Ada Lovelace", OrderID: "ord-1", Description: "Classic T-shirt", Amount: 6200, Currency: "usd"},
}

func TestSendEmail(t *testing.T) {
	t.Run("twice with one key delivers one message", func(t *testing.T) {
		t.Parallel()
		pool, mp := pg.NewDB(t), mailpit.Start(t)
		var logs lockedBuffer
		acts := &activities.Activities{Store: store.New(pool), Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom}),
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))}

		res, err := runSendEmail(t, acts, receiptInput)
		if err != nil || res != (activities.EmailResult{Sent: true}) {
			t.Fatalf("first SendEmail = %+v, %v", res, err)
		}
		res, err = runSendEmail(t, acts, receiptInput)
		if err != nil || res != (activities.EmailResult{AlreadyHandled: true}) {
			t.Fatalf("second SendEmail = %+v, %v", res, err)
		}
		got := mp.Message(t, wantOneMessage(t, mp).ID)
		if got.Subject != "Your cartflow receipt (62.00 USD)" || len(got.To) != 1 || got.To[0].Address != "ada@example.com" ||
			!strings.Contains(got.Text, "ord-1") || !strings.Contains(got.HTML, "62.00 USD") {
			t.Fatalf("received %+v", got)
		}
		wantEmailStatus(t, pool, receiptInput.EventKey, store.EmailSent)
		e, err := acts.Store.EmailByKey(context.Background(), receiptInput.EventKey)
		if err != nil || e.Kind != mailer.KindReceipt || e.Recipient != receiptInput.To || e.Subject != got.Subject || e.SentAt == nil {
			t.Fatalf("emails row %+v, %v", e, err)
		}

		// Another event for the same customer is another email.
		other := receiptInput
		other.EventKey, other.Receipt = "receipt/order/ord-2", &activities.ReceiptEmail{OrderID: "ord-2", Description: "Mug", Amount: 1200, Currency: "usd"}
		if res, err := runSendEmail(t, acts, other); err != nil || !res.Sent {
			t.Fatalf("SendEmail for another event = %+v, %v", res, err)
		}
		if n := len(mp.WaitForMessages(t, 2)); n != 2 {
			t.Fatalf("Mailpit received %d messages, want 2", n)
		}

		out := logs.String()
		if strings.Contains(out, "ada@example.com") || !strings.Contains(out, receiptInput.EventKey) || !strings.Contains(out, "a***@example.com") {
			t.Fatalf("logs must name the event and mask the recipient:\n%s", out)
		}
	})

	t.Run("racing attempts deliver one message", func(t *testing.T) {
		t.Parallel()
		pool, mp := pg.NewDB(t), mailpit.Start(t)
		acts := &activities.Activities{Store: store.New(pool), Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})}
		const racers = 8
		var sent, handled atomic.Int32
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				res, err := acts.SendEmail(context.Background(), receiptInput)
				if err != nil {
					t.Error(err)
				}
				if res.Sent {
					sent.Add(1)
				}
				if res.AlreadyHandled {
					handled.Add(1)
				}
			})
		}
		wg.Wait()
		if sent.Load() != 1 || handled.Load() != racers-1 {
			t.Fatalf("%d sent and %d already handled, want 1 and %d", sent.Load(), handled.Load(), racers-1)
		}
		// Give a stray duplicate time to arrive before counting.
		time.Sleep(200 * time.Millisecond)
		wantOneMessage(t, mp)
		wantEmailStatus(t, pool, receiptInput.EventKey, store.EmailSent)
	})

	t.Run("not sent is released and retried", func(t *testing.T) {
		t.Parallel()
		pool, mp := pg.NewDB(t), mailpit.Start(t)
		st := store.New(pool)
		down := &activities.Activities{Store: st, Mailer: mailer.New(mailer.Config{Addr: closedSMTPAddr(t), From: testFrom, Timeout: 5 * time.Second})}

		_, err := runSendEmail(t, down, receiptInput)
		var appErr *temporal.ApplicationError
		if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) {
			t.Fatalf("SendEmail with the SMTP port closed = %v, want a retryable error", err)
		}
		if strings.Contains(err.Error(), "ada@example.com") {
			t.Fatalf("the error quotes the recipient: %v", err)
		}
		wantEmailStatus(t, pool, receiptInput.EventKey, store.EmailPending) // after a certain failure
		wantNoMessage(t, mp)

		// The retry, now that the server answers, sends it once.
		up := &activities.Activities{Store: st, Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})}
		if res, err := runSendEmail(t, up, receiptInput); err != nil || !res.Sent {
			t.Fatalf("retried SendEmail = %+v, %v", res, err)
		}
		if res, err := runSendEmail(t, up, receiptInput); err != nil || !res.AlreadyHandled {
			t.Fatalf("third SendEmail = %+v, %v", res, err)
		}
		wantOneMessage(t, mp)
		wantEmailStatus(t, pool, receiptInput.EventKey, store.EmailSent)
	})

	t.Run("unknown outcome is never sent again", func(t *testing.T) {
		t.Parallel()
		pool, mp := pg.NewDB(t), mailpit.Start(t)
		st := store.New(pool)
		flaky := startHangUpSMTP(t)
		acts := &activities.Activities{Store: st, Mailer: mailer.New(mailer.Config{Addr: flaky.addr, From: testFrom, Timeout: 5 * time.Second})}

		res, err := runSendEmail(t, acts, receiptInput)
		if err != nil || res != (activities.EmailResult{}) {
			t.Fatalf("SendEmail with an unknown outcome = %+v, %v; want success with nothing sent", res, err)
		}
		if flaky.bodies.Load() != 1 {
			t.Fatalf("the server received %d bodies, want 1", flaky.bodies.Load())
		}
		wantEmailStatus(t, pool, receiptInput.EventKey, store.EmailFailed)
		// Even a healthy server never gets it: it may already have been delivered.
		healthy := &activities.Activities{Store: st, Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})}
		if res, err := runSendEmail(t, healthy, receiptInput); err != nil || !res.AlreadyHandled {
			t.Fatalf("SendEmail after an unknown outcome = %+v, %v", res, err)
		}
		wantNoMessage(t, mp)
	})
}

// hangUpSMTP is an SMTP server that reads a whole message and hangs up instead of answering
// the final ".", so that the client cannot know whether it was queued.
type hangUpSMTP struct {
	addr   string
	bodies atomic.Int32
}

func startHangUpSMTP(t *testing.T) *hangUpSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &hangUpSMTP{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *hangUpSMTP) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	fmt.Fprint(conn, "220 flaky ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(strings.ToUpper(line)) != "DATA" {
			fmt.Fprint(conn, "250 ok\r\n")
			continue
		}
		fmt.Fprint(conn, "354 go ahead\r\n")
		for {
			if line, err = r.ReadString('\n'); err != nil || line == ".\r\n" {
				break
			}
		}
		s.bodies.Add(1)
		return
	}
}
