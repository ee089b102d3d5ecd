//go:build integration

package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/store"
)

// storedEmail is an emails row as stored.
type storedEmail struct {
	Kind, Recipient, Subject, Status string
	SentAt                           *time.Time
}

func (db *testDB) storedEmail(t *testing.T, key string) storedEmail {
	t.Helper()
	var e storedEmail
	if err := db.pool.QueryRow(context.Background(), `SELECT kind, recipient, subject, status, sent_at FROM emails WHERE event_key = $1`, key).
		Scan(&e.Kind, &e.Recipient, &e.Subject, &e.Status, &e.SentAt); err != nil {
		t.Fatalf("read email %s: %v", key, err)
	}
	return e
}

func claim(t *testing.T, db *testDB, c store.EmailClaim) bool {
	t.Helper()
	ok, err := db.store.ClaimEmail(context.Background(), c)
	if err != nil {
		t.Fatalf("ClaimEmail(%s): %v", c.EventKey, err)
	}
	return ok
}

func TestClaimEmailThenSent(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	c := store.EmailClaim{EventKey: "receipt/order/1", Kind: "receipt", Recipient: "ada@example.com", Subject: "Your receipt"}

	if !claim(t, db, c) {
		t.Fatal("the first claim of a new event was refused")
	}
	if got := db.storedEmail(t, c.EventKey); got != (storedEmail{Kind: "receipt", Recipient: "ada@example.com", Subject: "Your receipt", Status: "sending"}) {
		t.Fatalf("row after the claim %+v", got)
	}
	if claim(t, db, c) {
		t.Fatal("an email being sent was claimed a second time")
	}

	if err := db.store.MarkEmailSent(ctx, c.EventKey); err != nil {
		t.Fatal(err)
	}
	sent := db.storedEmail(t, c.EventKey)
	if sent.Status != "sent" || sent.SentAt == nil {
		t.Fatalf("row after MarkEmailSent %+v", sent)
	}
	if claim(t, db, c) {
		t.Fatal("a sent email was claimed again")
	}
	// A retried activity marks it again; the first sending time stays.
	if err := db.store.MarkEmailSent(ctx, c.EventKey); err != nil {
		t.Fatalf("repeated MarkEmailSent: %v", err)
	}
	if again := db.storedEmail(t, c.EventKey); again.SentAt == nil || !again.SentAt.Equal(*sent.SentAt) {
		t.Fatalf("sent_at moved from %v to %v", sent.SentAt, again.SentAt)
	}
	// A sent email cannot be released or failed.
	wantErrIs(t, db.store.ReleaseEmail(ctx, c.EventKey), store.ErrEmailState)
	wantErrIs(t, db.store.MarkEmailFailed(ctx, c.EventKey), store.ErrEmailState)

	got, err := db.store.EmailByKey(ctx, c.EventKey)
	if err != nil || got.ID == 0 || got.EventKey != c.EventKey || got.Kind != "receipt" || got.Recipient != "ada@example.com" ||
		got.Subject != "Your receipt" || got.Status != store.EmailSent || got.SentAt == nil || !got.SentAt.Equal(*sent.SentAt) ||
		got.CreatedAt.IsZero() {
		t.Fatalf("EmailByKey = %+v, %v", got, err)
	}
	if n := db.count(t, `SELECT count(*) FROM emails`); n != 1 {
		t.Fatalf("%d emails rows, want 1", n)
	}
}

func TestReleasedEmailCanBeClaimedAgainButFailedNever(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	c := store.EmailClaim{EventKey: "trial-ending/sub-1/2025-03-10T00:00:00Z", Kind: "trial_ending", Recipient: "ada@example.com", Subject: "v1"}

	if !claim(t, db, c) {
		t.Fatal("first claim refused")
	}
	if err := db.store.ReleaseEmail(ctx, c.EventKey); err != nil {
		t.Fatal(err)
	}
	if err := db.store.ReleaseEmail(ctx, c.EventKey); err != nil {
		t.Fatalf("repeated ReleaseEmail: %v", err)
	}
	if got := db.storedEmail(t, c.EventKey); got.Status != "pending" || got.SentAt != nil {
		t.Fatalf("row after ReleaseEmail %+v", got)
	}
	// A pending email cannot be marked sent: nobody claimed it to send it.
	wantErrIs(t, db.store.MarkEmailSent(ctx, c.EventKey), store.ErrEmailState)

	// The retry claims it, with what it renders now.
	c.Subject = "v2"
	if !claim(t, db, c) {
		t.Fatal("a released email could not be claimed again")
	}
	if got := db.storedEmail(t, c.EventKey); got.Status != "sending" || got.Subject != "v2" {
		t.Fatalf("row after the second claim %+v", got)
	}

	// An unknown outcome is final.
	if err := db.store.MarkEmailFailed(ctx, c.EventKey); err != nil {
		t.Fatal(err)
	}
	if err := db.store.MarkEmailFailed(ctx, c.EventKey); err != nil {
		t.Fatalf("repeated MarkEmailFailed: %v", err)
	}
	if claim(t, db, c) {
		t.Fatal("a failed email was claimed again")
	}
	wantErrIs(t, db.store.ReleaseEmail(ctx, c.EventKey), store.ErrEmailState)
	wantErrIs(t, db.store.MarkEmailSent(ctx, c.EventKey), store.ErrEmailState)
	if got := db.storedEmail(t, c.EventKey); got.Status != "failed" || got.SentAt != nil {
		t.Fatalf("row after the refused changes %+v", got)
	}
}

func TestEmailUnknownKey(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, err := db.store.EmailByKey(ctx, "no-such-event")
	wantErrIs(t, err, store.ErrNotFound)
	for name, f := range map[string]func(context.Context, string) error{
		"MarkEmailSent": db.store.MarkEmailSent, "ReleaseEmail": db.store.ReleaseEmail, "MarkEmailFailed": db.store.MarkEmailFailed,
	} {
		t.Run(name, func(t *testing.T) { wantErrIs(t, f(ctx, "no-such-event"), store.ErrNotFound) })
	}
	if n := db.count(t, `SELECT count(*) FROM emails`); n != 0 {
		t.Fatalf("%d emails rows, want none", n)
	}
}

// Racing claims of one event, for a new row and for a released one, let exactly one through.
func TestClaimEmailConcurrent(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	const racers = 12
	c := store.EmailClaim{EventKey: "cancellation/sub-9", Kind: "cancellation", Recipient: "ada@example.com", Subject: "Canceled"}

	race := func(t *testing.T, lineUp func() func(int)) int {
		t.Helper()
		var wg sync.WaitGroup
		wins := make(chan bool, racers)
		release := lineUp()
		for i := range racers {
			wg.Go(func() {
				ok, err := db.store.ClaimEmail(context.Background(), c)
				if err != nil {
					t.Errorf("claim #%d: %v", i, err)
				}
				wins <- ok
			})
		}
		release(racers)
		wg.Wait()
		close(wins)
		n := 0
		for ok := range wins {
			if ok {
				n++
			}
		}
		return n
	}

	// Every insert waits at a barrier until all of them have started.
	b := db.insertBarrier(t, "emails")
	if n := race(t, func() func(int) { return b.hold(t) }); n != 1 {
		t.Fatalf("%d of %d racing claims of a new event won, want 1", n, racers)
	}
	if err := db.store.ReleaseEmail(context.Background(), c.EventKey); err != nil {
		t.Fatal(err)
	}
	// A row lock taken by the test holds the updates back until all of them have started.
	tx, err := db.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM emails WHERE event_key = $1 FOR UPDATE`, c.EventKey); err != nil {
		t.Fatal(err)
	}
	n := race(t, func() func(int) {
		return func(n int) {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if db.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) >= n {
					break
				}
			}
			if err := tx.Rollback(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	if n != 1 {
		t.Fatalf("%d of %d racing claims of a released event won, want 1", n, racers)
	}
	if got := db.storedEmail(t, c.EventKey); got.Status != "sending" {
		t.Fatalf("status %q after the races, want sending", got.Status)
	}
	if got := db.count(t, `SELECT count(*) FROM emails`); got != 1 {
		t.Fatalf("%d emails rows, want 1", got)
	}
}
