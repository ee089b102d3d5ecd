// Package migrations holds cartflow's PostgreSQL schema, embedded in every binary and applied with tern.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var schema embed.FS

//go:embed seed/dev_catalog.sql
var devCatalog string

// versionTable is where tern records the applied schema version.
const versionTable = "schema_version"

// Migrate brings the database schema to the latest version. tern serializes concurrent callers
// with an advisory lock, so the worker and the BFF may both call it at start.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for migrations: %w", err)
	}
	defer conn.Release()

	migrator, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return fmt.Errorf("create migrator: %w", err)
	}
	if err := migrator.LoadMigrations(schema); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := migrator.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// SeedDevCatalog upserts the development catalog.
func SeedDevCatalog(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, devCatalog); err != nil {
		return fmt.Errorf("seed development catalog: %w", err)
	}
	return nil
}
