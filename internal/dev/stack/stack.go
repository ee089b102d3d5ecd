package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	enumspb "go.temporal.io/api/enums/v1"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/workflows"
)

// LocalStripeKey is the Stripe secret key the local stack hands the worker. stripe-mock accepts
// any well-formed test key (letters and digits after sk_test_); this one opens nothing elsewhere.
const LocalStripeKey = "sk_test_cartflowlocal"

// LocalStripeWebhookSecret signs the webhooks the local Stripe layer sends to the BFF.
const LocalStripeWebhookSecret = "whsec_cartflowlocal"

// Options configures Start. A zero port picks a free one.
type Options struct {
	// Dir holds the stack's state: the Postgres cluster and, when Persistent, Temporal's and Mailpit's databases.
	Dir string
	// Persistent keeps Temporal's and Mailpit's data in files under Dir, so that a restart keeps it.
	Persistent bool
	// DatabaseURL, when set, is used instead of starting a Postgres cluster.
	DatabaseURL string

	PostgresPort, TemporalPort, StripeMockPort, StripeProxyPort, APIPort int
	// APIInternalPort is the BFF's internal listener (INTERNAL_HTTP_ADDR): /readyz and /metrics.
	APIInternalPort int
	// BraintreePort is where the Braintree double listens.
	BraintreePort int
	// PayPalPort is where the PayPal double listens.
	PayPalPort int
	// TemporalUIPort zero runs Temporal headless; otherwise the UI decodes payloads through the
	// worker's codec endpoint.
	TemporalUIPort int
	// WorkerMetricsPort is the worker's internal listener (/metrics, /codec/); zero picks a free one.
	WorkerMetricsPort int
	// Mailpit starts Mailpit on these ports (zero: free ports) when true.
	Mailpit                        bool
	MailpitSMTPPort, MailpitUIPort int

	// StorefrontPort is where the storefront is (or will be, see StartWeb) served, on
	// localhost; the BFF and the worker get its origin as STOREFRONT_URL. Zero leaves
	// STOREFRONT_URL at its default, and the stack cannot start the storefront.
	StorefrontPort int

	// Env is added to the worker's and the BFF's environment, after the stack's own settings.
	Env []string
	// Logs returns where a component's output goes; nil writes each to Dir/logs/<name>.log.
	Logs func(name string) io.Writer
}

// DevOptions is the `make dev` configuration with its state in dir: Temporal's and Mailpit's
// data in files there (a restart keeps them), Mailpit on, and DATABASE_URL's server when it is
// set. Every port is zero (free); make dev sets its fixed ones, and the bench runs it as it is.
func DevOptions(dir string) Options {
	return Options{Dir: dir, Persistent: true, DatabaseURL: os.Getenv("DATABASE_URL"), Mailpit: true}
}

// Stack is cartflow with everything it needs, each a real local process: Postgres, the Temporal
// dev server, stripe-mock behind the Stripe test-mode layer, Mailpit, the worker and the BFF; and,
// served in this process, the Braintree double.
type Stack struct {
	opts        Options
	Postgres    *Postgres
	Temporal    *Temporal
	StripeMock  *StripeMock
	Mailpit     *Mailpit
	StripeProxy *stripefake.Proxy
	// StripeURL is the test-mode layer's base URL, which the worker uses as Stripe's API.
	StripeURL string
	// Braintree is the Braintree double; its webhooks go to the BFF's /webhooks/braintree.
	Braintree *braintreefake.Server
	// BraintreeURL is the double's base URL; Braintree's GraphQL API is BraintreeURL + "/graphql".
	BraintreeURL string
	// PayPal is the PayPal double; its webhook events go to the BFF's /webhooks/paypal.
	PayPal *paypalfake.Server
	// PayPalURL is the double's base URL, which the worker and the BFF use as PayPal's API.
	PayPalURL   string
	DatabaseURL string
	APIURL      string
	// APIInternalURL is the BFF's internal listener: /readyz and /metrics, which APIURL does not serve.
	APIInternalURL string
	// WorkerMetricsURL is the worker's Prometheus /metrics.
	WorkerMetricsURL string
	// CodecURL is the worker's codec endpoint, which the Temporal Web UI decodes payloads through.
	CodecURL string
	// StorefrontURL is the storefront's origin, when Options.StorefrontPort is set.
	StorefrontURL string

	binDir        string
	braintreeStop func()
	// workerMetricsAddr is where the worker serves /metrics, a free port so that stacks run side by side.
	workerMetricsAddr string
	paypalStop        func()

	mu sync.Mutex
	// proxyStop closes the Stripe layer's listener; nil while it is closed.
	proxyStop func()
	worker    *Process
	api       *Process
	web       *Process
}

// Start builds the worker and the BFF and starts the whole stack. On error, whatever was
// started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Dir == "" {
		return nil, errors.New("stack: Options.Dir is required")
	}
	if err := ensureDir(filepath.Join(opts.Dir, "logs")); err != nil {
		return nil, err
	}
	s := &Stack{opts: opts, binDir: filepath.Join(opts.Dir, "bin")}
	if opts.StorefrontPort != 0 {
		s.StorefrontURL = storefrontURL(opts.StorefrontPort)
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := BuildBinaries(ctx, s.binDir); err != nil {
		return nil, err
	}

	s.DatabaseURL = opts.DatabaseURL
	if s.DatabaseURL == "" {
		s.Postgres, err = StartPostgres(ctx, PostgresOptions{DataDir: filepath.Join(opts.Dir, "postgres"), Port: opts.PostgresPort, Log: s.log("postgres")})
		if err != nil {
			return nil, err
		}
		s.DatabaseURL = s.Postgres.URL()
	}

	// The worker's internal port is known before Temporal starts, so that the UI can be told
	// where the codec endpoint is.
	metricsPort, err := portOrFree(opts.WorkerMetricsPort)
	if err != nil {
		return nil, err
	}
	s.workerMetricsAddr = addr(metricsPort)
	s.WorkerMetricsURL = "http://" + s.workerMetricsAddr + "/metrics"
	s.CodecURL = "http://" + s.workerMetricsAddr + "/codec"
	topts := TemporalOptions{Port: opts.TemporalPort, UIPort: opts.TemporalUIPort, Log: s.log("temporal"),
		SearchAttributes: cartflowSearchAttributes()}
	if opts.TemporalUIPort != 0 {
		topts.UICodecEndpoint = s.CodecURL
	}
	if opts.Persistent {
		topts.DBFile = filepath.Join(opts.Dir, "temporal.db")
	}
	if s.Temporal, err = StartTemporal(ctx, topts); err != nil {
		return nil, err
	}
	if s.StripeMock, err = StartStripeMock(ctx, opts.StripeMockPort, s.log("stripe-mock")); err != nil {
		return nil, err
	}
	if err := s.startStripeProxy(); err != nil {
		return nil, err
	}
	if err := s.startBraintree(); err != nil {
		return nil, err
	}
	if err := s.startPayPal(); err != nil {
		return nil, err
	}
	if opts.Mailpit {
		mopts := MailpitOptions{SMTPPort: opts.MailpitSMTPPort, UIPort: opts.MailpitUIPort, Log: s.log("mailpit")}
		if opts.Persistent {
			mopts.DBFile = filepath.Join(opts.Dir, "mailpit.db")
		}
		if s.Mailpit, err = StartMailpit(ctx, mopts); err != nil {
			return nil, err
		}
	}

	apiPort, err := portOrFree(opts.APIPort)
	if err != nil {
		return nil, err
	}
	s.APIURL = "http://" + addr(apiPort)
	apiInternalPort, err := portOrFree(opts.APIInternalPort)
	if err != nil {
		return nil, err
	}
	s.APIInternalURL = "http://" + addr(apiInternalPort)
	s.braintreeWebhooksToAPI()
	s.paypalWebhooksToAPI()
	// Like Stripe, the layer tells the BFF about payments that complete after the customer authenticates.
	if err := s.StripeProxy.SetWebhook(s.APIURL+"/webhooks/stripe", LocalStripeWebhookSecret); err != nil {
		return nil, err
	}
	// The worker migrates the schema and seeds the catalog first; the BFF then finds them ready.
	if err := s.StartWorker(ctx); err != nil {
		return nil, err
	}
	if err := s.startAPI(ctx, apiPort); err != nil {
		return nil, err
	}
	return s, nil
}

// cartflowSearchAttributes are cartflow's custom search attributes in start-dev's notation, so
// that the dev server has them from its first start (the worker would add them otherwise).
func cartflowSearchAttributes() map[string]string {
	out := map[string]string{}
	for name, t := range workflows.SearchAttributes {
		switch t {
		case enumspb.INDEXED_VALUE_TYPE_INT:
			out[name] = "Int"
		default:
			out[name] = "Keyword"
		}
	}
	return out
}

// startStripeProxy serves the Stripe test-mode layer in this process, so that tests can read
// what it recorded directly.
func (s *Stack) startStripeProxy() error {
	proxy, err := stripefake.New(s.StripeMock.URL())
	if err != nil {
		return err
	}
	port, err := portOrFree(s.opts.StripeProxyPort)
	if err != nil {
		return err
	}
	s.StripeProxy, s.StripeURL = proxy, "http://"+addr(port)
	return s.serveStripeProxy()
}

// serveStripeProxy listens for the Stripe layer at StripeURL's address.
func (s *Stack) serveStripeProxy() error {
	ln, err := net.Listen("tcp", strings.TrimPrefix(s.StripeURL, "http://"))
	if err != nil {
		return fmt.Errorf("stack: stripe test-mode layer: %w", err)
	}
	srv := &http.Server{Handler: s.StripeProxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.mu.Lock()
	s.proxyStop = func() { _ = srv.Close() }
	s.mu.Unlock()
	return nil
}

// StopStripeProxy closes the Stripe layer's listener and its open connections, so that every
// call to Stripe is refused, as in an outage of the provider's network. The layer keeps its
// state: what was charged stays charged, and a call cut off mid-way still completes there.
func (s *Stack) StopStripeProxy() {
	s.mu.Lock()
	stop := s.proxyStop
	s.proxyStop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// StartStripeProxy listens for the Stripe layer again, at the same address, after StopStripeProxy.
func (s *Stack) StartStripeProxy() error {
	s.mu.Lock()
	running := s.proxyStop != nil
	s.mu.Unlock()
	if running {
		return errors.New("stack: the Stripe layer is already listening")
	}
	return s.serveStripeProxy()
}

// LimitsOff turns the rate limits and the decline velocity limits off (0), for Options.Env. The
// e2e suite sends everything from 127.0.0.1 and shares Stripe's few test cards, so the per-IP,
// per-email and per-card limits would soon refuse its tests; a test that checks them runs with
// limits of its own. make dev keeps the production defaults: protection is on there too.
var LimitsOff = []string{
	"RATE_LIMIT_SIGN_IN_PER_IP=0", "RATE_LIMIT_SIGN_IN_PER_EMAIL=0", "RATE_LIMIT_CHECKOUT_PER_IP=0",
	"RATE_LIMIT_CHECKOUT_PER_EMAIL=0", "RATE_LIMIT_PAYPAL_ORDER_PER_IP=0", "RATE_LIMIT_CARD_CHANGE_PER_IP=0",
	"RATE_LIMIT_CARD_CHANGE_PER_SUBSCRIPTION=0", "RATE_LIMIT_STAFF_PER_KEY=0", "RATE_LIMIT_READS_PER_SECOND=0",
	"DECLINE_LIMIT_PER_IP=0", "DECLINE_LIMIT_PER_EMAIL=0", "DECLINE_LIMIT_PER_FINGERPRINT=0",
}

// env is the environment the worker and the BFF run with.
func (s *Stack) env(extra ...string) []string {
	env := append(os.Environ(),
		"DATABASE_URL="+s.DatabaseURL,
		"TEMPORAL_ADDRESS="+s.Temporal.HostPort(),
		"STRIPE_SECRET_KEY="+LocalStripeKey,
		"STRIPE_API_URL="+s.StripeURL,
		"STRIPE_WEBHOOK_SECRET="+LocalStripeWebhookSecret,
		"SEED_DEV_CATALOG=true",
		"METRICS_ADDR="+s.workerMetricsAddr,
		// The storefront calls the BFF from its server on this machine and names the shopper
		// in X-Forwarded-For: trusted from 127.0.0.1 only.
		"TRUSTED_PROXIES=127.0.0.1",
	)
	if s.StorefrontURL != "" {
		env = append(env, "STOREFRONT_URL="+s.StorefrontURL)
	}
	env = append(env, s.braintreeEnv()...)
	env = append(env, s.paypalEnv()...)
	if s.Mailpit != nil {
		env = append(env, "SMTP_ADDR="+s.Mailpit.SMTPAddr())
	}
	env = append(env, extra...)
	return append(env, s.opts.Env...)
}

// StartWorker starts the worker process and waits until it polls its task queue.
func (s *Stack) StartWorker(ctx context.Context) error {
	seen := &watchWriter{needle: []byte(`"Started Worker"`), w: s.log("worker")}
	cmd := exec.Command(filepath.Join(s.binDir, "worker"))
	cmd.Env = s.env()
	p, err := startAndWait(ctx, "worker", cmd, seen, func(context.Context) error {
		if !seen.seen.Load() {
			return errors.New("worker not polling yet")
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.worker = p
	s.mu.Unlock()
	return nil
}

// KillWorker kills the worker with SIGKILL, as a crash would.
func (s *Stack) KillWorker() error {
	s.mu.Lock()
	p := s.worker
	s.worker = nil
	s.mu.Unlock()
	if p == nil {
		return errors.New("stack: no worker running")
	}
	return p.Kill()
}

// Worker returns the running worker process, or nil.
func (s *Stack) Worker() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worker
}

// API returns the running BFF process.
func (s *Stack) API() *Process { return s.api }

func (s *Stack) startAPI(ctx context.Context, port int) error {
	cmd := exec.Command(filepath.Join(s.binDir, "api"))
	cmd.Env = s.env("HTTP_ADDR="+addr(port), "INTERNAL_HTTP_ADDR="+strings.TrimPrefix(s.APIInternalURL, "http://"))
	// Readiness is on the internal listener; the public one is up by the time it answers.
	p, err := startAndWait(ctx, "api", cmd, s.log("api"), func(ctx context.Context) error {
		return GetOK(ctx, s.APIInternalURL+"/readyz", io.Discard)
	})
	s.api = p
	return err
}

// Stop stops everything the stack started, the applications first and Postgres last.
func (s *Stack) Stop() {
	s.mu.Lock()
	web := s.web
	s.mu.Unlock()
	if web != nil {
		_ = web.Stop(stopTimeout)
	}
	if s.api != nil {
		_ = s.api.Stop(stopTimeout)
	}
	if w := s.Worker(); w != nil {
		_ = w.Stop(stopTimeout)
	}
	if s.Mailpit != nil {
		_ = s.Mailpit.Stop()
	}
	s.StopStripeProxy()
	if s.braintreeStop != nil {
		s.braintreeStop()
	}
	if s.paypalStop != nil {
		s.paypalStop()
	}
	if s.StripeMock != nil {
		_ = s.StripeMock.Stop()
	}
	if s.Temporal != nil {
		_ = s.Temporal.Stop()
	}
	if s.Postgres != nil {
		_ = s.Postgres.Stop()
	}
}

func (s *Stack) log(name string) io.Writer {
	if s.opts.Logs != nil {
		return s.opts.Logs(name)
	}
	f, err := os.OpenFile(filepath.Join(s.opts.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	// The file stays open for the life of the process that writes it.
	return f
}

// BuildBinaries builds the worker and the BFF into dir. Go's build cache makes a rebuild cheap.
func BuildBinaries(ctx context.Context, dir string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./worker", "./api")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack: build worker and api: %w\n%s", err, out)
	}
	return nil
}

// watchWriter passes writes through and remembers whether needle has appeared in the output,
// even split across two writes.
type watchWriter struct {
	needle []byte
	w      io.Writer
	seen   atomic.Bool
	carry  []byte // the end of the previous write, as long as the needle less one byte
}

func (w *watchWriter) Write(b []byte) (int, error) {
	if !w.seen.Load() {
		joined := append(w.carry, b...)
		if bytes.Contains(joined, w.needle) {
			w.seen.Store(true)
		}
		keep := min(len(joined), len(w.needle)-1)
		w.carry = append([]byte(nil), joined[len(joined)-keep:]...)
	}
	return w.w.Write(b)
}

// Ports lists a stack's listening URLs for display.
func (s *Stack) Ports() map[string]string {
	m := map[string]string{
		"BFF":                      s.APIURL,
		"Temporal gRPC":            s.Temporal.HostPort(),
		"Stripe (test-mode layer)": s.StripeURL,
		"stripe-mock":              s.StripeMock.URL(),
		"Braintree (local double)": s.BraintreeURL,
		"PayPal (local double)":    s.PayPalURL,
		"PostgreSQL":               s.DatabaseURL,
		"Metrics (BFF / worker)":   s.APIInternalURL + "/metrics  " + s.WorkerMetricsURL,
	}
	if ui := s.Temporal.UIURL(); ui != "" {
		m["Temporal Web UI"] = ui
		m["Codec (sign in for the UI)"] = s.CodecURL + "/sign-in"
	}
	if s.Mailpit != nil {
		m["Mailpit UI"] = s.Mailpit.UIURL()
		m["Mailpit SMTP"] = s.Mailpit.SMTPAddr()
	}
	if s.StorefrontURL != "" {
		m["Storefront"] = s.StorefrontURL
	}
	return m
}
