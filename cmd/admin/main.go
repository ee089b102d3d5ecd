// Command admin manages cartflow's staff keys:
//
//	go run ./cmd/admin keys create --name "Ada Lovelace" --scope refunds --scope orders:read
//	go run ./cmd/admin keys list
//	go run ./cmd/admin keys revoke <id|prefix>
//
// It reads DATABASE_URL (internal/config's Database settings) and works on a migrated database;
// the BFF and the worker migrate it at start. A new key is printed once: only its hash is kept.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
	}
	os.Exit(exitCode(err))
}

const usage = `usage:
  admin keys create --name NAME --scope SCOPE [--scope SCOPE ...]
  admin keys list
  admin keys revoke ID|PREFIX

scopes: refunds, orders:read, ops
`

// usageError is a command line that names no valid command: the usage is printed and the exit
// status is 2, as flag does.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func badUsage(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// run carries out the command in args. Arguments are checked before the database is opened, so
// a mistyped command or scope touches nothing.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, usage)
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 || args[0] != "keys" {
		return badUsage("expected a command: keys create, keys list or keys revoke")
	}
	switch args[1] {
	case "create":
		name, scopes, err := parseCreate(args[2:])
		if err != nil {
			return err
		}
		return withStore(ctx, func(st *store.Store) error { return createKey(ctx, st, name, scopes, stdout) })
	case "list":
		if len(args) != 2 {
			return badUsage("keys list takes no arguments")
		}
		return withStore(ctx, func(st *store.Store) error { return listKeys(ctx, st, stdout) })
	case "revoke":
		if len(args) != 3 || strings.HasPrefix(args[2], "-") {
			return badUsage("keys revoke takes one key id or prefix")
		}
		ref := args[2]
		return withStore(ctx, func(st *store.Store) error { return revokeKey(ctx, st, ref, stdout) })
	}
	return badUsage("unknown command keys %s", args[1])
}

// scopeFlags collects repeated --scope flags.
type scopeFlags []string

func (s *scopeFlags) String() string { return strings.Join(*s, ",") }

func (s *scopeFlags) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if !staffkey.ValidScope(part) {
			return fmt.Errorf("unknown scope %q (scopes: %s)", part, strings.Join(staffkey.Scopes(), ", "))
		}
		if !slices.Contains(*s, part) {
			*s = append(*s, part)
		}
	}
	return nil
}

func parseCreate(args []string) (string, []string, error) {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the staff member the key is for")
	var scopes scopeFlags
	fs.Var(&scopes, "scope", "a scope the key holds (repeatable)")
	if err := fs.Parse(args); err != nil {
		return "", nil, badUsage("keys create: %v", err)
	}
	n := strings.TrimSpace(*name)
	switch {
	case fs.NArg() != 0:
		return "", nil, badUsage("keys create: unexpected argument %q", fs.Arg(0))
	case n == "" || len(n) > 200:
		return "", nil, badUsage("keys create: --name is required (at most 200 characters)")
	case len(scopes) == 0:
		return "", nil, badUsage("keys create: at least one --scope is required")
	}
	return n, scopes, nil
}

// withStore opens the database named by DATABASE_URL for fn.
func withStore(ctx context.Context, fn func(*store.Store) error) error {
	var cfg config.Database
	if err := config.Load(&cfg); err != nil {
		return err
	}
	pool, err := store.Open(ctx, cfg.URL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(store.New(pool))
}

func createKey(ctx context.Context, st *store.Store, name string, scopes []string, stdout io.Writer) error {
	secret, err := staffkey.Generate()
	if err != nil {
		return err
	}
	k, err := st.CreateStaffKey(ctx, name, secret, scopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created a staff key for %s.\n  id:     %s\n  prefix: %s\n  scopes: %s\n  key:    %s\n\n",
		k.Name, k.ID, k.Prefix, strings.Join(k.Scopes, ", "), secret)
	fmt.Fprintln(stdout, "This is the only time the key is shown; cartflow keeps only its hash. Send it as Authorization: Bearer <key>.")
	return nil
}

func listKeys(ctx context.Context, st *store.Store, stdout io.Writer) error {
	keys, err := st.ListStaffKeys(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPREFIX\tNAME\tSCOPES\tCREATED\tLAST USED\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Name, strings.Join(k.Scopes, ","),
			k.CreatedAt.UTC().Format(time.RFC3339), when(k.LastUsedAt), when(k.RevokedAt))
	}
	return w.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func revokeKey(ctx context.Context, st *store.Store, ref string, stdout io.Writer) error {
	k, err := st.RevokeStaffKey(ctx, ref)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no staff key has the id or prefix %q", ref)
	case errors.Is(err, store.ErrAmbiguousStaffKey):
		return fmt.Errorf("more than one staff key has the prefix %q: revoke it by id (keys list)", ref)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "Revoked the staff key %s (%s) of %s at %s.\n", k.ID, k.Prefix, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
	return nil
}
