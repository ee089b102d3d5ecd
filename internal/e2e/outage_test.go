//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// TestPostgresOutageIs503AndCheckoutsResume stops PostgreSQL while a checkout's charge is at the
// provider. While the database is down every BFF answer that needs it is a 503 with Retry-After,
// /readyz names postgres, and nothing answers 500; once it is back, the checkout begun before the
// outage completes, charged exactly once, because Temporal retried the step that failed.
func TestPostgresOutageIs503AndCheckoutsResume(t *testing.T) {
	// Not parallel: it takes the database away from every other test.
	if dev.Postgres == nil {
		t.Skip("DATABASE_URL names a database this test cannot stop")
	}
	t.Cleanup(func() { restorePostgres(t) })
	errorsBefore := serverErrors(t)

	// The provider takes the charge at once and holds its answer, so that the database goes
	// away between the charge and the ledger write that follows it.
	key := newKey(t)
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1, DelayAfterMS: 2000})
	type outcome struct {
		code int
		res  checkoutResp
	}
	first := make(chan outcome, 1)
	go func() {
		c, r := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
		first <- outcome{c, r}
	}()
	waitFor(t, "the charge to reach the provider", 30*time.Second, func() bool { return len(chargesFor(key)) > 0 })
	if err := dev.Postgres.Stop(); err != nil {
		t.Fatalf("stop postgres: %v", err)
	}

	// The request in flight when the database went away: the BFF's wait runs out, and Temporal,
	// which still answers, knows the checkout.
	o := <-first
	if o.code != http.StatusAccepted || !checkoutIDShape.MatchString(o.res.CheckoutID) {
		t.Fatalf("POST in flight during the outage = %d %+v, want 202 with the checkout id", o.code, o.res)
	}
	other := newKey(t)
	otherBody, _ := json.Marshal(validBody(strings.ToLower(other)+"@example.com", "pm_card_visa"))
	getCheckout, _ := http.NewRequest(http.MethodGet, dev.APIURL+"/api/v1/checkouts/"+o.res.CheckoutID, nil)
	getProducts, _ := http.NewRequest(http.MethodGet, dev.APIURL+"/api/v1/products", nil)
	for name, req := range map[string]*http.Request{
		"POST a new checkout": checkoutRequest(other, otherBody),
		"GET the checkout":    getCheckout,
		"GET the products":    getProducts,
	} {
		code, header, res := send(t, req)
		if code != http.StatusServiceUnavailable || res.Error == nil || res.Error.Code != "service_unavailable" {
			t.Errorf("%s while postgres is down = %d %+v, want 503 service_unavailable", name, code, res.Error)
		}
		if s, err := strconv.Atoi(header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s while postgres is down: Retry-After %q, want seconds", name, header.Get("Retry-After"))
		}
	}
	code, header, ready := readyz(t)
	if code != http.StatusServiceUnavailable || ready.Status != "unavailable" || ready.Checks["postgres"] != "down" ||
		ready.Checks["temporal"] != "ok" || header.Get("Retry-After") == "" {
		t.Errorf("/readyz while postgres is down = %d %+v (Retry-After %q), want 503 with postgres down and temporal ok",
			code, ready, header.Get("Retry-After"))
	}
	if workflowExists(t, "checkout-"+other) {
		t.Error("the refused checkout started a workflow")
	}

	if err := dev.Postgres.Restart(context.Background()); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
	done := waitStatus(t, o.res.CheckoutID, "completed", 90*time.Second)
	pis := chargesFor(key)
	if len(pis) != 1 || pis[0].Status != "succeeded" || pis[0].AmountReceived != done.Amount || done.Amount != 6200 {
		t.Fatalf("provider holds %+v for a checkout of %d, want exactly one succeeded PaymentIntent of 6200", pis, done.Amount)
	}
	var status, ref string
	if err := db.QueryRow(context.Background(), `SELECT o.status, p.provider_ref FROM orders o JOIN payments p ON p.order_id = o.id
		WHERE o.idempotency_key = $1 AND p.kind = 'charge' AND p.status = 'succeeded'`, key).Scan(&status, &ref); err != nil {
		t.Fatalf("ledger: %v", err)
	}
	if status != "completed" || ref != pis[0].ID {
		t.Errorf("order %s with charge %s, want completed with %s", status, ref, pis[0].ID)
	}
	// The work in flight resumed by retrying: the charge step failed on the ledger write while
	// the database was down, and its next attempt found the charge instead of making another.
	if scheduled, attempt := activityRuns(history(t, "checkout-"+key), "Charge"); scheduled != 1 || attempt < 2 {
		t.Errorf("Charge scheduled %d times, completed on attempt %d; want once, retried after the outage", scheduled, attempt)
	}
	if n := executedCreates(key); n != 1 {
		t.Errorf("%d PaymentIntents created at the provider, want 1", n)
	}
	if after := serverErrors(t); after != errorsBefore {
		t.Errorf("the BFF answered %v requests with 500 during the test, want none", after-errorsBefore)
	}
}

// restorePostgres gives every later test its database back, whatever this test left behind.
func restorePostgres(t *testing.T) {
	dev.StripeProxy.ClearFaults()
	select {
	case <-dev.Postgres.Process().Done():
		if err := dev.Postgres.Restart(context.Background()); err != nil {
			t.Errorf("restart postgres: %v", err)
			return
		}
	default:
	}
	waitFor(t, "/readyz to answer 200", 30*time.Second, func() bool {
		code, _, _ := readyz(t)
		return code == http.StatusOK
	})
}

// readyReport is the body of /readyz.
type readyReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func readyz(t *testing.T) (int, http.Header, readyReport) {
	t.Helper()
	var out readyReport
	resp, err := http.Get(dev.APIInternalURL + "/readyz")
	if err != nil {
		t.Errorf("GET /readyz: %v", err)
		return 0, nil, out
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("/readyz: status %d, body is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// serverErrors is how many requests the BFF has answered with 500, by its own metrics.
func serverErrors(t *testing.T) float64 {
	t.Helper()
	return e2ekit.AnswersWithStatus(scrape(t, dev.APIInternalURL+"/metrics"), func(status int) bool { return status == http.StatusInternalServerError })
}
