// Package store is cartflow's PostgreSQL access layer: the catalog, the User Directory, orders
// (which double as the checkout read model) and the payments ledger. Every write is idempotent,
// because activities that call it may run more than once.
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

// Store wraps a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over an open pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

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

const productColumns = `sku, name, kind, price_amount, currency, coalesce(billing_interval, ''), trial_days, active`

func scanProduct(row pgx.Row) (Product, error) {
	var p Product
	err := row.Scan(&p.SKU, &p.Name, &p.Kind, &p.PriceAmount, &p.Currency, &p.BillingInterval, &p.TrialDays, &p.Active)
	return p, err
}

// ListProducts returns the active catalog ordered by SKU.
func (s *Store) ListProducts(ctx context.Context) ([]Product, error) {
	return queryProducts(ctx, s.pool, `SELECT `+productColumns+` FROM products WHERE active ORDER BY sku`)
}

// ProductsBySKU returns the products, active or not, whose SKUs are listed, keyed by SKU.
func (s *Store) ProductsBySKU(ctx context.Context, skus []string) (map[string]Product, error) {
	return productsBySKU(ctx, s.pool, skus, false)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func productsBySKU(ctx context.Context, q querier, skus []string, lock bool) (map[string]Product, error) {
	sql := `SELECT ` + productColumns + ` FROM products WHERE sku = ANY($1)`
	if lock {
		// Holds the prices still while the order is written, so that an order's lines match the catalog at one instant.
		sql += ` FOR SHARE`
	}
	list, err := queryProducts(ctx, q, sql, skus)
	if err != nil {
		return nil, err
	}
	bySKU := make(map[string]Product, len(list))
	for _, p := range list {
		bySKU[p.SKU] = p
	}
	return bySKU, nil
}

func queryProducts(ctx context.Context, q querier, sql string, args ...any) ([]Product, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query products: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Product, error) { return scanProduct(r) })
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	return list, nil
}
