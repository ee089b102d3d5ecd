//go:build integration

package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

	// Restart brings the stopped cluster back on its port, so that clients' URLs stay valid.
	if err := pg.Restart(ctx); err == nil {
		t.Fatal("Restart of a running cluster succeeded")
	}
	url := pg.URL()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if pg.URL() != url {
		t.Errorf("URL after Restart = %s, want %s", pg.URL(), url)
	}
	run(url, "SELECT id FROM kept")
	// And after a crash: Kill, then Restart replays the log on the same port.
	run(url, "INSERT INTO kept VALUES (43)")
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	run(url, "DELETE FROM kept WHERE id = 43") // committed before the crash, so there to delete

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
		UICodecEndpoint:  "http://127.0.0.1:9999/codec",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("temporal (SQLite file, UI): ready in %s", time.Since(start))
	t.Cleanup(func() { _ = tp.Stop() })

	if err := GetOK(ctx, tp.UIURL(), io.Discard); err != nil {
		t.Fatalf("UI: %v", err)
	}
	// The UI tells the browser where the codec endpoint is in its settings.
	resp, err := http.Get(tp.UIURL() + "/api/v1/settings")
	if err != nil {
		t.Fatal(err)
	}
	var settings struct{ Codec struct{ Endpoint string } }
	err = json.NewDecoder(resp.Body).Decode(&settings)
	resp.Body.Close()
	if err != nil || settings.Codec.Endpoint != "http://127.0.0.1:9999/codec" {
		t.Errorf("UI settings: codec endpoint %q (%v), want the one passed as --ui-codec-endpoint", settings.Codec.Endpoint, err)
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

// A server on a database file comes back from a stop or a crash on the same address with the
// workflows it had; one in memory refuses to restart, since it would come back empty.
func TestTemporalRestartKeepsItsWorkflows(t *testing.T) {
	t.Parallel()
	ctx := startCtx(t)
	tp, err := StartTemporal(ctx, TemporalOptions{DBFile: filepath.Join(t.TempDir(), "temporal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Stop() })
	if err := tp.Restart(ctx); err == nil {
		t.Fatal("Restart of a running server succeeded")
	}
	c, err := client.Dial(client.Options{HostPort: tp.HostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No worker polls this queue: the workflow stays running, as the server recorded it.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "kept", TaskQueue: "nobody-polls"}, "Kept")
	if err != nil {
		t.Fatal(err)
	}
	for _, stop := range []func() error{tp.Stop, tp.Kill} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := tp.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		// The client dialled before the restart reconnects by itself.
		desc, err := c.DescribeWorkflowExecution(ctx, "kept", "")
		if err != nil || desc.GetWorkflowExecutionInfo().GetExecution().GetRunId() != run.GetRunID() {
			t.Fatalf("after a restart the workflow is %v (%v), want run %s", desc.GetWorkflowExecutionInfo(), err, run.GetRunID())
		}
	}

	mem, err := StartTemporal(ctx, TemporalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Stop() })
	if err := mem.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := mem.Restart(ctx); err == nil {
		t.Fatal("an in-memory server restarted")
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
