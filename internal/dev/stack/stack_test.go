package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
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
