package app

import (
	"log/slog"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/errorreport"
)

// Gateways builds the Billing Gates the worker's configuration enables: Stripe always, PayPal and
// Braintree when their credentials are set. A provider without a gateway is refused as
// unknown_provider, which is final: its checkouts fail cleanly instead of retrying.
func Gateways(cfg config.Worker, log *slog.Logger) (map[string]billing.Gateway, error) {
	gws := map[string]billing.Gateway{
		billing.ProviderStripe: billing.NewStripe(billing.StripeConfig{
			SecretKey: cfg.Stripe.SecretKey, APIURL: cfg.Stripe.APIURL, Timeout: cfg.Stripe.Timeout,
			Logger: log.With("component", "stripe"),
		}),
	}
	if cfg.Braintree.PublicKey != "" {
		bt := cfg.Braintree
		gws[billing.ProviderBraintree] = billing.NewBraintree(billing.BraintreeConfig{
			APIURL: bt.APIURL, PublicKey: bt.PublicKey, PrivateKey: bt.PrivateKey,
			MerchantAccountID: bt.MerchantAccountID, Timeout: bt.Timeout,
			Logger: log.With("component", "braintree"),
		})
	}
	if cfg.PayPal.ClientID != "" {
		pp, err := newPayPal(cfg.PayPal, log)
		if err != nil {
			return nil, err
		}
		gws[billing.ProviderPayPal] = pp
	}
	return gws, nil
}

// Reconcilers returns the gateways that can list their payments, by provider, for the
// reconciliation that finds orphan payments. A gateway that cannot is left out, and its
// provider's payments are found orphaned only by their webhooks.
func Reconcilers(gws map[string]billing.Gateway) map[string]billing.Reconciler {
	out := map[string]billing.Reconciler{}
	for provider, gw := range gws {
		if r, ok := gw.(billing.Reconciler); ok {
			out[provider] = r
		}
	}
	return out
}

// WebhookVerifiers builds the BFF's verifier for each provider whose webhook credentials are
// configured; the others have no webhook endpoint.
func WebhookVerifiers(cfg config.API, log *slog.Logger) (map[string]billing.WebhookVerifier, error) {
	v := map[string]billing.WebhookVerifier{}
	if cfg.PayPal.ClientID != "" && cfg.PayPal.WebhookID != "" {
		// PayPal verifies its own signatures: the BFF asks its API, with the app's credentials.
		pp, err := newPayPal(cfg.PayPal, log)
		if err != nil {
			return nil, err
		}
		v[billing.ProviderPayPal] = billing.NewPayPalWebhookVerifier(pp, cfg.PayPal.WebhookID)
	}
	if cfg.Stripe.WebhookSecret != "" {
		v[billing.ProviderStripe] = billing.NewStripeWebhookVerifier(cfg.Stripe.WebhookSecret)
	}
	if cfg.Braintree.PublicKey != "" {
		v[billing.ProviderBraintree] = billing.NewBraintreeWebhookVerifier(cfg.Braintree.PublicKey, cfg.Braintree.PrivateKey, time.Now)
	}
	return v, nil
}

// PayPalGateway builds the PayPal client when PayPal is configured, and nil when it is not: the
// BFF creates the PayPal orders that buyers approve with it.
func PayPalGateway(cfg config.PayPal, log *slog.Logger) (*billing.PayPal, error) {
	if cfg.ClientID == "" {
		return nil, nil
	}
	return newPayPal(cfg, log)
}

// newPayPal builds the PayPal client, which the worker charges with and the BFF verifies
// webhooks through.
func newPayPal(cfg config.PayPal, log *slog.Logger) (*billing.PayPal, error) {
	return billing.NewPayPal(billing.PayPalConfig{
		ClientID: cfg.ClientID, Secret: cfg.Secret, APIURL: cfg.APIURL, Timeout: cfg.Timeout,
		WebhookID: cfg.WebhookID, Logger: log.With("component", "paypal"),
	})
}

// NewReporter starts reporting errors to Sentry as cfg says; expectedErrorTypes are the
// application error types that are business outcomes (a decline), not errors.
func NewReporter(cfg config.Sentry, log *slog.Logger, expectedErrorTypes ...string) (*errorreport.Reporter, error) {
	return errorreport.New(errorreport.Config{
		DSN: cfg.DSN, Release: cfg.Release, Environment: cfg.Environment, Logger: log.With("component", "sentry"),
		ExpectedErrorTypes: expectedErrorTypes,
	})
}
