//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/e2ekit"
	"github.com/cartflow/cartflow/internal/domain"
)

// declinedEvery makes every n-th checkout of a batch pay with a card that declines, so that
// every scenario has clean failures as well as purchases.
const declinedEvery = 8

// checkout is one purchase as a storefront makes it, and what its client saw.
type checkout struct {
	Key  string
	Body []byte
	// Declines says it pays with Stripe's card that always declines.
	Declines bool

	mu sync.Mutex
	// Accepted says the BFF answered 201 or 202 at least once: the checkout exists.
	Accepted   bool
	Answered   bool // any HTTP answer at all
	CheckoutID string
	// Final is the final status the client read (completed, failed, …); "" when it read none.
	Final string
	// Refusal is the code of a 4xx that ended the attempt, such as idempotency_key_reused.
	Refusal string
	// NotFound counts the reads of the status URL of an accepted checkout answered 404.
	NotFound int
}

// newCheckouts makes n checkouts whose keys start with prefix.
func newCheckouts(prefix string, n int) []*checkout {
	out := make([]*checkout, n)
	for i := range out {
		key := fmt.Sprintf("%s-%s-%03d", prefix, randomText(), i)
		token := "pm_card_visa"
		if i%declinedEvery == declinedEvery-1 {
			token = "pm_card_chargeDeclined"
		}
		raw, _ := json.Marshal(e2ekit.Checkout(key+"@example.com", token)) // a plain struct always marshals
		out[i] = &checkout{Key: key, Body: raw, Declines: token != "pm_card_visa"}
	}
	return out
}

// randomText is ten random lower-case letters and digits, to keep the keys of runs apart.
func randomText() string { return strings.ToLower(rand.Text()[:10]) }

// shopper sends checkouts to the BFF as storefronts would, retrying what the BFF asks to be
// retried, and tallies every answer. One shopper serves one scenario.
type shopper struct {
	api  string
	http *http.Client

	mu sync.Mutex
	// answers counts the answers by status; 0 counts requests that got none.
	answers map[int]int
	// serverErrors describes every 5xx answer other than 503.
	serverErrors []string
}

func newShopper(api string) *shopper {
	return &shopper{api: api, answers: map[int]int{}, http: &http.Client{
		// Longer than the BFF's own wait (CHECKOUT_WAIT, 5 s) and its read of the outcome after it.
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}}
}

// run sends the checkouts, one every interval, at most *concurrency at a time, and returns when
// each has reached a final state or ctx ends.
func (s *shopper) run(ctx context.Context, cs []*checkout, interval time.Duration) {
	slots := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	for i, c := range cs {
		if i > 0 && !sleep(ctx, interval) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.buy(ctx, c)
		})
	}
	wg.Wait()
}

// buy makes one checkout: it posts until the BFF takes it, retrying 503, 409 request_in_progress
// and lost answers under the same key as the BFF's contract allows, then follows the checkout
// until its outcome is final.
func (s *shopper) buy(ctx context.Context, c *checkout) {
	for ctx.Err() == nil {
		status, header, ans := s.send(ctx, e2ekit.NewCheckoutRequest(ctx, s.api, c.Key, c.Body))
		c.mu.Lock()
		c.Answered = c.Answered || status != 0
		if status == http.StatusCreated || status == http.StatusAccepted {
			c.Accepted, c.CheckoutID = true, ans.CheckoutID
		}
		c.mu.Unlock()
		switch {
		case (status == http.StatusCreated || status == http.StatusAccepted) && final(ans.Status):
			c.setFinal(ans.Status)
			return
		case (status == http.StatusCreated || status == http.StatusAccepted) && ans.CheckoutID != "":
			s.follow(ctx, c, ans.CheckoutID)
			return
		case status >= 400 && status < 500 && status != http.StatusConflict && status != http.StatusTooManyRequests:
			c.mu.Lock()
			if ans.Error != nil {
				c.Refusal = ans.Error.Code
			} else {
				c.Refusal = strconv.Itoa(status)
			}
			c.mu.Unlock()
			return
		}
		// 503, 409, 429, another 5xx, or no answer: the same request again, after the wait asked.
		sleep(ctx, retryAfter(header))
	}
}

// follow reads the checkout's status until it is final or ctx ends.
func (s *shopper) follow(ctx context.Context, c *checkout, id string) {
	for sleep(ctx, 500*time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.api+"/api/v1/checkouts/"+id, nil)
		status, _, ans := s.send(ctx, req)
		switch {
		case status == http.StatusOK && final(ans.Status):
			c.setFinal(ans.Status)
			return
		case status == http.StatusNotFound:
			// The BFF said 202 with this status URL, but the order is not written yet.
			c.mu.Lock()
			c.NotFound++
			c.mu.Unlock()
		}
	}
}

func (c *checkout) setFinal(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Final = status
}

// send makes the request and tallies its answer.
func (s *shopper) send(ctx context.Context, req *http.Request) (int, http.Header, e2ekit.CheckoutAnswer) {
	var ans e2ekit.CheckoutAnswer
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.tally(0, req, nil)
		}
		return 0, nil, ans
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &ans) // a body that is not JSON leaves ans empty, and the status says enough
	s.tally(resp.StatusCode, req, body)
	return resp.StatusCode, resp.Header, ans
}

func (s *shopper) tally(status int, req *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[status]++
	if status >= 500 && status != http.StatusServiceUnavailable {
		key := req.Header.Get("Idempotency-Key")
		s.serverErrors = append(s.serverErrors, fmt.Sprintf("%s %s (key %q) answered %d: %.300s",
			req.Method, req.URL.Path, key, status, body))
	}
}

// tallies returns the answers counted so far by status, and the 5xx other than 503.
func (s *shopper) tallies() (map[string]int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for status, n := range s.answers {
		label := strconv.Itoa(status)
		if status == 0 {
			label = "no answer"
		}
		out[label] = n
	}
	return out, append([]string(nil), s.serverErrors...)
}

// final says an order status is one a checkout ends in.
func final(status string) bool { return domain.OrderStatus(status).Final() }

// retryAfter is the wait an answer asks for (Retry-After, in seconds), one second when it names
// none, and at most five.
func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, 5*time.Second)
	}
	return time.Second
}

// sleep waits d, or less when ctx ends first, and says whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
