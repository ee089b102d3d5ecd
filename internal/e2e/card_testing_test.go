//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// cardTestingThreshold is the e2e stack's DECLINE_LIMIT_PER_IP: declined payments from one IP,
// within the decline window, after which its payments are refused before any provider call.
const cardTestingThreshold = 20

// TestCardTestingIsBlockedByIP simulates a card-testing attack on the real stack: 200 checkouts
// with a declining card from one IP, while 50 customers from other IPs buy in parallel. The
// attacker's checkouts stop reaching Stripe once the IP has cardTestingThreshold declines (a
// few in flight together when it is crossed may still arrive, and the worker refuses those
// itself); the refused ones get 429 too_many_declines with Retry-After, and start nothing; every
// legitimate checkout completes.
func TestCardTestingIsBlockedByIP(t *testing.T) {
	tag := strings.ToLower(newKey(t)[4:12])
	const attacks, customers, concurrency = 200, 50, 8
	type result struct {
		key, code string
		status    int
		retry     string
	}
	checkout := func(ip, email, token string) result {
		key := newKey(t)
		raw, _ := json.Marshal(validBody(email, token))
		req := checkoutRequest(key, raw)
		req.Header.Set("X-Forwarded-For", ip)
		status, header, resp := send(t, req)
		r := result{key: key, status: status, retry: header.Get("Retry-After")}
		if resp.Failure != nil {
			r.code = resp.Failure.Code
		}
		if resp.Error != nil {
			r.code = resp.Error.Code
		}
		return r
	}

	var mu sync.Mutex
	var attackResults, customerResults []result
	var wg sync.WaitGroup
	work := make(chan func(), attacks+customers)
	for i := range attacks {
		work <- func() {
			r := checkout("203.0.113.7", fmt.Sprintf("tester-%s-%d@example.com", tag, i), "pm_card_chargeDeclined")
			mu.Lock()
			attackResults = append(attackResults, r)
			mu.Unlock()
		}
		if i%4 == 0 && i/4 < customers {
			n := i / 4
			work <- func() {
				r := checkout(fmt.Sprintf("198.51.100.%d", n+1), fmt.Sprintf("buyer-%s-%d@example.com", tag, n), "pm_card_visa")
				mu.Lock()
				customerResults = append(customerResults, r)
				mu.Unlock()
			}
		}
	}
	close(work)
	for range concurrency {
		wg.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	wg.Wait()

	reachedStripe, blocked := 0, 0
	for _, r := range attackResults {
		reachedStripe += executedCreates(r.key)
		switch {
		case r.status == http.StatusTooManyRequests:
			blocked++
			if r.code != "too_many_declines" || r.retry == "" {
				t.Errorf("a blocked attempt: %+v, want too_many_declines with Retry-After", r)
			}
			if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1`, r.key); n != 0 {
				t.Errorf("a checkout refused at the door wrote %d orders", n)
			}
		case r.code != "card_declined" && r.code != "too_many_declines":
			t.Errorf("an attack attempt ended %+v", r)
		}
	}
	if reachedStripe > cardTestingThreshold+concurrency {
		t.Errorf("%d of the attacker's payments reached Stripe, want at most %d (the threshold) + %d in flight",
			reachedStripe, cardTestingThreshold, concurrency)
	}
	if blocked < attacks-cardTestingThreshold-2*concurrency {
		t.Errorf("only %d of %d attempts were refused at the door", blocked, attacks)
	}
	if len(customerResults) != customers {
		t.Fatalf("%d customer checkouts ran, want %d", len(customerResults), customers)
	}
	for _, r := range customerResults {
		if r.status != http.StatusCreated {
			t.Errorf("a legitimate checkout from another IP: %+v", r)
		}
	}
	t.Logf("attacker: %d attempts, %d reached Stripe, %d refused with 429; customers: %d completed",
		attacks, reachedStripe, blocked, len(customerResults))
}
