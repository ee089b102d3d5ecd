package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/store"
)

// fakeIdentity is the fake store's customers and sessions: sessions by their secret, users by id.
type fakeIdentity struct {
	sessions map[string]store.Session
	users    map[string]store.User
	// signIns are the unspent sign-in tokens, by token.
	signIns map[string]string
}

// sessionFor gives userID a live session and returns its secret; the user exists from then on.
func (f *fakeStore) sessionFor(userID, email string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[userID]; !ok {
		f.users[userID] = store.User{ID: userID, Email: email, Name: "Ann Lee", Status: store.UserConfirmed, SubscriptionStatus: "none"}
	}
	token := store.NewSecret()
	f.sessions[token] = store.Session{ID: "s-" + token[:8], UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	return token
}

// withSession sends req as the holder of the session token, from the storefront's pages (the
// test server's STOREFRONT_URL), as a browser would.
func withSession(req *http.Request, token string) *http.Request {
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	req.Header.Set("Origin", "https://shop.example")
	return req
}

func (f *fakeStore) SignInWithToken(_ context.Context, token, replaced string, _ time.Duration) (store.SignIn, error) {
	f.record("SignInWithToken")
	f.mu.Lock()
	userID, ok := f.signIns[token]
	delete(f.signIns, token)
	delete(f.sessions, replaced)
	f.mu.Unlock()
	if !ok {
		return store.SignIn{}, store.ErrSignInLinkInvalid
	}
	u := f.users[userID]
	secret := f.sessionFor(userID, u.Email)
	return store.SignIn{Token: secret, User: u, Session: f.sessions[secret]}, nil
}

func (f *fakeStore) SessionByToken(_ context.Context, token string, _ time.Duration) (store.Session, error) {
	f.record("SessionByToken")
	f.mu.Lock()
	defer f.mu.Unlock()
	sess, ok := f.sessions[token]
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	return sess, nil
}

func (f *fakeStore) RevokeSession(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, token)
	return nil
}

func (f *fakeStore) RevokeUserSessions(_ context.Context, userID string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for k, sess := range f.sessions {
		if sess.UserID == userID {
			delete(f.sessions, k)
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) UserByID(_ context.Context, id string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

func (f *fakeStore) RenameUser(_ context.Context, id, name string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	u.Name = name
	f.users[id] = u
	return u, nil
}

func (f *fakeStore) UserOrders(_ context.Context, userID string, after store.OrderCursor, limit int) ([]store.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var mine []store.Order
	for _, o := range f.orders {
		if o.UserID == userID {
			mine = append(mine, o)
		}
	}
	slices.SortFunc(mine, func(a, b store.Order) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	var out []store.Order
	for _, o := range mine {
		if after.ID != "" && (o.CreatedAt.After(after.CreatedAt) || (o.CreatedAt.Equal(after.CreatedAt) && o.ID >= after.ID)) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, o)
	}
	return out, nil
}

func (f *fakeStore) UserSubscriptions(_ context.Context, userID string) ([]store.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Subscription
	for _, sub := range f.subscriptions {
		if sub.UserID == userID {
			out = append(out, sub)
		}
	}
	slices.SortFunc(out, func(a, b store.Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
