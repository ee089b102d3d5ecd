// Package testdb gives the tests of a package one PostgreSQL server and each test a fresh,
// migrated database seeded with the dev catalog, so that tests never see each other's rows and
// can run in parallel. It is ordinary (non-test) code because tests of several packages import it.
package testdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/dev/tb"
	"github.com/cartflow/cartflow/migrations"
)

// Server is the PostgreSQL server the tests of one package share: a throwaway local cluster,
// or the server DATABASE_URL points at.
type Server struct {
	cluster *stack.Postgres // nil when DATABASE_URL is set
	dir     string          // the cluster's data directory's parent, removed by Stop
	cfg     *pgxpool.Config // DATABASE_URL, parsed; nil when running a cluster
}

// seq numbers databases across every Server of the process, so names stay unique even if a
// package were to start two Servers on one DATABASE_URL server.
var seq atomic.Int64

// Start starts a local cluster, or uses the server DATABASE_URL points at; ctx bounds only the start-up.
func Start(ctx context.Context) (*Server, error) {
	if serverURL := os.Getenv("DATABASE_URL"); serverURL != "" {
		return fromURL(serverURL)
	}
	dir, err := os.MkdirTemp("", "cartflow-testdb-")
	if err != nil {
		return nil, err
	}
	cluster, err := stack.StartPostgres(ctx, stack.PostgresOptions{DataDir: filepath.Join(dir, "pg")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Server{cluster: cluster, dir: dir}, nil
}

// Main is the body of a TestMain whose tests need only this server: it starts a Server into
// *srv, runs the tests, stops it, and returns the exit code for os.Exit.
func Main(m tb.M, srv **Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb: start PostgreSQL:", err)
		return 1
	}
	defer func() {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testdb: stop PostgreSQL:", err)
		}
	}()
	*srv = s
	return m.Run()
}

// fromURL is a Server on an existing server. Its error never quotes serverURL, which may hold a password.
func fromURL(serverURL string) (*Server, error) {
	cfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL connection string")
	}
	return &Server{cfg: cfg}, nil
}

// Stop stops the local cluster and removes its files; a DATABASE_URL server is left running.
func (s *Server) Stop() error {
	if s.cluster == nil {
		return nil
	}
	return errors.Join(s.cluster.Stop(), os.RemoveAll(s.dir))
}

// NewDB returns a pool on a fresh, migrated database seeded with the dev catalog (on a
// DATABASE_URL server, a schema of its own on the search_path), dropped when t ends.
func (s *Server) NewDB(t tb.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := dbName(os.Getpid(), seq.Add(1), t.Name())

	var cfg *pgxpool.Config
	if s.cluster != nil {
		dbURL, err := s.cluster.CreateDatabase(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dropDatabase(t, dbURL, name) })
		if cfg, err = pgxpool.ParseConfig(dbURL); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg = s.cfg.Copy()
		ident := pgx.Identifier{name}.Sanitize()
		admin, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.Exec(ctx, "CREATE SCHEMA "+ident)
		_ = admin.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dropSchema(t, cfg.ConnConfig.Copy(), ident) })
		// Unqualified names, tern's version table included, then resolve inside the scratch schema.
		cfg.ConnConfig.RuntimeParams["search_path"] = name
	}
	// pgxpool's default, max(4, NumCPU), would starve the concurrency tests on a small machine:
	// up to 12 racing transactions wait on an insert barrier that itself holds a connection.
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // registered last, so it runs before the drop
	if err := migrations.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := migrations.SeedDevCatalog(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// dbName names a test's database after the test, for whoever looks at the server. It is unique
// within the process (the counter) and across processes sharing a DATABASE_URL server (the pid),
// and fits PostgreSQL's 63-byte identifiers, which it would otherwise silently truncate.
func dbName(pid int, n int64, testName string) string {
	name := fmt.Sprintf("t%d_%d_%s", pid, n, nonIdent.ReplaceAllString(strings.ToLower(testName), "_"))
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

func dropDatabase(t tb.T, dbURL, name string) {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Error(err)
		return
	}
	// A database cannot be dropped from a connection to itself.
	u.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Errorf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

func dropSchema(t tb.T, cfg *pgx.ConnConfig, ident string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("drop schema %s: %v", ident, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", ident, err)
	}
}
