//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/internal/dev/testdb"
	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
)

var pg *testdb.Server

func TestMain(m *testing.M) { os.Exit(testdb.Main(m, &pg)) }

// admin runs the command against the test's database and returns its output.
func admin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

var printedKey = regexp.MustCompile(`(?m)^  key:\s+(\S+)$`)

func TestCreatedKeyAuthenticatesUntilRevoked(t *testing.T) {
	pool := pg.NewDB(t)
	u, err := url.Parse(pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	if sp := pool.Config().ConnConfig.RuntimeParams["search_path"]; sp != "" {
		q := u.Query()
		q.Set("search_path", sp)
		u.RawQuery = q.Encode()
	}
	t.Setenv("DATABASE_URL", u.String())
	st := store.New(pool)
	checker := staffkey.NewChecker(st)
	ctx := context.Background()

	out, err := admin(t, "keys", "create", "--name", "Ada Lovelace", "--scope", "refunds", "--scope", "orders:read")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	m := printedKey.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key in the output:\n%s", out)
	}
	key := m[1]
	k, err := checker.Check(ctx, "Bearer "+key, staffkey.ScopeRefunds)
	if err != nil || k.Name != "Ada Lovelace" || !strings.Contains(out, k.ID) || !strings.Contains(out, k.Prefix) {
		t.Fatalf("the printed key does not authenticate: %+v, %v\n%s", k, err, out)
	}
	if _, err := checker.Check(ctx, "Bearer "+key, staffkey.ScopeOps); !errors.Is(err, staffkey.ErrForbidden) {
		t.Fatalf("ops with refunds and orders:read: %v", err)
	}

	// The database holds no trace of the key's text, in any column.
	var dump string
	if err := pool.QueryRow(ctx, `SELECT string_agg(t::text || encode(t.key_hash, 'escape'), '|') FROM staff_keys t`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, key) || strings.Contains(dump, strings.TrimPrefix(key, staffkey.Prefix)) {
		t.Fatalf("staff_keys holds the key: %s", dump)
	}

	out, err = admin(t, "keys", "list")
	if err != nil || !strings.Contains(out, k.Prefix) || !strings.Contains(out, "Ada Lovelace") || strings.Contains(out, key) {
		t.Fatalf("list: %v\n%s", err, out)
	}

	out, err = admin(t, "keys", "revoke", k.Prefix)
	if err != nil || !strings.Contains(out, "Revoked") {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if _, err := checker.Check(ctx, "Bearer "+key, staffkey.ScopeRefunds); !errors.Is(err, staffkey.ErrUnauthenticated) {
		t.Fatalf("a revoked key: %v, want ErrUnauthenticated", err)
	}
	if _, err := admin(t, "keys", "revoke", "cfsk_nothere0"); err == nil || exitCode(err) != 1 {
		t.Fatalf("revoke of an unknown key: %v", err)
	}
}
