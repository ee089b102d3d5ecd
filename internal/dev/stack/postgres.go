package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// AppDatabase is the database StartPostgres creates for the application.
const AppDatabase = "cartflow"

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	DataDir string    // cluster directory: initialised when it has no PG_VERSION, reused otherwise
	Port    int       // TCP port on 127.0.0.1; 0 picks a free one
	Log     io.Writer // server and initdb output; nil discards it
}

// Postgres is a local PostgreSQL cluster run by the postgres binary.
type Postgres struct {
	proc      *Process
	port      int
	dataDir   string
	socketDir string
	cred      *syscall.Credential
	log       io.Writer
}

// StartPostgres initialises the cluster in opts.DataDir if needed, starts
// postgres on 127.0.0.1:opts.Port with its unix socket inside DataDir, waits
// until it accepts connections and creates the "cartflow" database if
// missing. Existing data is kept, so `make dev` can restart on the same
// directory.
//
// postgres runs as a direct child rather than through `pg_ctl start`, which
// would daemonise it out of our process group and out of Done's sight. When
// running as root (as CI does) initdb and postgres run as the "postgres"
// user, since both refuse root.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if opts.DataDir == "" {
		return nil, errors.New("stack: PostgresOptions.DataDir is required")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("stack: postgres data dir: %w", err)
	}
	port, err := portOrFree(opts.Port)
	if err != nil {
		return nil, err
	}
	cred, err := prepareDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		if err := initdb(ctx, dataDir, cred, opts.Log); err != nil {
			return nil, err
		}
	}
	if err := removeStaleLock(dataDir); err != nil {
		return nil, err
	}
	// Unix socket paths are limited to 107 bytes; in a deeply nested checkout
	// go without a socket (clients here use TCP) rather than fail to start.
	socketDir := dataDir
	if len(socketDir)+len("/.s.PGSQL.65535") > 107 {
		socketDir = ""
	}
	pg := &Postgres{port: port, dataDir: dataDir, socketDir: socketDir, cred: cred, log: opts.Log}
	if err := pg.start(ctx); err != nil {
		return nil, err
	}
	if err := pg.ensureDatabase(ctx, AppDatabase); err != nil {
		_ = pg.Stop()
		return nil, fmt.Errorf("%w\n--- last lines of postgres log ---\n%s", err, pg.proc.LogTail())
	}
	return pg, nil
}

// start runs postgres on the cluster and waits until it accepts connections.
func (p *Postgres) start(ctx context.Context) error {
	// The server must outlive ctx, which only bounds the start-up.
	cmd, err := pgCommand(context.Background(), p.dataDir, p.cred, "postgres",
		"-D", p.dataDir, "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses="+host, "-k", p.socketDir)
	if err != nil {
		return err
	}
	p.proc, err = startAndWait(ctx, "postgres", cmd, p.log, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.dbURL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	return err
}

// Restart starts the cluster again after Stop or Kill, on the same port and data, so that a test can
// take the database away from running clients and give it back: their pools reconnect to the
// same URL.
func (p *Postgres) Restart(ctx context.Context) error {
	select {
	case <-p.proc.Done():
	default:
		return errors.New("stack: postgres is still running; Stop or Kill it first")
	}
	// A killed server leaves its lock file behind, whose pid may belong to another process by now.
	if err := removeStaleLock(p.dataDir); err != nil {
		return err
	}
	return p.start(ctx)
}

// Kill kills the postmaster and its backends with SIGKILL, as a crash or a power cut would: the
// next start replays the write-ahead log.
func (p *Postgres) Kill() error { return p.proc.Kill() }

// URL returns the connection URL of the "cartflow" database.
func (p *Postgres) URL() string { return p.dbURL(AppDatabase) }

// Process returns the postgres (postmaster) process, e.g. to watch Done or
// to Kill it in crash tests.
func (p *Postgres) Process() *Process { return p.proc }

// CreateDatabase creates a fresh, empty database called name (dropping any
// existing one) and returns its URL, so tests can share one cluster while
// staying isolated.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("stack: CreateDatabase needs a name")
	}
	ident := pgx.Identifier{name}.Sanitize()
	// template0 is guaranteed empty and never has connections, which a
	// concurrent CREATE DATABASE from template1 can trip over.
	err := p.admin(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("stack: create database %s: %w", name, err)
	}
	return p.dbURL(name), nil
}

// Stop shuts postgres down in "fast" mode (SIGINT to the postmaster, what
// `pg_ctl stop -m fast` sends): open sessions are cut and a checkpoint is
// written, so the next start needs no recovery.
func (p *Postgres) Stop() error {
	return p.proc.shutdown(p.proc.Pid(), syscall.SIGINT, stopTimeout)
}

func (p *Postgres) dbURL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: addr(p.port), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// admin runs f on a connection to the maintenance database "postgres".
func (p *Postgres) admin(ctx context.Context, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, p.dbURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

func (p *Postgres) ensureDatabase(ctx context.Context, name string) error {
	err := p.admin(ctx, func(conn *pgx.Conn) error {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
			return err
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil {
		return fmt.Errorf("stack: ensure database %s: %w", name, err)
	}
	return nil
}

// prepareDataDir creates dataDir. As root it returns the credentials of the
// "postgres" user, hands dataDir to that user and makes the parents
// traversable (adding only o+x), since t.TempDir and friends are 0700.
func prepareDataDir(dataDir string) (*syscall.Credential, error) {
	if err := ensureDir(filepath.Dir(dataDir)); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("stack: create postgres data dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("stack: running as root needs a \"postgres\" user for initdb/postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dataDir, uid, gid); err != nil {
		return nil, fmt.Errorf("stack: chown postgres data dir: %w", err)
	}
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("stack: postgres data dir parent: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
				return nil, fmt.Errorf("stack: make %s traversable for postgres: %w", dir, err)
			}
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// pgCommand builds a command for a PostgreSQL binary on PATH, run as cred
// (if non-nil) from dataDir, a working directory that user can access
// (initdb fails when it cannot resolve its working directory).
func pgCommand(ctx context.Context, dataDir string, cred *syscall.Credential, name string, args ...string) (*exec.Cmd, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("stack: PostgreSQL binary %s not on PATH: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dataDir
	// Pin messages to English so errors and log tails read the same everywhere.
	cmd.Env = append(os.Environ(), "LC_MESSAGES=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd, nil
}

// initdb creates a new cluster in dataDir with trust authentication for the
// "postgres" superuser. --no-sync only skips the final fsync of the new
// files, which cannot matter for a throwaway development cluster.
func initdb(ctx context.Context, dataDir string, cred *syscall.Credential, logw io.Writer) error {
	cmd, err := pgCommand(ctx, dataDir, cred, "initdb",
		"-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	var w io.Writer = &out
	if logw != nil {
		w = io.MultiWriter(&out, logw)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stack: initdb %s: %w\n--- initdb output ---\n%s", dataDir, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// removeStaleLock deletes postmaster.pid (and the socket lock files) left by
// a killed server when no postgres process owns it any more. postgres
// handles most stale lock files itself, but refuses to start when the old
// PID has been reused by an unrelated process, which is common in
// containers where PIDs are small.
func removeStaleLock(dataDir string) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stack: read %s: %w", pidFile, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			return nil // possibly live: let postgres decide and report
		}
	}
	locks, _ := filepath.Glob(filepath.Join(dataDir, ".s.PGSQL.*"))
	for _, f := range append(locks, pidFile) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stack: remove stale %s: %w", f, err)
		}
	}
	return nil
}
