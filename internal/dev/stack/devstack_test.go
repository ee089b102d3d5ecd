package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// startCtx bounds each component's start-up; CI machines have two cores
// and several servers start in parallel.
func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// syncBuffer is a log writer the test can read while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// groupAlive reports whether any non-zombie process is in process group pgid.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Fields after "(comm)": state ppid pgrp ...
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 2 && fields[0] != "Z" && fields[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitGroupGone fails the test unless process group pgid empties quickly.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); groupAlive(pgid); {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has live processes", pgid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRepoRootAndToolPath(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s has no go.mod: %v", root, err)
	}
	if _, err := ToolPath("no-such-tool"); err == nil || !strings.Contains(err.Error(), "run `make tools`") {
		t.Fatalf("ToolPath of a missing tool: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fake"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CARTFLOW_TOOLS_BIN", dir)
	if got, err := ToolPath("fake"); err != nil || got != filepath.Join(dir, "fake") {
		t.Fatalf("ToolPath with CARTFLOW_TOOLS_BIN = %q, %v", got, err)
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	l.Close()
}

func TestProcessKillLeavesNoProcess(t *testing.T) {
	t.Parallel()
	// A shell with two background children: Kill must take the whole group.
	p, err := StartProcess("sleepers", exec.Command("sh", "-c", "sleep 300 & sleep 300 & echo started; wait"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.LogTail(), "started") {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	waitGroupGone(t, p.Pid())
}

// TestCrashedParentLeavesNoOrphan re-runs the test binary as a "runner"
// that starts a child and dies without stopping it: Pdeathsig must take the
// child down.
func TestCrashedParentLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	if os.Getenv("DEVSTACK_CRASHING_RUNNER") == "1" {
		p, err := StartProcess("orphan-to-be", exec.Command("sleep", "300"), nil)
		if err != nil {
			os.Exit(2)
		}
		fmt.Println(p.Pid())
		os.Exit(0) // no Stop: simulate a runner that crashes
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashedParentLeavesNoOrphan$")
	cmd.Env = append(os.Environ(), "DEVSTACK_CRASHING_RUNNER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crashing runner: %v (%s)", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("crashing runner printed %q", out)
	}
	waitGroupGone(t, pid)
}

func TestProcessStopEscalates(t *testing.T) {
	t.Parallel()
	p, err := StartProcess("polite", exec.Command("sleep", "300"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop of a process that honours SIGTERM: %v", err)
	}
	// Ignored signals survive exec, so the sleep ignores SIGTERM too.
	p, err = StartProcess("stubborn", exec.Command("sh", "-c", `trap "" TERM; echo ready; sleep 300`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.LogTail(), "ready") {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := p.Stop(300 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop of a process ignoring SIGTERM = %v, want a 'killed' error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop took %s", d)
	}
	waitGroupGone(t, p.Pid())
}

func TestStartFailureReportsLogTail(t *testing.T) {
	t.Parallel()
	// Occupy the port so stripe-mock exits at once.
	l, err := net.Listen("tcp", addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = StartStripeMock(startCtx(t), l.Addr().(*net.TCPAddr).Port, nil)
	if err == nil {
		t.Fatal("StartStripeMock on a busy port succeeded")
	}
	t.Logf("error as reported:\n%v", err)
	if !strings.Contains(err.Error(), "exited before becoming ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error lacks the reason or the log tail: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := startCtx(t)
	dataDir := filepath.Join(t.TempDir(), "pg")
	log := &syncBuffer{}
	start := time.Now()
	pg, err := StartPostgres(ctx, PostgresOptions{DataDir: dataDir, Port: freePort(t), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres: first start (initdb included) in %s", time.Since(start))
	t.Cleanup(func() { _ = pg.Stop() })

	run := func(url, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run(pg.URL(), "SELECT 1")
	run(pg.URL(), "CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")

	testURL, err := pg.CreateDatabase(ctx, "it_isolated")
	if err != nil {
		t.Fatal(err)
	}
	run(testURL, "CREATE TABLE scratch (id int)")
	if testURL, err = pg.CreateDatabase(ctx, "it_isolated"); err != nil {
		t.Fatal(err)
	}
	run(testURL, "CREATE TABLE scratch (id int)") // fresh again: no "already exists"

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGroupGone(t, pg.Process().Pid())

	// A restart on the same directory (a second `make dev`) keeps the data,
	// on whatever port it gets.
	restart := func(what string) {
		t.Helper()
		start := time.Now()
		if pg, err = StartPostgres(ctx, PostgresOptions{DataDir: dataDir, Log: log}); err != nil {
			t.Fatal(err)
		}
		t.Logf("postgres: %s in %s", what, time.Since(start))
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var id int
		if err := conn.QueryRow(ctx, "SELECT id FROM kept").Scan(&id); err != nil || id != 42 {
			t.Fatalf("after %s: SELECT id FROM kept = %d, %v", what, id, err)
		}
	}
	restart("restart after clean stop")

	// A killed server leaves postmaster.pid behind; the next start copes.
	if err := pg.Process().Kill(); err != nil {
		t.Fatal(err)
	}
	waitGroupGone(t, pg.Process().Pid())
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after Kill: %v", err)
	}
	restart("restart after kill (crash recovery)")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTemporal(t *testing.T) {
	t.Parallel()
	start := time.Now()
	tp, err := StartTemporal(startCtx(t), TemporalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("temporal (in-memory, headless): ready in %s", time.Since(start))
	t.Cleanup(func() { _ = tp.Stop() })
	if tp.UIURL() != "" {
		t.Errorf("headless server has UIURL %q", tp.UIURL())
	}
	c, err := client.Dial(client.Options{HostPort: tp.HostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(t.Context(), &client.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.WorkflowService().DescribeNamespace(t.Context(), &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetNamespaceInfo().GetName(); got != "default" {
		t.Fatalf("namespace name %q", got)
	}
	if err := tp.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGroupGone(t, tp.Process().Pid())
}

func TestTemporalWithUIAndDBFile(t *testing.T) {
	t.Parallel()
	ctx := startCtx(t)
	start := time.Now()
	tp, err := StartTemporal(ctx, TemporalOptions{
		DBFile:           filepath.Join(t.TempDir(), "state", "temporal.db"),
		UIPort:           freePort(t),
		SearchAttributes: map[string]string{"CartID": "Keyword"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("temporal (SQLite file, UI): ready in %s", time.Since(start))
	t.Cleanup(func() { _ = tp.Stop() })

	if err := httpGet(ctx, tp.UIURL(), true); err != nil {
		t.Fatalf("UI: %v", err)
	}
	c, err := client.Dial(client.Options{HostPort: tp.HostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := sa.GetCustomAttributes()["CartID"]; got != enums.INDEXED_VALUE_TYPE_KEYWORD {
		t.Fatalf("search attribute CartID has type %v", got)
	}
}

func TestStripeMock(t *testing.T) {
	t.Parallel()
	ctx := startCtx(t)
	log := &syncBuffer{}
	start := time.Now()
	sm, err := StartStripeMock(ctx, freePort(t), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stripe-mock: ready in %s", time.Since(start))
	t.Cleanup(func() { _ = sm.Stop() })

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sm.URL()+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/customers: %s", resp.Status)
	}
	if !strings.Contains(log.String(), "Listening for HTTP") {
		t.Errorf("log writer did not get stripe-mock's output: %q", log.String())
	}
	if strings.Contains(log.String(), "[::]") || strings.Contains(log.String(), "0.0.0.0") {
		t.Errorf("stripe-mock listens beyond 127.0.0.1: %q", log.String())
	}
}

func TestMailpit(t *testing.T) {
	t.Parallel()
	ctx := startCtx(t)
	start := time.Now()
	mp, err := StartMailpit(ctx, MailpitOptions{DBFile: filepath.Join(t.TempDir(), "mailpit.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mailpit: ready in %s", time.Since(start))
	t.Cleanup(func() { _ = mp.Stop() })

	msg := "From: shop@cartflow.test\r\nTo: buyer@example.test\r\nSubject: Your order\r\n\r\nThanks!\r\n"
	if err := smtp.SendMail(mp.SMTPAddr(), nil, "shop@cartflow.test", []string{"buyer@example.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Total    int
		Messages []struct{ Subject string }
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, mp.UIURL()+"/api/v1/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || len(list.Messages) != 1 || list.Messages[0].Subject != "Your order" {
		t.Fatalf("messages = %+v", list)
	}
}

func TestStartRespectsContextDeadline(t *testing.T) {
	t.Parallel()
	// A "tool" that never becomes ready: the wait must end at the deadline,
	// report it, and leave no process behind.
	p, err := StartProcess("mute", exec.Command("sh", "-c", "echo booting; sleep 300"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = p.waitReady(ctx, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "booting") {
		t.Fatalf("waitReady = %v, want deadline error with log tail", err)
	}
	waitGroupGone(t, p.Pid())
	if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists: %v", p.Pid(), err)
	}
}
