package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/store/db"
)

// Customer identity: sign-in links and sessions. A secret (a link's token, a session's cookie
// value) is 32 random bytes, base64url; the database keeps only its SHA-256, so that reading
// the tables signs nobody in, and looking a secret up costs one indexed read.

// ErrSignInLinkInvalid means a sign-in token is unknown, used already, or expired; the three are
// deliberately one error, so that an answer never tells an attacker which.
var ErrSignInLinkInvalid = errors.New("sign-in link is invalid or expired")

// NewSecret draws a secret for a sign-in link or a session.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on the platforms Go supports
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret is what the database keeps of a secret.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// IssueSignInToken stores a sign-in link's token for a user, valid for ttl, and returns the
// token, which exists nowhere else once the email is sent. next is the storefront path the
// link lands on after signing in.
func (s *Store) IssueSignInToken(ctx context.Context, userID, next string, ttl time.Duration) (string, error) {
	token := NewSecret()
	err := s.q.InsertSignInToken(ctx, db.InsertSignInTokenParams{
		TokenHash: HashSecret(token), UserID: userID, NextPath: next, ExpiresAt: time.Now().Add(ttl),
	})
	if err != nil {
		return "", fmt.Errorf("issue sign-in token: %w", err)
	}
	return token, nil
}

// Session is a signed-in customer's server-side session.
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

func sessionFrom(r db.Session) Session {
	return Session{ID: r.ID, UserID: r.UserID, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt}
}

// SignIn is the outcome of spending a sign-in link.
type SignIn struct {
	// Token is the new session's secret, for the cookie; it is stored only hashed.
	Token   string
	Session Session
	User    User
	// Next is the storefront path the link was made for.
	Next string
	// ClaimedOrders is how many guest orders placed with the user's email the account now holds.
	ClaimedOrders int64
}

// SignInWithToken spends a sign-in token and opens a session for its user, in one transaction:
// the token works once, and only before it expires (ErrSignInLinkInvalid otherwise). Following
// the link proves the address, so the user becomes confirmed (the User Directory's confirm),
// and claims the guest orders placed with that email. The session presented with the request,
// if any (replaced), is revoked, so that a session is never carried across a sign-in.
func (s *Store) SignInWithToken(ctx context.Context, token string, replaced string, lifetime time.Duration) (SignIn, error) {
	var out SignIn
	err := s.inTx(ctx, func(q *db.Queries) error {
		used, err := q.UseSignInToken(ctx, HashSecret(token))
		if err != nil {
			if notFound(err) == ErrNotFound {
				return ErrSignInLinkInvalid
			}
			return fmt.Errorf("use sign-in token: %w", err)
		}
		if out.User, err = userFrom(q.ConfirmUser(ctx, used.UserID)); err != nil {
			return fmt.Errorf("confirm user: %w", err)
		}
		if out.ClaimedOrders, err = q.ClaimGuestOrders(ctx, db.ClaimGuestOrdersParams{UserID: &out.User.ID, Email: out.User.Email}); err != nil {
			return fmt.Errorf("claim guest orders: %w", err)
		}
		if replaced != "" {
			if err := q.RevokeSession(ctx, HashSecret(replaced)); err != nil {
				return fmt.Errorf("revoke replaced session: %w", err)
			}
		}
		out.Token = NewSecret()
		row, err := q.InsertSession(ctx, db.InsertSessionParams{TokenHash: HashSecret(out.Token), UserID: used.UserID, ExpiresAt: time.Now().Add(lifetime)})
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		out.Session, out.Next = sessionFrom(row), used.NextPath
		return nil
	})
	return out, err
}

// sessionTouchInterval bounds how often a session's last_seen_at is written: the idle expiry
// does not need the second, and a write per request would make every read a write.
const sessionTouchInterval = time.Minute

// SessionByToken returns the live session a cookie's secret names: not revoked, before its
// absolute expiry, and used within idle. A session used again moves its idle expiry.
func (s *Store) SessionByToken(ctx context.Context, token string, idle time.Duration) (Session, error) {
	row, err := s.q.SessionByTokenHash(ctx, db.SessionByTokenHashParams{TokenHash: HashSecret(token), SeenAfter: time.Now().Add(-idle)})
	if err != nil {
		return Session{}, readFailed(err, "session")
	}
	if time.Since(row.LastSeenAt) > sessionTouchInterval {
		if err := s.q.TouchSession(ctx, row.ID); err != nil {
			return Session{}, fmt.Errorf("touch session: %w", err)
		}
	}
	return sessionFrom(row), nil
}

// RevokeSession signs one session out. An unknown or revoked session is no error: signing out
// twice is signed out.
func (s *Store) RevokeSession(ctx context.Context, token string) error {
	if err := s.q.RevokeSession(ctx, HashSecret(token)); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeUserSessions signs a user out everywhere and returns how many sessions ended.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string) (int64, error) {
	n, err := s.q.RevokeUserSessions(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return n, nil
}

// UserByID reads a User Directory entry.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	if !uuidPattern.MatchString(id) {
		return User{}, ErrNotFound
	}
	return userFrom(s.q.UserByID(ctx, id))
}

// RenameUser changes the name a customer goes by.
func (s *Store) RenameUser(ctx context.Context, id, name string) (User, error) {
	u, err := userFrom(s.q.RenameUser(ctx, db.RenameUserParams{ID: id, Name: name}))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, fmt.Errorf("rename user %s: %w", id, err)
	}
	return u, err
}

// OrderCursor is the position after which a page of a customer's orders starts: the last
// order of the page before. The zero cursor starts at the newest order.
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
}

// UserOrders returns up to limit of a customer's orders, newest first, after the cursor, with
// their lines.
func (s *Store) UserOrders(ctx context.Context, userID string, after OrderCursor, limit int) ([]Order, error) {
	if after.ID == "" {
		// (created_at, id) below every real row: a time far ahead and the largest UUID.
		after = OrderCursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	}
	rows, err := s.q.UserOrdersPage(ctx, db.UserOrdersPageParams{UserID: &userID, BeforeCreatedAt: after.CreatedAt, BeforeID: after.ID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list orders of user %s: %w", userID, err)
	}
	out := convert(rows, orderFrom)
	ids := make([]string, len(out))
	for i, o := range out {
		ids[i] = o.ID
	}
	items, err := s.q.ItemsOfOrders(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("query order lines: %w", err)
	}
	byOrder := make(map[string][]PricedLine, len(out))
	for _, it := range items {
		byOrder[it.OrderID] = append(byOrder[it.OrderID], lineFrom(it))
	}
	for i := range out {
		out[i].Lines = byOrder[out[i].ID]
	}
	return out, nil
}

// UserSubscriptions returns a customer's subscriptions, newest first.
func (s *Store) UserSubscriptions(ctx context.Context, userID string) ([]Subscription, error) {
	rows, err := s.q.UserSubscriptions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of user %s: %w", userID, err)
	}
	return convert(rows, func(r db.UserSubscriptionsRow) Subscription {
		return subscriptionFrom(r.Subscription, r.CustomerEmail, r.CustomerName, r.PlanName)
	}), nil
}

// SessionRetention is how long an ended session or a spent or expired sign-in link is kept:
// long enough to tell a customer when they last signed in, no longer.
const SessionRetention = 24 * time.Hour

// PruneSessions deletes up to limit sessions and up to limit sign-in tokens that ended (expired
// or revoked) more than SessionRetention ago, and returns how many rows went. The cleanup's
// cutoff (olderThan, the record retention) is for records kept for ops; these are only kept
// until they are of no use.
func (s *Store) PruneSessions(ctx context.Context, _ time.Time, limit int) (int, error) {
	cutoff := time.Now().Add(-SessionRetention)
	sessions, err := batch(ctx, limit, "prune sessions", s.q.DeleteExpiredSessions,
		db.DeleteExpiredSessionsParams{OlderThan: cutoff, MaxRows: int64(limit)})
	if err != nil {
		return 0, err
	}
	tokens, err := batch(ctx, limit, "prune sign-in tokens", s.q.DeleteExpiredSignInTokens,
		db.DeleteExpiredSignInTokensParams{OlderThan: cutoff, MaxRows: int64(limit)})
	if err != nil {
		return 0, err
	}
	// The cleanup stops a task at a short batch; the larger of the two tells whether either is full.
	return max(sessions, tokens), nil
}
