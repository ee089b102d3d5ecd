//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/stack"
)

// browserJourneys are the journeys web/e2e must have run, each reporting its checkouts in
// web/test-results/journeys.jsonl; a journey that reports nothing fails the test, so that a
// suite that skips cannot pass.
var browserJourneys = []string{"buy", "decline", "double-click", "trial", "3ds", "paypal", "braintree", "sign-in", "cancel-resume"}

// journey is one line of web/test-results/journeys.jsonl: a checkout a browser journey made, and
// the order status Postgres must hold for it.
type journey struct {
	Journey    string `json:"journey"`
	CheckoutID string `json:"checkout_id"`
	Email      string `json:"email"`
	Expect     string `json:"expect"`
}

// TestBrowserJourneys builds the storefront, serves it with `next start` against this stack, and
// runs its Playwright journeys in Debian's Chromium. Then it checks what the browser cannot see:
// each journey's order in Postgres, and for the double click, one PaymentIntent at the Stripe layer.
func TestBrowserJourneys(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	chromium := cmp.Or(os.Getenv("CHROMIUM_PATH"), "/usr/bin/chromium")
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the browser journeys need Chromium at %s (apt-get install -y --no-install-recommends chromium fonts-liberation): %v", chromium, err)
	}
	if err := dev.StartWeb(ctx, stack.WebProduction); err != nil {
		t.Fatal(err)
	}
	dir, err := stack.WebDir()
	if err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(dir, "test-results", "journeys.jsonl")
	_ = os.Remove(results)
	cmd := exec.CommandContext(ctx, "npm", "run", "e2e")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NEXT_TELEMETRY_DISABLED=1", "STOREFRONT_URL="+dev.StorefrontURL,
		"MAILPIT_URL="+dev.Mailpit.UIURL(), "CHROMIUM_PATH="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("playwright:\n%s", tail(out, 6000))
	if err != nil {
		t.Fatalf("playwright failed: %v (screenshots in %s)", err, filepath.Join(dir, "test-results"))
	}

	raw, err := os.ReadFile(results)
	if err != nil {
		t.Fatalf("the journeys reported nothing: %v", err)
	}
	var seen []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var j journey
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil || j.CheckoutID == "" || j.Expect == "" {
			t.Fatalf("journey line %q: %v", sc.Text(), err)
		}
		seen = append(seen, j.Journey)
		var status, key string
		waitFor(t, "the order of the "+j.Journey+" journey to be "+j.Expect, 30*time.Second, func() bool {
			err := db.QueryRow(ctx, `SELECT status, idempotency_key FROM orders WHERE checkout_id = $1`, j.CheckoutID).Scan(&status, &key)
			return err == nil && status == j.Expect
		})
		switch j.Journey {
		case "trial":
			if n := queryInt(t, `SELECT count(*) FROM orders WHERE checkout_id = $1 AND total_amount = 0`, j.CheckoutID); n != 1 {
				t.Errorf("the trial's order charged something")
			}
		case "sign-in":
			if s := queryString(t, `SELECT status FROM users WHERE email = $1`, j.Email); s != "confirmed" {
				t.Errorf("after signing in by the link the customer is %s, want confirmed", s)
			}
		}
		if j.Journey == "double-click" {
			if pis, n := chargesFor(key), executedCreates(key); len(pis) != 1 || n != 1 {
				t.Errorf("a double click on Pay made %d PaymentIntents (%d created), want 1", len(pis), n)
			}
			if n := queryInt(t, `SELECT count(*) FROM orders WHERE customer_email = $1`, j.Email); n != 1 {
				t.Errorf("a double click on Pay made %d orders, want 1", n)
			}
		}
	}
	for _, want := range browserJourneys {
		if !slices.Contains(seen, want) {
			t.Errorf("the %s journey reported no checkout", want)
		}
	}
}
