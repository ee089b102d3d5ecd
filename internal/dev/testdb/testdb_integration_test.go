//go:build integration

package testdb

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var srv *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &srv)) }

// modes returns the Servers to test: the one Main started and, when that is a local cluster, a
// DATABASE_URL-style Server on the cluster's own database, so that both ways of isolating a
// test (a database, a schema) are exercised in one run.
func modes(t *testing.T) map[string]*Server {
	t.Helper()
	if srv.cluster == nil {
		return map[string]*Server{"schema": srv}
	}
	onURL, err := fromURL(srv.cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Server{"database": srv, "schema": onURL}
}

// adminConn connects to a database of s that NewDB never drops.
func adminConn(t *testing.T, s *Server) *pgx.Conn {
	t.Helper()
	var cfg *pgx.ConnConfig
	if s.cluster != nil {
		var err error
		if cfg, err = pgx.ParseConfig(s.cluster.URL()); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg = s.cfg.ConnConfig.Copy()
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestNewDB(t *testing.T) {
	for mode, s := range modes(t) {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			var names [2]string
			var pools [2]*pgxpool.Pool
			// The subtest ends, and its cleanups run, before the checks below.
			t.Run("two databases", func(t *testing.T) {
				for i := range pools {
					pools[i] = s.NewDB(t)
					if got := pools[i].Config().MaxConns; got != 16 {
						t.Errorf("MaxConns = %d, want 16", got)
					}
					var products int
					if err := pools[i].QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&products); err != nil || products == 0 {
						t.Fatalf("%d seeded products (%v), want the dev catalog", products, err)
					}
					var db, schema string
					if err := pools[i].QueryRow(ctx, `SELECT current_database(), current_schema()`).Scan(&db, &schema); err != nil {
						t.Fatal(err)
					}
					names[i] = db
					if mode == "schema" {
						names[i] = schema
					}
					if !strings.HasPrefix(names[i], "t") || !strings.Contains(names[i], "_testnewdb_") {
						t.Errorf("%s is named %q, want it named after the test", mode, names[i])
					}
				}
				if names[0] == names[1] {
					t.Fatalf("both got %q, want two distinct ones", names[0])
				}
				if _, err := pools[0].Exec(ctx, `INSERT INTO users (email, name) VALUES ('iso@example.com', 'Iso')`); err != nil {
					t.Fatal(err)
				}
				var users int
				if err := pools[1].QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil || users != 0 {
					t.Fatalf("the other database has %d users (%v), want none", users, err)
				}
			})
			if names[1] == "" {
				t.Fatal("the subtest did not get both databases")
			}
			for _, p := range pools {
				if p.Ping(ctx) == nil {
					t.Error("a pool is still open after its test ended")
				}
			}
			admin := adminConn(t, s)
			query := `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`
			if mode == "schema" {
				query = `SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)`
			}
			var left int
			if err := admin.QueryRow(ctx, query, names[:]).Scan(&left); err != nil || left != 0 {
				t.Fatalf("%d of the tests' %ss left behind (%v), want them dropped", left, mode, err)
			}
		})
	}
}
