package app

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/config"
)

// defaults loads spec from an environment with none of the provider credentials set.
func defaults(t *testing.T, spec any) {
	t.Helper()
	for _, name := range []string{"PAYPAL_CLIENT_ID", "PAYPAL_SECRET", "PAYPAL_WEBHOOK_ID", "PAYPAL_API_URL", "BRAINTREE_PUBLIC_KEY", "STRIPE_WEBHOOK_SECRET"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_app")
	if err := config.Load(spec); err != nil {
		t.Fatal(err)
	}
}

func TestGatewaysFollowTheCredentials(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var cfg config.Worker
	defaults(t, &cfg)
	gws, err := Gateways(cfg, log)
	if err != nil || !slices.Equal(slices.Sorted(maps.Keys(gws)), []string{"stripe"}) {
		t.Fatalf("without PayPal and Braintree credentials: %v, %v", slices.Sorted(maps.Keys(gws)), err)
	}
	cfg.PayPal.ClientID, cfg.PayPal.Secret, cfg.Braintree.PublicKey = "client", "pp-secret-value", "public"
	gws, err = Gateways(cfg, log)
	if err != nil || !slices.Equal(slices.Sorted(maps.Keys(gws)), []string{"braintree", "paypal", "stripe"}) {
		t.Fatalf("with PayPal and Braintree credentials: %v, %v", slices.Sorted(maps.Keys(gws)), err)
	}
	// A bad PayPal URL stops the worker at start, without quoting the secret.
	cfg.PayPal.APIURL = "not a url"
	if _, err := Gateways(cfg, log); err == nil || strings.Contains(err.Error(), cfg.PayPal.Secret) {
		t.Fatalf("with a bad PayPal URL: %v", err)
	}
}

func TestWebhookVerifiersFollowTheCredentials(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var cfg config.API
	defaults(t, &cfg)
	v, err := WebhookVerifiers(cfg, log)
	if err != nil || len(v) != 0 {
		t.Fatalf("without webhook credentials: %v, %v", slices.Sorted(maps.Keys(v)), err)
	}
	// A PayPal client id alone is the worker's business; the BFF needs the webhook's id too.
	cfg.PayPal.ClientID, cfg.PayPal.Secret = "client", "pp-secret-value"
	if v, err = WebhookVerifiers(cfg, log); err != nil || len(v) != 0 {
		t.Fatalf("with a PayPal client id only: %v, %v", slices.Sorted(maps.Keys(v)), err)
	}
	cfg.PayPal.WebhookID, cfg.Stripe.WebhookSecret, cfg.Braintree.PublicKey = "WH-1", "whsec_x", "public"
	v, err = WebhookVerifiers(cfg, log)
	if err != nil || !slices.Equal(slices.Sorted(maps.Keys(v)), []string{"braintree", "paypal", "stripe"}) {
		t.Fatalf("with every webhook credential: %v, %v", slices.Sorted(maps.Keys(v)), err)
	}
	cfg.PayPal.APIURL = "not a url"
	if _, err := WebhookVerifiers(cfg, log); err == nil {
		t.Fatal("with a bad PayPal URL: no error")
	}
}

// listingGateway is a gateway that can list its payments, as the reconciliation needs.
type listingGateway struct{ billing.Gateway }

func (listingGateway) SucceededPayments(context.Context, time.Time) ([]billing.ProviderPayment, error) {
	return nil, nil
}

func TestReconcilersAreTheGatewaysThatListTheirPayments(t *testing.T) {
	var plain billing.Gateway = plainGateway{}
	got := Reconcilers(map[string]billing.Gateway{"stripe": listingGateway{plain}, "paypal": plain})
	if !slices.Equal(slices.Sorted(maps.Keys(got)), []string{"stripe"}) {
		t.Fatalf("reconcilers %v, want stripe only", slices.Sorted(maps.Keys(got)))
	}
}

// plainGateway charges and refunds, and cannot list its payments.
type plainGateway struct{}

func (plainGateway) Charge(context.Context, billing.ChargeRequest) (billing.ChargeResult, error) {
	return billing.ChargeResult{}, nil
}

func (plainGateway) Refund(context.Context, billing.RefundRequest) (billing.RefundResult, error) {
	return billing.RefundResult{}, nil
}
