package billing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
)

// verifyCalls is how many times the PayPal double was asked to verify a webhook signature.
func (d *ppDouble) verifyCalls() int {
	_, _, _, _, calls, _ := d.stats()
	return calls
}

// verifyMany sends the same delivery n times at once and returns the errors.
func verifyMany(v billing.WebhookVerifier, n int, header http.Header, body []byte) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = v.Verify(context.Background(), header.Clone(), body)
		})
	}
	wg.Wait()
	return errs
}

// TestPayPalForgeriesSpendOneVerifyCall: 100 forged deliveries of one transmission, all at
// once, cost PayPal's API one call, and every one is refused.
func TestPayPalForgeriesSpendOneVerifyCall(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	body := []byte(ppCaptureCompleted)
	forged := ppDelivery("the-forgers-guess", ppWebhookID, body, time.Now())
	for i, err := range verifyMany(v, 100, forged, body) {
		if !errors.Is(err, billing.ErrBadSignature) {
			t.Fatalf("delivery %d: %v, want ErrBadSignature", i, err)
		}
	}
	if n := d.verifyCalls(); n != 1 {
		t.Errorf("PayPal was asked %d times, want 1", n)
	}
}

// TestPayPalGenuineRepeatsSpendOneVerifyCall: a genuine delivery repeated is answered from the
// cache, but only for the very same body: a tampered copy is asked about, and refused.
func TestPayPalGenuineRepeatsSpendOneVerifyCall(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	body := []byte(ppCaptureCompleted)
	header := ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now())
	for i, err := range verifyMany(v, 20, header, body) {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if n := d.verifyCalls(); n != 1 {
		t.Errorf("PayPal was asked %d times, want 1", n)
	}
	tampered := []byte(strings.Replace(ppCaptureCompleted, `"value": "62.00"`, `"value": "6200.00"`, 1))
	if _, err := v.Verify(context.Background(), header.Clone(), tampered); !errors.Is(err, billing.ErrBadSignature) {
		t.Errorf("a tampered body under a verified transmission: %v, want ErrBadSignature", err)
	}
	if n := d.verifyCalls(); n != 2 {
		t.Errorf("PayPal was asked %d times, want 2 (the tampered body asked about)", n)
	}
}

// TestPayPalJunkHeadersSpendNoVerifyCall: what no PayPal delivery carries is refused before
// PayPal is asked.
func TestPayPalJunkHeadersSpendNoVerifyCall(t *testing.T) {
	t.Parallel()
	body := []byte(ppCaptureCompleted)
	cases := map[string]func(h http.Header){
		"certificate on another domain": func(h http.Header) { h.Set("PAYPAL-CERT-URL", "https://evil.example/v1/notifications/certs/CERT-1") },
		"certificate on a lookalike domain": func(h http.Header) {
			h.Set("PAYPAL-CERT-URL", "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1")
		},
		"certificate on a suffix domain": func(h http.Header) { h.Set("PAYPAL-CERT-URL", "https://evilpaypal.com/v1/notifications/certs/CERT-1") },
		"certificate over http":          func(h http.Header) { h.Set("PAYPAL-CERT-URL", "http://api.paypal.com/v1/notifications/certs/CERT-1") },
		"certificate with credentials": func(h http.Header) {
			h.Set("PAYPAL-CERT-URL", "https://x@api.paypal.com/v1/notifications/certs/CERT-1")
		},
		"certificate on another port": func(h http.Header) {
			h.Set("PAYPAL-CERT-URL", "https://api.paypal.com:8443/v1/notifications/certs/CERT-1")
		},
		"certificate outside the certs":  func(h http.Header) { h.Set("PAYPAL-CERT-URL", "https://api.paypal.com/v1/oauth2/token") },
		"certificate URL that is no URL": func(h http.Header) { h.Set("PAYPAL-CERT-URL", "::") },
		"unknown algorithm":              func(h http.Header) { h.Set("PAYPAL-AUTH-ALGO", "none") },
		"transmission id far too long":   func(h http.Header) { h.Set("PAYPAL-TRANSMISSION-ID", strings.Repeat("a", 4096)) },
		"stale transmission": func(h http.Header) {
			h.Set("PAYPAL-TRANSMISSION-TIME", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		},
		"no signature": func(h http.Header) { h.Del("PAYPAL-TRANSMISSION-SIG") },
	}
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	for name, junk := range cases {
		h := ppDelivery("the-forgers-guess", ppWebhookID, body, time.Now())
		junk(h)
		for i := range 10 {
			if _, err := v.Verify(context.Background(), h.Clone(), body); !errors.Is(err, billing.ErrBadSignature) {
				t.Errorf("%s, delivery %d: %v, want ErrBadSignature", name, i, err)
			}
		}
	}
	if n := d.verifyCalls(); n != 0 {
		t.Errorf("PayPal was asked %d times, want 0", n)
	}
	// The same verifier still asks about a well-formed delivery, and the live certificate
	// domain passes the check.
	h := ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now())
	h.Set("PAYPAL-CERT-URL", "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")
	if _, err := v.Verify(context.Background(), h, body); !errors.Is(err, billing.ErrBadSignature) && err != nil {
		t.Errorf("a well-formed delivery: %v", err)
	}
	if n := d.verifyCalls(); n != 1 {
		t.Errorf("PayPal was asked %d times about a well-formed delivery, want 1", n)
	}
}

// TestPayPalVerifyCallsAreRateLimited: deliveries that all differ (a forger varying the
// signature) spend at most the budget; the rest are answered ErrVerifyLimited, which the BFF
// turns into a 503 that PayPal retries, not into a refusal.
func TestPayPalVerifyCallsAreRateLimited(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	billing.SetPayPalVerifyLimit(v, 0.001, 3)
	body := []byte(ppCaptureCompleted)
	now := time.Now()
	var bad, limited int
	for i := range 10 {
		_, err := v.Verify(context.Background(), ppDelivery(fmt.Sprintf("guess-%d", i), ppWebhookID, body, now), body)
		switch {
		case errors.Is(err, billing.ErrBadSignature):
			bad++
		case errors.Is(err, billing.ErrVerifyLimited):
			limited++
		default:
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if bad != 3 || limited != 7 || d.verifyCalls() != 3 {
		t.Errorf("%d refused, %d limited, %d calls; want 3, 7, 3", bad, limited, d.verifyCalls())
	}
	// A delivery already answered is answered again from the cache, over the budget or not.
	if _, err := v.Verify(context.Background(), ppDelivery("guess-0", ppWebhookID, body, now), body); !errors.Is(err, billing.ErrBadSignature) {
		t.Errorf("a repeat of an answered delivery: %v, want ErrBadSignature", err)
	}
}

// TestPayPalVerifyFailureIsNotRemembered: when PayPal could not answer, the next delivery of
// the same transmission asks again.
func TestPayPalVerifyFailureIsNotRemembered(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	body := []byte(ppCaptureCompleted)
	header := ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now())
	d.mu.Lock()
	d.verifyStatus = http.StatusServiceUnavailable
	d.mu.Unlock()
	if _, err := v.Verify(context.Background(), header.Clone(), body); err == nil || errors.Is(err, billing.ErrBadSignature) {
		t.Fatalf("while PayPal is down: %v, want a plain error", err)
	}
	d.mu.Lock()
	d.verifyStatus = 0
	d.mu.Unlock()
	if _, err := v.Verify(context.Background(), header.Clone(), body); err != nil {
		t.Fatalf("once PayPal is back: %v", err)
	}
}
