package stack

import (
	"testing"

	"github.com/cartflow/cartflow/internal/config"
)

// TestProductionKnowsTheStacksSecrets: config.CheckProduction refuses the local stack's keys and
// secrets by a list of its own, since production code cannot import this package. A value
// added here and not there would start in production.
func TestProductionKnowsTheStacksSecrets(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ variable, value string }{
		{"STRIPE_SECRET_KEY", LocalStripeKey},
		{"STRIPE_WEBHOOK_SECRET", LocalStripeWebhookSecret},
		{"BRAINTREE_PUBLIC_KEY", LocalBraintreePublicKey},
		{"BRAINTREE_PRIVATE_KEY", LocalBraintreePrivateKey},
		{"PAYPAL_CLIENT_ID", LocalPayPalClientID},
		{"PAYPAL_SECRET", LocalPayPalSecret},
		{"PAYPAL_WEBHOOK_ID", LocalPayPalWebhookID},
	} {
		if !config.IsDevelopmentValue(c.variable, c.value) {
			t.Errorf("config does not know the stack's %s as a development value", c.variable)
		}
	}
}
