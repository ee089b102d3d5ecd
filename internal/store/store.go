// Package store is cartflow's PostgreSQL access layer: the catalog, the User Directory, orders
// (which double as the checkout read model), the payments ledger, subscriptions, emails, provider
// events and the daily figures. Every write is idempotent, because activities that call it may
// run more than once.
//
// The SQL lives in queries/*.sql, one named query per statement, from which sqlc generates
// package db (`make generate`); this package composes those queries into transactions and turns
// their rows into its own types.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartflow/cartflow/internal/store/db"
)

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("not found")

// IsIntegrityViolation reports whether the database refused a write for breaking one of its
// rules (a check, unique, foreign-key or not-null constraint, SQLSTATE class 23). Retrying the
// same write cannot succeed.
func IsIntegrityViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "23")
}

// Store composes the queries generated from queries/*.sql (package db) into the store's
// operations and transactions.
type Store struct {
	pool *pgxpool.Pool
	q    *db.Queries
}

// New returns a Store over an open pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, q: db.New(pool)} }

// inTx runs fn with the queries bound to one transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(q *db.Queries) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
}

// Open connects a pool to url with at most maxConns connections and checks that it answers.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can quote the URL, password included.
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL connection string")
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return pool, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Product is a catalog entry. Prices are minor units of Currency.
type Product struct {
	SKU             string `json:"sku"`
	Name            string `json:"name"`
	Kind            string `json:"kind"`
	PriceAmount     int64  `json:"price_amount"`
	Currency        string `json:"currency"`
	BillingInterval string `json:"billing_interval,omitempty"`
	TrialDays       int    `json:"trial_days"`
	Active          bool   `json:"active"`
}

// Product kinds.
const (
	KindOneOff       = "one_off"
	KindSubscription = "subscription"
)

func productFrom(r db.Product) Product {
	return Product{
		SKU: r.Sku, Name: r.Name, Kind: r.Kind, PriceAmount: r.PriceAmount, Currency: r.Currency,
		BillingInterval: deref(r.BillingInterval), TrialDays: int(r.TrialDays), Active: r.Active,
	}
}

// ListProducts returns the active catalog ordered by SKU.
func (s *Store) ListProducts(ctx context.Context) ([]Product, error) {
	rows, err := s.q.ListActiveProducts(ctx)
	if err != nil {
		return nil, fmt.Errorf("query products: %w", err)
	}
	return convert(rows, productFrom), nil
}

// ProductsBySKU returns the products, active or not, whose SKUs are listed, keyed by SKU.
func (s *Store) ProductsBySKU(ctx context.Context, skus []string) (map[string]Product, error) {
	return productsBySKU(s.q.ProductsBySKU(ctx, skus))
}

func productsBySKU(rows []db.Product, err error) (map[string]Product, error) {
	if err != nil {
		return nil, fmt.Errorf("query products: %w", err)
	}
	bySKU := make(map[string]Product, len(rows))
	for _, r := range rows {
		bySKU[r.Sku] = productFrom(r)
	}
	return bySKU, nil
}

// convert maps generated rows to the store's types. The result is never nil, so that an empty
// list marshals as [] like it did before.
func convert[R, T any](rows []R, to func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = to(r)
	}
	return out
}

// deref reads a NULLable column the way the API has always shown it: NULL as the zero value.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// notFound turns a query's "no rows" into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// readFailed turns a failed read's "no rows" into ErrNotFound, and says what it read otherwise.
func readFailed(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return fmt.Errorf("read %s: %w", what, err)
}
