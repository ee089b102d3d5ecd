// Package stack starts the real components cartflow depends on —
// PostgreSQL, the Temporal dev server, stripe-mock and Mailpit — as local
// child processes bound to 127.0.0.1. The `make dev` runner and the
// integration tests share it, so both exercise the same start-up code.
//
// Every Start* function waits until its component really serves requests,
// and on failure returns an error carrying the tail of the component's log
// after making sure no process is left behind.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// host is the only address anything here binds to or dials: the dev stack
// must never be reachable from outside the machine.
const host = "127.0.0.1"

// defaultReadyTimeout bounds readiness waits when the caller's context has
// no deadline, so a wedged component cannot hang `make dev` or a test run.
const defaultReadyTimeout = 2 * time.Minute

// stopTimeout is how long Stop methods give a component to shut down
// cleanly before its process group is killed.
const stopTimeout = 15 * time.Second

// RepoRoot finds the module root (the directory holding go.mod) by walking
// up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("stack: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("stack: no go.mod in the working directory or any parent")
		}
		dir = parent
	}
}

// ToolPath returns the path of the tool binary name, looked up in
// $CARTFLOW_TOOLS_BIN if set and in <repo>/.tools/bin otherwise.
func ToolPath(name string) (string, error) {
	dir := os.Getenv("CARTFLOW_TOOLS_BIN")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".tools", "bin")
	}
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("stack: tool %s missing at %s: run `make tools`", name, path)
	}
	return path, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("stack: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portOrFree returns port, or a free port when port is 0.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return FreePort()
}

// addr formats 127.0.0.1:port.
func addr(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// startAndWait starts cmd as a Process and waits until probe succeeds. On
// any failure the process group is killed, so the caller never has to
// clean up after an error.
func startAndWait(ctx context.Context, name string, cmd *exec.Cmd, logw io.Writer, probe func(context.Context) error) (*Process, error) {
	p, err := StartProcess(name, cmd, logw)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, probe); err != nil {
		return nil, err
	}
	return p, nil
}

// waitReady polls probe until it succeeds, the process exits or ctx ends
// (defaultReadyTimeout if ctx has no deadline). On failure it kills the
// process group and returns an error with the tail of the log.
func (p *Process) waitReady(ctx context.Context, probe func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultReadyTimeout)
		defer cancel()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := p.probeOnce(ctx, probe)
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return p.fail(fmt.Errorf("exited before becoming ready (%v)", p.Err()))
		case <-ctx.Done():
			return p.fail(fmt.Errorf("not ready: %w (last probe: %v)", ctx.Err(), err))
		case <-tick.C:
		}
	}
}

// probeOnce runs probe with a short timeout that also ends when the process
// exits, so a probe stuck on a port someone else holds does not delay the
// report of a crash.
func (p *Process) probeOnce(ctx context.Context, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return probe(ctx)
}

// fail kills the process group and wraps err with the log tail, which is
// complete once the process has been reaped.
func (p *Process) fail(err error) error {
	_ = p.Kill()
	return fmt.Errorf("stack: %s %w\n--- last lines of %s log ---\n%s", p.name, err, p.name, p.LogTail())
}

// ensureDir creates dir (and parents) if missing.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stack: create %s: %w", dir, err)
	}
	return nil
}

// GetOK sends a GET to url and copies the answer's body to w (io.Discard drains it); an answer
// other than 200 OK is an error. The stack's readiness checks, the bench's profiles and the
// chaos supervisor all ask this way.
func GetOK(ctx context.Context, url string, w io.Writer) error {
	return httpGet(ctx, url, true, w)
}

// httpGet is GetOK, or, with want200 false, any answer at all.
func httpGet(ctx context.Context, url string, want200 bool, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if want200 && resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
