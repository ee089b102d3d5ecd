package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Shop is a shopper's side of the BFF, as the storefront calls it, with Mailpit standing in for
// the shopper's inbox.
type Shop struct {
	// APIURL is the BFF's base URL; MailpitURL Mailpit's web API.
	APIURL, MailpitURL string
	// HTTP sends every request; it should keep connections alive (Client).
	HTTP *http.Client
}

// Checkout is the BFF's answer to a checkout.
type Checkout struct {
	CheckoutID string `json:"checkout_id"`
	Status     string `json:"status"`
	OrderID    string `json:"order_id"`
}

// checkoutBody is the storefront's request: two lines of the development catalog, paid with
// Stripe's test card that succeeds.
type checkoutBody struct {
	Email   string         `json:"email"`
	Name    string         `json:"name"`
	Items   []checkoutItem `json:"items"`
	Payment struct {
		Provider string `json:"provider"`
		Token    string `json:"token"`
	} `json:"payment"`
}

type checkoutItem struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Buy sends a checkout under the Idempotency-Key key for email, and returns the answer when it
// is 201 "completed"; any other answer is a *NotCompletedError, since a benchmark of checkouts
// that did not complete would measure something else.
func (s *Shop) Buy(ctx context.Context, key, email string) (Checkout, error) {
	body := checkoutBody{Email: email, Name: "Ada Lovelace", Items: []checkoutItem{{"tshirt-classic", 2}, {"mug-enamel", 1}}}
	body.Payment.Provider, body.Payment.Token = "stripe", "pm_card_visa"
	raw, _ := json.Marshal(body) // a plain struct always marshals
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL+"/api/v1/checkouts", bytes.NewReader(raw))
	if err != nil {
		return Checkout{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	var out Checkout
	code, answer, err := s.do(req, &out)
	if err != nil {
		return out, fmt.Errorf("checkout %s: %w", key, err)
	}
	if code != http.StatusCreated || out.Status != "completed" {
		return out, &NotCompletedError{Key: key, Code: code, Answer: answer}
	}
	return out, nil
}

// NotCompletedError is a checkout the BFF answered with something other than 201 "completed":
// a 202 when the checkout outlasted CHECKOUT_WAIT, a decline, a refusal.
type NotCompletedError struct {
	Key    string
	Code   int
	Answer string
}

func (e *NotCompletedError) Error() string {
	return fmt.Sprintf("checkout %s: %d %s, want 201 completed", e.Key, e.Code, e.Answer)
}

// BuyAndWait is Buy as the storefront goes about it: an answer that says to retry with the same
// Idempotency-Key (503, or 409 while the first request is still running) is retried, and a
// checkout that outlasted the BFF's wait (202) is polled until it completes; a minute in all.
func (s *Shop) BuyAndWait(ctx context.Context, key, email string) (Checkout, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := s.Buy(ctx, key, email)
		var nc *NotCompletedError
		if !errors.As(err, &nc) {
			return out, err
		}
		switch {
		case nc.Code == http.StatusAccepted && out.CheckoutID != "":
			return s.waitCompleted(ctx, out, err)
		case nc.Code != http.StatusServiceUnavailable && nc.Code != http.StatusConflict:
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("%w, still after a minute of retries", err)
		case <-time.After(time.Second):
		}
	}
}

// waitCompleted polls a checkout's status until it is completed or ctx is done; pending is the
// error to report then.
func (s *Shop) waitCompleted(ctx context.Context, out Checkout, pending error) (Checkout, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL+"/api/v1/checkouts/"+out.CheckoutID, nil)
		if err != nil {
			return out, err
		}
		var now Checkout
		if code, _, err := s.do(req, &now); err == nil && code == http.StatusOK && now.Status == "completed" {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("%w, nor completed within a minute", pending)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// signInLinkToken is how a magic link carries its token in the sign-in email.
var signInLinkToken = regexp.MustCompile(`/sign-in\?token=([A-Za-z0-9_-]{43})`)

// SignIn signs email in by the magic link, as a customer does: asks for a link, reads it from
// the email in Mailpit, exchanges its token for a session, and returns the session cookie's
// value. It expects no earlier sign-in email to email.
func (s *Shop) SignIn(ctx context.Context, email string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL+"/api/v1/auth/sign-in-links", strings.NewReader(`{"email":"`+email+`"}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if code, answer, err := s.do(req, nil); err != nil || code != http.StatusAccepted {
		return "", fmt.Errorf("ask for a sign-in link: %d %s %v", code, answer, err)
	}
	token, err := s.signInToken(ctx, email)
	if err != nil {
		return "", err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL+"/api/v1/auth/sessions", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("exchange the sign-in link: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "cartflow_session" && c.Value != "" && resp.StatusCode == http.StatusCreated {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("exchange the sign-in link: %s without a session cookie", resp.Status)
}

// signInToken waits for the sign-in email to email and returns the token in its link.
func (s *Shop) signInToken(ctx context.Context, email string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var list struct {
			Messages []struct {
				ID      string `json:"ID"`
				Subject string `json:"Subject"`
			} `json:"messages"`
		}
		if err := s.mailpit(ctx, "/api/v1/search?limit=50&query="+url.QueryEscape("to:"+email), &list); err != nil {
			return "", err
		}
		for _, m := range list.Messages {
			if !strings.Contains(strings.ToLower(m.Subject), "sign-in link") {
				continue
			}
			var msg struct {
				Text string `json:"Text"`
			}
			if err := s.mailpit(ctx, "/api/v1/message/"+url.PathEscape(m.ID), &msg); err != nil {
				return "", err
			}
			if t := signInLinkToken.FindStringSubmatch(msg.Text); t != nil {
				return t[1], nil
			}
			return "", fmt.Errorf("no sign-in link in the email to %s", email)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no sign-in email to %s in Mailpit: %w", email, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Shop) mailpit(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MailpitURL+path, nil)
	if err != nil {
		return err
	}
	code, answer, err := s.do(req, v)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("mailpit %s: %d %s %v", path, code, answer, err)
	}
	return nil
}

// do sends req and decodes a JSON answer into v (when not nil); it returns the status and, for
// error messages, the start of the body.
func (s *Shop) do(req *http.Request, v any) (int, string, error) {
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return resp.StatusCode, string(raw[:min(len(raw), 200)]), fmt.Errorf("answer is not JSON: %w", err)
		}
	}
	return resp.StatusCode, string(raw[:min(len(raw), 200)]), nil
}

// Get sends a GET for path with the given cookie (none when empty), reads the answer to its
// end so that the connection is reused, and reports its status.
func (s *Shop) Get(ctx context.Context, path, cookie string) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL+path, nil)
	if err != nil {
		return Outcome{Err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return Outcome{Err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return Outcome{Status: resp.StatusCode, Err: err}
}
