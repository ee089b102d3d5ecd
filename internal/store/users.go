package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/store/db"
)

// User statuses in the User Directory.
const (
	UserPending   = "pending"
	UserConfirmed = "confirmed"
)

// User is a User Directory entry.
type User struct {
	ID          string
	Email       string
	Name        string
	Status      string
	CreatedAt   time.Time
	ConfirmedAt *time.Time
	// SubscriptionStatus is the best standing among the user's subscriptions, or "none".
	SubscriptionStatus string
}

// userFrom converts a users row just read (r, err) to a User, and "no row" to ErrNotFound.
func userFrom(r db.User, err error) (User, error) {
	if err != nil {
		return User{}, notFound(err)
	}
	return User{ID: r.ID, Email: r.Email, Name: r.Name, Status: r.Status, CreatedAt: r.CreatedAt, ConfirmedAt: r.ConfirmedAt,
		SubscriptionStatus: r.SubscriptionStatus}, nil
}

// RegisterUser registers a customer by standardized email. The same email twice is one user:
// the second call returns the first registration, keeping its name and status.
func (s *Store) RegisterUser(ctx context.Context, email, name string) (User, error) {
	u, err := userFrom(s.q.RegisterUser(ctx, db.RegisterUserParams{Email: email, Name: name}))
	if err != nil {
		return u, fmt.Errorf("register user: %w", err)
	}
	return u, nil
}

// ConfirmUser marks a user confirmed; confirming again keeps the first confirmation time.
func (s *Store) ConfirmUser(ctx context.Context, userID string) (User, error) {
	u, err := userFrom(s.q.ConfirmUser(ctx, userID))
	if err != nil {
		return u, fmt.Errorf("confirm user %s: %w", userID, err)
	}
	return u, nil
}

// UserByEmail looks a user up by standardized email.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return userFrom(s.q.UserByEmail(ctx, email))
}
