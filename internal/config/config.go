// Package config reads cartflow's settings from the environment with envconfig.
// Every variable, with its default, is listed in docs/configuration.md.
//
// Settings come in groups, read as cfg.PayPal.ClientID. envconfig would prefix a group's
// variables with its field's name (PAYPAL_PAYPAL_CLIENT_ID) and fall back to the bare tag, so
// each group is tagged ignored:"true" and Load reads it in a pass of its own: every variable is
// looked up by the full name in its tag, and by nothing else.
package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Common holds the settings shared by the worker and the BFF.
type Common struct {
	Database Database `ignored:"true"`
	Temporal Temporal `ignored:"true"`

	// Env is development or production; production refuses known development secrets at start
	// (CheckProduction).
	Env string `envconfig:"CARTFLOW_ENV" default:"development"`

	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// PprofEnabled serves Go's profiler (net/http/pprof) under /debug/pprof/ on the internal
	// listener (the worker's METRICS_ADDR, the BFF's INTERNAL_HTTP_ADDR), for the bench to find
	// bottlenecks. Off by default: a profile costs CPU while it runs.
	PprofEnabled bool `envconfig:"PPROF_ENABLED" default:"false"`
	// StorefrontURL is the storefront's origin: completed checkouts send the customer to
	// <StorefrontURL>/orders/<checkout id>/confirmation, and emails link into its account pages.
	StorefrontURL string `envconfig:"STOREFRONT_URL" default:"http://localhost:3000"`

	Sentry    Sentry    `ignored:"true"`
	Tracing   Tracing   `ignored:"true"`
	Coralogix Coralogix `ignored:"true"`
	PayPal    PayPal    `ignored:"true"`
	Braintree Braintree `ignored:"true"`
	Declines  Declines  `ignored:"true"`
	Codec     Codec     `ignored:"true"`
}

// Declines are the card-testing defence's velocity limits: a source (IP, email or card
// fingerprint) with Per… declined payments or card checks within Window is refused before any
// provider is asked. The BFF checks IP and email, the worker the card's fingerprint; 0 turns a
// limit off.
type Declines struct {
	Window         time.Duration `envconfig:"DECLINE_WINDOW" default:"1h"`
	PerIP          int           `envconfig:"DECLINE_LIMIT_PER_IP" default:"10"`
	PerEmail       int           `envconfig:"DECLINE_LIMIT_PER_EMAIL" default:"5"`
	PerFingerprint int           `envconfig:"DECLINE_LIMIT_PER_FINGERPRINT" default:"5"`
}

// DevCodecKeyID names the development codec key, which the defaults use so that `make dev` and
// the tests need no set-up and a restart still decrypts. It is public: production must refuse it.
const DevCodecKeyID = "dev-1"

// DevCodecKeys is the development keyring, CODEC_KEYS's default: DevCodecKeyID with a 32-byte key
// published in this file.
const DevCodecKeys = DevCodecKeyID + ":Y2FydGZsb3ctZGV2LWNvZGVjLWtleS1wdWJsaWMtMzI="

// Codec configures the payload codec that encrypts what the worker and the BFF hand Temporal.
// Both read it: each encrypts what it sends and decrypts what it reads. The keys are never logged.
type Codec struct {
	// Keys is the keyring, "kid:base64-32-bytes,kid2:…"; a key stays in it as long as any
	// history encrypted under it may be read. The default is DevCodecKeys.
	Keys string `envconfig:"CODEC_KEYS" default:"dev-1:Y2FydGZsb3ctZGV2LWNvZGVjLWtleS1wdWJsaWMtMzI="`
	// ActiveKeyID is the key new payloads are encrypted under; it must be in Keys.
	ActiveKeyID string `envconfig:"CODEC_ACTIVE_KEY_ID" default:"dev-1"`
}

// Database configures the PostgreSQL pool and what a process does to the database at start.
type Database struct {
	URL      string `envconfig:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/cartflow?sslmode=disable"`
	MaxConns int32  `envconfig:"DATABASE_MAX_CONNS" default:"10"`
	// MigrateOnStart and SeedDevCatalog run at every start; both are idempotent.
	MigrateOnStart bool `envconfig:"MIGRATE_ON_START" default:"true"`
	SeedDevCatalog bool `envconfig:"SEED_DEV_CATALOG" default:"false"`
}

// Temporal locates the Temporal frontend and the namespace cartflow works in.
type Temporal struct {
	Address   string `envconfig:"TEMPORAL_ADDRESS" default:"127.0.0.1:7233"`
	Namespace string `envconfig:"TEMPORAL_NAMESPACE" default:"default"`
}

// Sentry reports errors; an empty DSN turns it off. The DSN is never logged. Release and
// Environment also label the traces and the shipped logs.
type Sentry struct {
	DSN         string `envconfig:"SENTRY_DSN" default:""`
	Release     string `envconfig:"SENTRY_RELEASE" default:""`
	Environment string `envconfig:"SENTRY_ENVIRONMENT" default:"development"`
}

// Tracing exports traces over OTLP/HTTP.
type Tracing struct {
	// Endpoint receives the traces (http://collector:4318); empty turns tracing off.
	Endpoint string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT" default:""`
	// SampleRatio is the share of new traces recorded; a continued trace follows its caller's choice.
	SampleRatio float64 `envconfig:"TRACE_SAMPLE_RATIO" default:"1"`
}

// Coralogix ships a copy of every log line to Coralogix over OTLP/HTTP; without an endpoint it is
// off. The private key is never logged.
type Coralogix struct {
	// Endpoint is the OTLP ingress of the account's domain, e.g. https://ingress.eu2.coralogix.com.
	Endpoint        string `envconfig:"CORALOGIX_ENDPOINT" default:""`
	PrivateKey      string `envconfig:"CORALOGIX_PRIVATE_KEY" default:""`
	ApplicationName string `envconfig:"CORALOGIX_APPLICATION_NAME" default:"cartflow"`
	// SubsystemName defaults to the process: api or worker.
	SubsystemName string `envconfig:"CORALOGIX_SUBSYSTEM_NAME" default:""`
}

// PayPal configures the PayPal gateway (worker) and PayPal webhook verification (BFF). Without a
// client id PayPal is off. The secret is never logged.
type PayPal struct {
	ClientID  string        `envconfig:"PAYPAL_CLIENT_ID" default:""`
	Secret    string        `envconfig:"PAYPAL_SECRET" default:""`
	APIURL    string        `envconfig:"PAYPAL_API_URL" default:"https://api-m.sandbox.paypal.com"`
	WebhookID string        `envconfig:"PAYPAL_WEBHOOK_ID" default:""`
	Timeout   time.Duration `envconfig:"PAYPAL_TIMEOUT" default:"10s"`
}

// Braintree configures the Braintree gateway (worker) and Braintree webhook verification (BFF).
// Without a public key Braintree is off. The private key is never logged.
type Braintree struct {
	APIURL            string        `envconfig:"BRAINTREE_API_URL" default:"https://payments.sandbox.braintree-api.com/graphql"`
	PublicKey         string        `envconfig:"BRAINTREE_PUBLIC_KEY" default:""`
	PrivateKey        string        `envconfig:"BRAINTREE_PRIVATE_KEY" default:""`
	MerchantAccountID string        `envconfig:"BRAINTREE_MERCHANT_ACCOUNT_ID" default:""`
	Timeout           time.Duration `envconfig:"BRAINTREE_TIMEOUT" default:"10s"`
}

// Worker holds the worker process's settings.
type Worker struct {
	Common
	Stripe   Stripe   `ignored:"true"`
	Mixpanel Mixpanel `ignored:"true"`

	// MetricsAddr is where the worker serves Prometheus /metrics; empty serves none.
	MetricsAddr string `envconfig:"METRICS_ADDR" default:"127.0.0.1:9090"`
	// CodecCORSOrigins are the Temporal Web UI origins allowed to call the codec endpoint that the
	// worker serves under /codec/ on MetricsAddr.
	CodecCORSOrigins []string `envconfig:"CODEC_CORS_ORIGINS" default:"http://localhost:8233,http://127.0.0.1:8233"`
	// MaxConcurrentActivities caps how many activities this worker runs at once.
	MaxConcurrentActivities int `envconfig:"WORKER_MAX_CONCURRENT_ACTIVITIES" default:"200"`

	SMTP SMTP `ignored:"true"`

	// OpsEmail receives the daily summary.
	OpsEmail string `envconfig:"OPS_EMAIL" default:"ops@cartflow.local"`

	Schedules Schedules `ignored:"true"`
}

// Stripe configures the worker's Stripe gateway, which is always on.
type Stripe struct {
	// SecretKey is required; it is never logged.
	SecretKey string `envconfig:"STRIPE_SECRET_KEY" required:"true"`
	APIURL    string `envconfig:"STRIPE_API_URL" default:"https://api.stripe.com"`
	// Timeout bounds one HTTP call to Stripe; the charge activity's own timeout is longer.
	Timeout time.Duration `envconfig:"STRIPE_TIMEOUT" default:"10s"`
}

// Mixpanel receives the funnel events; an empty token turns analytics off.
type Mixpanel struct {
	Token         string        `envconfig:"MIXPANEL_TOKEN" default:""`
	APIURL        string        `envconfig:"MIXPANEL_API_URL" default:"https://api.mixpanel.com"`
	BatchSize     int           `envconfig:"MIXPANEL_BATCH_SIZE" default:"50"`
	FlushInterval time.Duration `envconfig:"MIXPANEL_FLUSH_INTERVAL" default:"2s"`
}

// SMTP configures outgoing email. The password is never logged.
type SMTP struct {
	Addr     string        `envconfig:"SMTP_ADDR" default:"127.0.0.1:1025"`
	From     string        `envconfig:"SMTP_FROM" default:"cartflow <no-reply@cartflow.local>"`
	Username string        `envconfig:"SMTP_USERNAME" default:""`
	Password string        `envconfig:"SMTP_PASSWORD" default:""`
	Timeout  time.Duration `envconfig:"SMTP_TIMEOUT" default:"10s"`
}

// Schedules configures the Temporal Schedules that replace the cron runner, and the jobs they start.
// The worker writes them to Temporal at every start.
type Schedules struct {
	// Paused creates or keeps every schedule paused; ops can still trigger one by hand.
	Paused bool `envconfig:"SCHEDULES_PAUSED" default:"false"`
	// CatchupWindow bounds how far back missed runs are made up after an outage.
	CatchupWindow time.Duration `envconfig:"SCHEDULE_CATCHUP_WINDOW" default:"1h"`

	RenewalSweepInterval time.Duration `envconfig:"RENEWAL_SWEEP_INTERVAL" default:"1h"`
	RenewalBatchSize     int           `envconfig:"RENEWAL_BATCH_SIZE" default:"500"`
	// DunningRetryAfter lists the waits, from the first declined renewal, before each retry.
	DunningRetryAfter   []time.Duration `envconfig:"DUNNING_RETRY_AFTER" default:"24h,72h,120h,168h"`
	TrialReminderBefore time.Duration   `envconfig:"TRIAL_REMINDER_BEFORE" default:"72h"`

	// SummaryCron and CleanupCron are cron expressions in UTC.
	SummaryCron string `envconfig:"SUMMARY_CRON" default:"0 6 * * *"`
	CleanupCron string `envconfig:"CLEANUP_CRON" default:"30 3 * * *"`

	AbandonedCheckoutAge time.Duration `envconfig:"ABANDONED_CHECKOUT_AGE" default:"24h"`
	UnconfirmedUserAge   time.Duration `envconfig:"UNCONFIRMED_USER_AGE" default:"720h"`
	RecordRetention      time.Duration `envconfig:"RECORD_RETENTION" default:"2160h"`
	CleanupBatchSize     int           `envconfig:"CLEANUP_BATCH_SIZE" default:"500"`
}

// API holds the BFF's settings.
type API struct {
	Common
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080"`
	// InternalHTTPAddr serves /readyz and /metrics, which the public listener does not: for the
	// load balancer and Prometheus only.
	InternalHTTPAddr string `envconfig:"INTERNAL_HTTP_ADDR" default:"127.0.0.1:9091"`
	// TrustedProxies lists the proxies (IPs or CIDRs) whose X-Forwarded-For the BFF believes
	// when it takes a client's address; empty trusts none, and the client is the socket's peer.
	TrustedProxies []string `envconfig:"TRUSTED_PROXIES" default:""`
	// TrustedPlatform names a header that a platform in front of every request sets to the
	// client's address (gin's TrustedPlatform, e.g. CF-Connecting-IP); empty reads none.
	TrustedPlatform string `envconfig:"TRUSTED_PLATFORM" default:""`
	// CORSAllowedOrigins lists the browser origins that may call the BFF with credentials;
	// empty allows STOREFRONT_URL's origin (and, in development, its 127.0.0.1 twin).
	CORSAllowedOrigins []string `envconfig:"CORS_ALLOWED_ORIGINS" default:""`
	// CheckoutWait bounds how long POST /api/v1/checkouts waits for the payment outcome before it answers 202.
	CheckoutWait    time.Duration `envconfig:"CHECKOUT_WAIT" default:"5s"`
	MaxBodyBytes    int64         `envconfig:"MAX_BODY_BYTES" default:"65536"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s"`
	// AuthenticationTimeout bounds a checkout's wait for the customer to authenticate (3-D Secure).
	AuthenticationTimeout time.Duration `envconfig:"AUTHENTICATION_TIMEOUT" default:"15m"`

	Stripe StripeBFF `ignored:"true"`

	// SearchEmailMode is how the CustomerEmail search attribute holds the email: hashed (SHA-256) or plain.
	SearchEmailMode string `envconfig:"SEARCH_EMAIL_MODE" default:"hashed"`

	// CardProcessors lists the card processors the storefront may tokenize with, primary first.
	CardProcessors []string `envconfig:"CARD_PROCESSORS" default:"stripe,braintree"`
	// BraintreeTokenizationKey is handed to the storefront; it is public. It is the BFF's alone,
	// which is why it is not in Common's Braintree.
	BraintreeTokenizationKey string `envconfig:"BRAINTREE_TOKENIZATION_KEY" default:"sandbox_cartflow_local"`

	Breaker Breaker `ignored:"true"`

	// SessionIdleTimeout ends a customer session not used for this long.
	SessionIdleTimeout time.Duration `envconfig:"SESSION_IDLE_TIMEOUT" default:"168h"`
	// SessionLifetime ends a customer session this long after sign-in, however much it is used.
	SessionLifetime time.Duration `envconfig:"SESSION_LIFETIME" default:"720h"`

	RateLimits RateLimits `ignored:"true"`
}

// RateLimits are the BFF's request limits. The sensitive ones count per Window in PostgreSQL,
// shared by every replica; 0 turns one off. Reads are limited per replica in memory, ReadsPerSecond
// per client IP with bursts of ReadsBurst (see README, "Rate limits").
type RateLimits struct {
	// HashKey keys the HMAC that hashes IPs, emails and staff key ids before they are counted
	// or stored. It is never logged; change it and the counts start afresh.
	HashKey string        `envconfig:"RATE_LIMIT_HASH_KEY" default:""`
	Window  time.Duration `envconfig:"RATE_LIMIT_WINDOW" default:"10m"`

	SignInPerIP      int `envconfig:"RATE_LIMIT_SIGN_IN_PER_IP" default:"20"`
	SignInPerEmail   int `envconfig:"RATE_LIMIT_SIGN_IN_PER_EMAIL" default:"5"`
	CheckoutPerIP    int `envconfig:"RATE_LIMIT_CHECKOUT_PER_IP" default:"30"`
	CheckoutPerEmail int `envconfig:"RATE_LIMIT_CHECKOUT_PER_EMAIL" default:"10"`
	PayPalOrderPerIP int `envconfig:"RATE_LIMIT_PAYPAL_ORDER_PER_IP" default:"30"`
	CardChangePerIP  int `envconfig:"RATE_LIMIT_CARD_CHANGE_PER_IP" default:"10"`
	CardChangePerSub int `envconfig:"RATE_LIMIT_CARD_CHANGE_PER_SUBSCRIPTION" default:"5"`
	StaffPerKey      int `envconfig:"RATE_LIMIT_STAFF_PER_KEY" default:"600"`
	ReadsPerSecond   int `envconfig:"RATE_LIMIT_READS_PER_SECOND" default:"20"`
	ReadsBurst       int `envconfig:"RATE_LIMIT_READS_BURST" default:"40"`
}

// StripeBFF holds the BFF's Stripe settings; the secret key is the worker's alone.
type StripeBFF struct {
	// WebhookSecret verifies POST /webhooks/stripe (whsec_…); empty disables the endpoint.
	WebhookSecret string `envconfig:"STRIPE_WEBHOOK_SECRET" default:""`
	// PublishableKey is handed to the storefront; it is public.
	PublishableKey string `envconfig:"STRIPE_PUBLISHABLE_KEY" default:"pk_test_cartflowlocal"`
}

// Breaker decides when the BFF stops offering a card processor: its breaker opens when, over
// Window, at least MinFailures provider calls failed technically and they were at least half of
// its calls.
type Breaker struct {
	Window      time.Duration `envconfig:"BREAKER_WINDOW" default:"5m"`
	MinFailures int           `envconfig:"BREAKER_MIN_FAILURES" default:"5"`
}

// Load fills spec (a *Worker or *API) from the process environment.
func Load(spec any) error {
	if v := reflect.ValueOf(spec); v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("configuration: %w", envconfig.ErrInvalidSpecification)
	}
	for _, part := range parts(spec) {
		if err := envconfig.Process("", part); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
	}
	return nil
}

// parts lists what Load hands to envconfig, one at a time: spec itself (envconfig reads its
// embedded structs without a prefix), then every group in it, depth first.
func parts(spec any) []any {
	out := []any{spec}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			switch {
			case f.Type.Kind() != reflect.Struct:
			case f.Anonymous:
				walk(v.Field(i))
			case f.Tag.Get("ignored") == "true":
				out = append(out, v.Field(i).Addr().Interface())
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(spec).Elem())
	return out
}
