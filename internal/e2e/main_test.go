//go:build integration

// Package e2e tests cartflow end to end over HTTP against the real stack: PostgreSQL, the
// Temporal dev server, stripe-mock behind the Stripe test-mode layer, and the worker and BFF
// as separate processes (so that a test can SIGKILL the worker).
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/stack"
)

var (
	dev      *stack.Stack
	db       *pgxpool.Pool
	temporal client.Client
	// codecConverter is the worker's data converter, payload codec included.
	codecConverter converter.DataConverter
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cartflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	obsEnv, stopSink, err := observabilityEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopSink()
	// The storefront's port is fixed before the BFF starts, which must know its origin; only
	// the browser journeys start the storefront itself.
	storefrontPort, err := stack.FreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dev, err = stack.Start(ctx, stack.Options{
		Dir: dir, DatabaseURL: os.Getenv("DATABASE_URL"), Mailpit: true, StorefrontPort: storefrontPort,
		// A short wait makes the 202 path cheap to reach in the crash test. The schedules stay
		// paused so that only the tests trigger them.
		// The limits are off but for the card-testing defence's per-IP limit, which
		// TestCardTestingIsBlockedByIP trips from addresses of its own (the BFF trusts the
		// X-Forwarded-For of 127.0.0.1 here); every other test comes from 127.0.0.1 itself.
		Env: append(append([]string{"CHECKOUT_WAIT=5s", "LOG_LEVEL=info", "SCHEDULES_PAUSED=true",
			"AUTHENTICATION_TIMEOUT=10s"}, stack.LimitsOff...), append([]string{
			"DECLINE_LIMIT_PER_IP=" + strconv.Itoa(cardTestingThreshold)}, obsEnv...)...),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start stack:", err)
		return 1
	}
	defer dev.Stop()
	if db, err = pgxpool.New(ctx, dev.DatabaseURL); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	if staffKey, supportKey, err = createStaffKeys(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create staff keys:", err)
		return 1
	}
	// The tests read results and queries as the BFF does: through the payload codec, under the
	// development keyring the stack's worker and BFF use.
	if codecConverter, err = e2ekit.DevDataConverter(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if temporal, err = e2ekit.DialTemporal(dev.Temporal.HostPort(), codecConverter); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer temporal.Close()

	code := m.Run()
	if code != 0 {
		for _, name := range []string{"worker", "api"} {
			if b, err := os.ReadFile(dir + "/logs/" + name + ".log"); err == nil {
				fmt.Fprintf(os.Stderr, "--- %s log (last 4 KiB) ---\n%s\n", name, tail(b, 4096))
			}
		}
	}
	return code
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// newKey returns a fresh Idempotency-Key, as a storefront would for each checkout.
func newKey(t testing.TB) string {
	t.Helper()
	return "e2e-" + strings.ToLower(rand.Text())
}

// The checkout request and answer are the storefront's, shared with the fault suite.
type (
	checkoutBody = e2ekit.CheckoutRequest
	item         = e2ekit.Item
	checkoutResp = e2ekit.CheckoutAnswer
)

func validBody(email, token string) checkoutBody { return e2ekit.Checkout(email, token) }

// post sends a checkout with raw as the body and key as the Idempotency-Key (none when empty).
func post(t testing.TB, key string, raw []byte) (int, checkoutResp) {
	t.Helper()
	return do(t, checkoutRequest(key, raw))
}

// checkoutRequest is a checkout POST with raw as the body and key as the Idempotency-Key (none when empty).
func checkoutRequest(key string, raw []byte) *http.Request {
	return e2ekit.NewCheckoutRequest(context.Background(), dev.APIURL, key, raw)
}

func postJSON(t testing.TB, key string, body checkoutBody) (int, checkoutResp) {
	t.Helper()
	raw, _ := json.Marshal(body) // a plain struct always marshals
	return post(t, key, raw)
}

func get(t testing.TB, path string) (int, checkoutResp) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, dev.APIURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// do sends req. Failures are reported with Errorf, not Fatal, because tests call it from
// goroutines too; the caller then sees status 0 and fails on its own assertions.
func do(t testing.TB, req *http.Request) (int, checkoutResp) {
	t.Helper()
	code, _, out := send(t, req)
	return code, out
}

// send is do, with the response's header too.
func send(t testing.TB, req *http.Request) (int, http.Header, checkoutResp) {
	t.Helper()
	var out checkoutResp
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
		return 0, nil, out
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("%s %s: status %d, body is not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// waitStatus polls the read model until the checkout reaches want or the deadline passes.
func waitStatus(t testing.TB, checkoutID, want string, within time.Duration) checkoutResp {
	t.Helper()
	deadline := time.Now().Add(within)
	var last checkoutResp
	for time.Now().Before(deadline) {
		var code int
		code, last = get(t, "/api/v1/checkouts/"+checkoutID)
		if code == http.StatusOK && last.Status == want {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("checkout %s: status %q after %s, want %q", checkoutID, last.Status, within, want)
	return last
}

// chargesFor returns the PaymentIntents the Stripe layer holds for a checkout's charge key.
func chargesFor(key string) []stripefake.PaymentIntent {
	return dev.StripeProxy.PaymentIntentsWithMetadata("cartflow_idempotency_key", "checkout-"+key+"/charge")
}

// executedCreates counts PaymentIntent creations for the key that ran (not idempotent replays).
func executedCreates(key string) int {
	n := 0
	for _, r := range dev.StripeProxy.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/payment_intents" && r.IdempotencyKey == "checkout-"+key+"/charge" && !r.Replayed {
			n++
		}
	}
	return n
}

// providerRequests counts every request the Stripe layer saw whose idempotency key belongs to the checkout.
func providerRequests(key string) int {
	n := 0
	for _, r := range dev.StripeProxy.Requests() {
		if strings.HasPrefix(r.IdempotencyKey, "checkout-"+key+"/") {
			n++
		}
	}
	return n
}

func queryInt(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
