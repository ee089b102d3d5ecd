package main

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// processorStatus is one card processor as payment-config reports it.
type processorStatus struct {
	Name     string `json:"name"`
	Healthy  bool   `json:"healthy"`
	Failures int    `json:"recent_failures"`
	Calls    int    `json:"recent_calls"`
}

// paymentConfig tells the storefront which card processor to tokenize with, and its public key.
// It is the first configured processor whose circuit breaker is closed: a processor's breaker
// opens when, over BREAKER_WINDOW, enough of its calls failed technically (timeouts, 5xx; never
// declines). When every breaker is open the primary is kept. Only new checkouts are steered: a
// checkout keeps the provider of its token, so nothing ever switches provider after a decline
// or an unknown outcome.
func (s *server) paymentConfig(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	statuses := make([]processorStatus, 0, len(s.cfg.CardProcessors))
	chosen := ""
	for _, name := range s.cfg.CardProcessors {
		st := processorStatus{Name: name, Healthy: true}
		ok, failures, err := s.store.ProviderHealth(ctx, name, time.Now().Add(-s.cfg.Breaker.Window))
		if err != nil {
			// Without health figures every processor counts as healthy: routing falls back to the configured order.
			s.log.WarnContext(ctx, "provider health", "error", err)
		}
		st.Failures, st.Calls = failures, ok+failures
		if failures >= s.cfg.Breaker.MinFailures && failures*2 >= st.Calls {
			st.Healthy = false
		}
		if chosen == "" && st.Healthy {
			chosen = name
		}
		statuses = append(statuses, st)
	}
	if chosen == "" && len(s.cfg.CardProcessors) > 0 {
		chosen = s.cfg.CardProcessors[0]
	}
	resp := gin.H{"card_processor": chosen, "processors": statuses, "paypal": gin.H{"enabled": s.paypal != nil}}
	switch chosen {
	case "stripe":
		resp["stripe"] = gin.H{"publishable_key": s.cfg.Stripe.PublishableKey}
	case "braintree":
		resp["braintree"] = gin.H{"tokenization_key": s.cfg.BraintreeTokenizationKey}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, resp)
}
