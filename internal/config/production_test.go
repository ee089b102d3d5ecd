package config

import (
	"strings"
	"testing"
)

// liveAPI and liveWorker are production settings that pass: every secret long, shaped like the
// provider's, and none of the repository's.
// liveCodec is a production keyring: a key of its own, active, beside the retired dev key.
var liveCodec = Codec{Keys: "k2026a:bGl2ZS1rZXktb2YtdGhpcy1zaG9wLTMyLWJ5dGVzISE=," + DevCodecKeys, ActiveKeyID: "k2026a"}

func liveAPI() *API {
	var c API
	c.Env = EnvProduction
	c.Stripe.WebhookSecret = "whsec_" + strings.Repeat("L", 32)
	c.Stripe.PublishableKey = "pk_live_" + strings.Repeat("P", 24)
	c.BraintreeTokenizationKey = "production_abc123_def456"
	c.RateLimits.HashKey = strings.Repeat("s", 43)
	c.Codec = liveCodec
	return &c
}

func liveWorker() *Worker {
	var c Worker
	c.Env = EnvProduction
	c.Stripe.SecretKey = "sk_live_" + strings.Repeat("K", 99)
	c.PayPal.ClientID = "AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS"
	c.PayPal.Secret = strings.Repeat("E", 80)
	c.PayPal.WebhookID = "1JE4291016473214C"
	c.Braintree.PublicKey = "8q3m9kdbjh6xkv2z"
	c.Braintree.PrivateKey = strings.Repeat("a1", 16)
	c.Codec = liveCodec
	return &c
}

func TestCheckProductionAcceptsLiveSecrets(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]any{"api": liveAPI(), "worker": liveWorker()} {
		if err := CheckProduction(spec); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCheckProductionRefusesDevelopmentSecrets: each development or weak value is refused under
// production, naming its variable and not the value, and accepted under development.
func TestCheckProductionRefusesDevelopmentSecrets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string // the variable the error must name
		value    string // what the error must not show; empty for an empty value
		spec     func() any
		apply    func(spec any)
		devFails bool // refused under development too
	}{
		{name: "STRIPE_WEBHOOK_SECRET", value: "whsec_cartflowlocal", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).Stripe.WebhookSecret = "whsec_cartflowlocal" }},
		{name: "STRIPE_WEBHOOK_SECRET", value: "whsec_short", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).Stripe.WebhookSecret = "whsec_short" }},
		{name: "STRIPE_PUBLISHABLE_KEY", value: "pk_test_cartflowlocal", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).Stripe.PublishableKey = "pk_test_cartflowlocal" }},
		{name: "BRAINTREE_TOKENIZATION_KEY", value: "sandbox_cartflow_local", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).BraintreeTokenizationKey = "sandbox_cartflow_local" }},
		{name: "CODEC_KEYS", value: DevCodecKeys, spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Codec.Keys = DevCodecKeys }},
		{name: "CODEC_ACTIVE_KEY_ID", value: DevCodecKeyID, spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).Codec.ActiveKeyID = DevCodecKeyID }},
		{name: "RATE_LIMIT_HASH_KEY", value: "letmein-letmein", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).RateLimits.HashKey = "letmein-letmein" }},
		// The BFF verifies PayPal's and Braintree's webhooks with Common's credentials too.
		{name: "PAYPAL_WEBHOOK_ID", value: "0CARTFLOWLOCALWH1", spec: func() any { return liveAPI() },
			apply: func(s any) { s.(*API).PayPal.WebhookID = "0CARTFLOWLOCALWH1" }},
		{name: "BRAINTREE_PRIVATE_KEY", value: "cartflow_local_private", spec: func() any { return liveAPI() },
			apply: func(s any) {
				s.(*API).Braintree.PublicKey, s.(*API).Braintree.PrivateKey = "8q3m9kdbjh6xkv2z", "cartflow_local_private"
			}},
		{name: "STRIPE_SECRET_KEY", value: "sk_test_cartflowlocal", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Stripe.SecretKey = "sk_test_cartflowlocal" }},
		{name: "STRIPE_SECRET_KEY", value: "sk_test_replaceme", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Stripe.SecretKey = "sk_test_replaceme" }},
		{name: "STRIPE_SECRET_KEY", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Stripe.SecretKey = "" }},
		{name: "STRIPE_SECRET_KEY", value: "pk_live_" + strings.Repeat("X", 40), spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Stripe.SecretKey = "pk_live_" + strings.Repeat("X", 40) }},
		{name: "PAYPAL_CLIENT_ID", value: "cartflow-local-paypal-client", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).PayPal.ClientID = "cartflow-local-paypal-client" }},
		{name: "PAYPAL_SECRET", value: "cartflow-local-paypal-secret", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).PayPal.Secret = "cartflow-local-paypal-secret" }},
		{name: "PAYPAL_SECRET", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).PayPal.Secret = "" }},
		{name: "BRAINTREE_PUBLIC_KEY", value: "cartflow_local_public", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Braintree.PublicKey = "cartflow_local_public" }},
		{name: "BRAINTREE_PRIVATE_KEY", value: "cartflow_local_private", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Braintree.PrivateKey = "cartflow_local_private" }},
		{name: "SMTP_PASSWORD", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).SMTP.Username = "mailer" }},
		{name: "CORALOGIX_PRIVATE_KEY", spec: func() any { return liveWorker() },
			apply: func(s any) { s.(*Worker).Coralogix.Endpoint = "https://ingress.eu2.coralogix.com" }},
	}
	for _, tc := range cases {
		t.Run(tc.name+" "+tc.value, func(t *testing.T) {
			t.Parallel()
			spec := tc.spec()
			tc.apply(spec)
			err := CheckProduction(spec)
			if err == nil {
				t.Fatalf("CheckProduction accepted %s under production", tc.name)
			}
			if !strings.Contains(err.Error(), tc.name) {
				t.Errorf("error %q does not name %s", err, tc.name)
			}
			if tc.value != "" && strings.Contains(err.Error(), tc.value) {
				t.Errorf("error %q shows the value", err)
			}

			dev := tc.spec()
			tc.apply(dev)
			switch d := dev.(type) {
			case *API:
				d.Env = EnvDevelopment
			case *Worker:
				d.Env = EnvDevelopment
			}
			if err := CheckProduction(dev); err != nil {
				t.Errorf("CheckProduction refused %s under development: %v", tc.name, err)
			}
		})
	}
}

// TestCheckProductionNamesEveryOffender: one start tells ops everything to fix, not one
// variable per restart.
func TestCheckProductionNamesEveryOffender(t *testing.T) {
	t.Parallel()
	c := liveAPI()
	c.Stripe.WebhookSecret, c.Stripe.PublishableKey = "whsec_cartflowlocal", "pk_test_cartflowlocal"
	err := CheckProduction(c)
	for _, name := range []string{"STRIPE_WEBHOOK_SECRET", "STRIPE_PUBLISHABLE_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestCheckProductionRefusesAnUnknownEnvironment: a typo such as "prod" must not quietly turn
// the checks off.
func TestCheckProductionRefusesAnUnknownEnvironment(t *testing.T) {
	t.Parallel()
	c := liveAPI()
	c.Env = "prod"
	if err := CheckProduction(c); err == nil || !strings.Contains(err.Error(), "CARTFLOW_ENV") {
		t.Errorf("CheckProduction(CARTFLOW_ENV=prod) = %v, want an error naming CARTFLOW_ENV", err)
	}
}

// TestCheckProductionOnTheDefaults: the defaults are development's, and production must replace
// the public keys they hand to the storefront.
func TestCheckProductionOnTheDefaults(t *testing.T) {
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_cartflowlocal")
	var api API
	if err := Load(&api); err != nil {
		t.Fatal(err)
	}
	if err := CheckProduction(&api); err != nil {
		t.Errorf("the defaults under development: %v", err)
	}
	t.Setenv("CARTFLOW_ENV", "production")
	if err := Load(&api); err != nil {
		t.Fatal(err)
	}
	err := CheckProduction(&api)
	for _, name := range []string{"STRIPE_PUBLISHABLE_KEY", "BRAINTREE_TOKENIZATION_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the defaults under production: error %v does not name %s", err, name)
		}
	}
}

// TestProductionRulesNameRealVariables: a rule for a misspelt variable would check nothing.
func TestProductionRulesNameRealVariables(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	for _, spec := range []any{&API{}, &Worker{}} {
		values, err := variableValues(spec)
		if err != nil {
			t.Fatal(err)
		}
		for name := range values {
			read[name] = true
		}
	}
	for _, r := range productionRules {
		if !read[r.name] {
			t.Errorf("rule for %s: neither the worker nor the BFF reads it", r.name)
		}
		if r.when != "" && !read[r.when] {
			t.Errorf("rule for %s: when %s, which neither process reads", r.name, r.when)
		}
	}
}
