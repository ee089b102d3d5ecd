package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
}

const userColumns = `id::text, email, name, status, created_at, confirmed_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Status, &u.CreatedAt, &u.ConfirmedAt)
	if err == pgx.ErrNoRows {
		return u, ErrNotFound
	}
	return u, err
}

// RegisterUser registers a customer by standardized email. The same email twice is one user:
// the second call returns the first registration, keeping its name and status.
func (s *Store) RegisterUser(ctx context.Context, email, name string) (User, error) {
	// DO UPDATE (a no-op write) rather than DO NOTHING so that RETURNING yields the existing row.
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (email, name) VALUES ($1, $2)
		ON CONFLICT (email) DO UPDATE SET updated_at = users.updated_at
		RETURNING `+userColumns, email, name))
	if err != nil {
		return u, fmt.Errorf("register user: %w", err)
	}
	return u, nil
}

// ConfirmUser marks a user confirmed; confirming again keeps the first confirmation time.
func (s *Store) ConfirmUser(ctx context.Context, userID string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `
		UPDATE users SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()), updated_at = now()
		WHERE id = $1 RETURNING `+userColumns, userID))
	if err != nil {
		return u, fmt.Errorf("confirm user %s: %w", userID, err)
	}
	return u, nil
}

// UserByEmail looks a user up by standardized email.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
}
