package stack

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a started child process running in its own process group,
// whose stdout and stderr go to a writer.
//
// The own group lets Stop and Kill reach every descendant (postgres
// backends, for instance) and keeps a terminal's Ctrl-C away from the
// children, so the runner decides the shutdown order.
type Process struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{}
	err  error // result of cmd.Wait, valid once done is closed
}

// StartProcess starts cmd in a new process group, sending its stdout and
// stderr to logw (nil discards them).
//
// The child also gets SIGKILL if the starting thread dies (Pdeathsig), so a
// crashed `make dev` runner does not leave servers holding their ports. Go
// keeps its threads alive, so this only fires when the process dies —
// unless the caller starts processes from a goroutine that locked its OS
// thread and exits.
func StartProcess(name string, cmd *exec.Cmd, logw io.Writer) (*Process, error) {
	if logw == nil {
		logw = io.Discard
	}
	p := &Process{name: name, cmd: cmd, tail: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	// One writer value for both streams makes exec use a single pipe, so
	// interleaved stdout/stderr lines keep their order.
	w := &teeWriter{tail: p.tail, log: logw}
	cmd.Stdout, cmd.Stderr = w, w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	// A grandchild that survives its parent would otherwise keep the output
	// pipe open and block Wait (and so Done) forever.
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 2 * time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Stop sends SIGTERM to the process group, waits up to timeout for the
// process to exit, then sends SIGKILL. It returns an error only if the
// process had to be killed or could not be signalled.
func (p *Process) Stop(timeout time.Duration) error {
	return p.shutdown(-p.Pid(), syscall.SIGTERM, timeout)
}

// shutdown sends sig to target (a pid, or a negated pgid) and waits up to
// timeout for the process to exit. Whatever is left of the group afterwards
// is killed, so nothing outlives a stopped Process.
func (p *Process) shutdown(target int, sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return p.Kill() // sweep stragglers of a process that already exited
	default:
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.Kill()
		return fmt.Errorf("stack: signal %s: %w", p.name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.Kill()
	case <-t.C:
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("stack: %s did not exit within %s of %s; killed", p.name, timeout, sig)
	}
}

// Kill sends SIGKILL to the whole process group and waits for the process
// to exit. Crash tests use it to simulate a power cut.
func (p *Process) Kill() error {
	if err := syscall.Kill(-p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stack: kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Err returns how the process exited (the result of exec.Cmd.Wait); it is
// nil until Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// LogTail returns the last few KiB of the process's output, to put into
// error messages when a component dies.
func (p *Process) LogTail() string { return p.tail.String() }

// teeWriter copies output to the tail buffer and, best effort, to the
// caller's log: a failing log writer must not break the child's pipe.
type teeWriter struct {
	tail *tailBuffer
	log  io.Writer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.tail.Write(b)
	_, _ = w.log.Write(b)
	return len(b), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

// String returns the buffered output starting at a line boundary.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(t.buf) >= t.max {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return strings.TrimRight(s, "\n")
}
