//go:build integration

package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/dev/mailpit"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/store"
)

// outboxLen counts the messages not yet delivered.
func outboxLen(t *testing.T, s *store.Store) int64 {
	t.Helper()
	n, err := s.OutboxLen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// receiptFor is the receipt CompleteOrder queues for o.
func receiptFor(o store.Order) *activities.EmailInput {
	return &activities.EmailInput{EventKey: "receipt/order/" + o.ID, To: o.Email,
		Receipt: &activities.ReceiptEmail{Name: "Ada", OrderID: o.ID, Description: "your order", Amount: o.TotalAmount, Currency: o.Currency}}
}

func TestCompleteOrderQueuesItsReceiptWithTheCompletion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, mp := pg.NewDB(t), mailpit.Start(t)
	s := store.New(pool)
	acts := &activities.Activities{Store: s, Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})}
	relay := activities.NewOutboxRelay(acts)
	u, err := s.RegisterUser(ctx, "outbox@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}

	// An order that cannot complete (its charge is still open) queues nothing: the message
	// belongs to the completion's transaction.
	charging := order(t, s, "charging", nil)
	err = acts.CompleteOrder(ctx, activities.CompleteOrderInput{OrderID: charging.ID, UserID: u.ID, Receipt: receiptFor(charging)})
	if err == nil {
		t.Fatal("CompleteOrder of an order still charging succeeded")
	}
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("%d messages queued by a completion that failed, want 0", n)
	}

	// A completion queues one receipt, however often it runs (a local activity may run again
	// after its transaction committed).
	paid := order(t, s, "paid", &store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_paid"})
	for range 2 {
		if err := acts.CompleteOrder(ctx, activities.CompleteOrderInput{OrderID: paid.ID, UserID: u.ID, Receipt: receiptFor(paid)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := outboxLen(t, s); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}

	// The relay sends it and empties the outbox; a second pass finds nothing to send.
	for range 2 {
		if _, err := relay.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := mp.Message(t, wantOneMessage(t, mp).ID)
	if !strings.Contains(got.Text, paid.ID) || len(got.To) != 1 || got.To[0].Address != paid.Email {
		t.Fatalf("received %+v", got)
	}
	wantEmailStatus(t, pool, "receipt/order/"+paid.ID, store.EmailSent)
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("%d messages left after delivery, want 0", n)
	}
}

func TestOutboxRelayRetriesUntilTheMailerAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, mp := pg.NewDB(t), mailpit.Start(t)
	s := store.New(pool)
	u, err := s.RegisterUser(ctx, "retry@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	paid := order(t, s, "paid", &store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_paid"})
	down := &activities.Activities{Store: s, Mailer: mailer.New(mailer.Config{Addr: closedSMTPAddr(t), From: testFrom, Timeout: 5 * time.Second})}
	downRelay := activities.NewOutboxRelay(down)
	if err := down.CompleteOrder(ctx, activities.CompleteOrderInput{OrderID: paid.ID, UserID: u.ID, Receipt: receiptFor(paid)}); err != nil {
		t.Fatal(err)
	}

	// The SMTP server is down: the message stays, with its attempt and error, and is not due
	// again before its backoff.
	if n, err := downRelay.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v; want 1 message claimed", n, err)
	}
	var attempts int
	var lastError string
	if err := pool.QueryRow(ctx, `SELECT attempts, coalesce(last_error, '') FROM outbox`).Scan(&attempts, &lastError); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || lastError == "" || strings.Contains(lastError, paid.Email) {
		t.Fatalf("after a failed delivery: attempts %d, last error %q (it must not quote the address)", attempts, lastError)
	}
	if n, err := downRelay.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("DeliverDue during the backoff = %d, %v; want nothing due", n, err)
	}
	wantNoMessage(t, mp)

	// Once due and the server answers, it goes out once.
	if _, err := pool.Exec(ctx, `UPDATE outbox SET available_at = now()`); err != nil {
		t.Fatal(err)
	}
	up := activities.NewOutboxRelay(&activities.Activities{Store: s, Mailer: mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: testFrom})})
	if n, err := up.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v; want 1", n, err)
	}
	wantOneMessage(t, mp)
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("%d messages left, want 0", n)
	}
}

func TestOutboxRelayDropsWhatCanNeverBeSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pg.NewDB(t)
	s := store.New(pool)
	// A worker without a mailer cannot send, and retrying cannot change that.
	relay := activities.NewOutboxRelay(&activities.Activities{Store: s})
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (topic, event_key, payload) VALUES
		('email', 'receipt/order/x', '{"EventKey":"receipt/order/x","To":"x@example.com","Receipt":{"order_id":"x"}}'),
		('carrier-pigeon', 'pigeon/1', '{}')`); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.DeliverDue(ctx); err != nil || n != 2 {
		t.Fatalf("DeliverDue = %d, %v; want 2", n, err)
	}
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("%d messages left, want 0: a message that can never be delivered is dropped", n)
	}
}
