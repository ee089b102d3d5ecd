package billing

import "golang.org/x/time/rate"

// SetPayPalVerifyLimit replaces a PayPal webhook verifier's budget of calls to PayPal, so that a
// test can reach it with a few deliveries.
func SetPayPalVerifyLimit(v WebhookVerifier, perSecond float64, burst int) {
	pv := v.(*paypalWebhookVerifier)
	pv.cache.mu.Lock()
	defer pv.cache.mu.Unlock()
	pv.cache.limit = rate.NewLimiter(rate.Limit(perSecond), burst)
}
