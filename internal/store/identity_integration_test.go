//go:build integration

package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/store"
)

// A sign-in link works once, before it expires, and is in the database only hashed; spending it
// confirms the user, claims their guest orders, and opens a session that replaces the one the
// request came with.
func TestSignInLinkWorksOnceAndConfirms(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "ada@example.com", "Ada Lovelace")
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != store.UserPending {
		t.Fatalf("a registered user is %s, want pending until a link is followed", u.Status)
	}
	token, err := db.store.IssueSignInToken(ctx, u.ID, "/account/orders", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := db.pool.QueryRow(ctx, `SELECT token_hash FROM sign_in_tokens WHERE user_id = $1`, u.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(token)) || !bytes.Equal(stored, store.HashSecret(token)) {
		t.Fatalf("the stored token is not its hash")
	}
	if n := db.count(t, `SELECT count(*) FROM sign_in_tokens t WHERE position(convert_to($1, 'UTF8') in t.token_hash) > 0`, token); n != 0 {
		t.Fatal("the token is in the database in clear")
	}

	old := db.session(t, u.ID)
	guest := db.pendingOrder(t) // placed with ada@example.com as a guest, after that sign-in
	in, err := db.store.SignInWithToken(ctx, token, old, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if in.User.Status != store.UserConfirmed || in.User.ConfirmedAt == nil || in.Next != "/account/orders" || in.ClaimedOrders != 1 {
		t.Fatalf("sign-in %+v", in)
	}
	if got := db.orderRow(t, guest.ID).UserID; got == nil || *got != u.ID {
		t.Fatalf("the guest order's user is %v, want %s", got, u.ID)
	}
	if _, err := db.store.SessionByToken(ctx, old, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the session presented at sign-in still works: %v", err)
	}
	if s, err := db.store.SessionByToken(ctx, in.Token, time.Hour); err != nil || s.UserID != u.ID {
		t.Fatalf("the new session: %+v %v", s, err)
	}
	if n := db.count(t, `SELECT count(*) FROM sessions WHERE token_hash = $1`, []byte(in.Token)); n != 0 {
		t.Fatal("a session secret is in the database in clear")
	}
	if _, err := db.store.SignInWithToken(ctx, token, "", time.Hour); !errors.Is(err, store.ErrSignInLinkInvalid) {
		t.Fatalf("second use: %v, want ErrSignInLinkInvalid", err)
	}
}

func TestSignInLinkExpires(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "bob@example.com", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	token, err := db.store.IssueSignInToken(ctx, u.ID, "", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	db.exec(t, `UPDATE sign_in_tokens SET expires_at = now() - interval '1 second'`)
	if _, err := db.store.SignInWithToken(ctx, token, "", time.Hour); !errors.Is(err, store.ErrSignInLinkInvalid) {
		t.Fatalf("expired link: %v", err)
	}
	if u2, _ := db.store.UserByID(ctx, u.ID); u2.Status != store.UserPending {
		t.Fatalf("an expired link confirmed the user")
	}
}

// A session ends when idle too long, past its absolute expiry, revoked, or when its user signs
// out everywhere.
func TestSessionExpiries(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "cy@example.com", "Cy")
	if err != nil {
		t.Fatal(err)
	}
	live := func(secret string) bool {
		_, err := db.store.SessionByToken(ctx, secret, time.Hour)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	idle, absolute, revoked := db.session(t, u.ID), db.session(t, u.ID), db.session(t, u.ID)
	db.exec(t, `UPDATE sessions SET last_seen_at = now() - interval '2 hours' WHERE token_hash = $1`, store.HashSecret(idle))
	db.exec(t, `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, store.HashSecret(absolute))
	if err := db.store.RevokeSession(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if live(idle) || live(absolute) || live(revoked) {
		t.Fatalf("idle %v, absolute %v, revoked %v: want all ended", live(idle), live(absolute), live(revoked))
	}
	u2, err := db.store.RegisterUser(ctx, "di@example.com", "Di")
	if err != nil {
		t.Fatal(err)
	}
	a, b := db.session(t, u2.ID), db.session(t, u2.ID)
	if !live(a) || !live(b) {
		t.Fatal("fresh sessions do not work")
	}
	if n, err := db.store.RevokeUserSessions(ctx, u2.ID); err != nil || n != 2 {
		t.Fatalf("revoked %d (%v), want the 2 live ones", n, err)
	}
	if live(a) || live(b) {
		t.Fatal("a session outlived signing out everywhere")
	}
}

// session opens a session for userID through a sign-in link and returns its secret.
func (db *testDB) session(t *testing.T, userID string) string {
	t.Helper()
	ctx := context.Background()
	token, err := db.store.IssueSignInToken(ctx, userID, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in, err := db.store.SignInWithToken(ctx, token, "", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return in.Token
}

// A customer's orders page newest first, each page after the last one's cursor, with lines.
func TestUserOrdersPages(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "ada@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 5 {
		o := db.pendingOrder(t)
		ids = append(ids, o.ID)
	}
	other := db.pendingOrder(t)
	db.exec(t, `UPDATE orders SET user_id = $1 WHERE id <> $2`, u.ID, other.ID)
	db.exec(t, `UPDATE orders SET created_at = created_at + (interval '1 hour' * array_position($1::uuid[], id)) WHERE id = ANY($1::uuid[])`, ids)
	var got []string
	var after store.OrderCursor
	for {
		page, err := db.store.UserOrders(ctx, u.ID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			if len(o.Lines) != 2 {
				t.Fatalf("order %s has %d lines, want 2", o.ID, len(o.Lines))
			}
			got = append(got, o.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = store.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if len(got) != 5 || got[0] != ids[4] || got[4] != ids[0] {
		t.Fatalf("pages = %v, want %v newest first", got, ids)
	}
}

// The cleanup deletes sessions and sign-in links that ended more than a day ago, and only those.
func TestPruneSessions(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	u, err := db.store.RegisterUser(ctx, "eve@example.com", "Eve")
	if err != nil {
		t.Fatal(err)
	}
	live, ended := db.session(t, u.ID), db.session(t, u.ID)
	db.exec(t, `UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE token_hash = $1`, store.HashSecret(ended))
	if _, err := db.store.IssueSignInToken(ctx, u.ID, "", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	db.exec(t, `UPDATE sign_in_tokens SET expires_at = now() - interval '2 days' WHERE used_at IS NOT NULL`)
	if _, err := db.store.PruneSessions(ctx, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if n := db.count(t, `SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID); n != 1 {
		t.Fatalf("%d sessions left, want the live one", n)
	}
	if _, err := db.store.SessionByToken(ctx, live, time.Hour); err != nil {
		t.Fatalf("the live session was pruned: %v", err)
	}
	if n := db.count(t, `SELECT count(*) FROM sign_in_tokens WHERE user_id = $1`, u.ID); n != 1 {
		t.Fatalf("%d sign-in tokens left, want the unexpired one", n)
	}
}
