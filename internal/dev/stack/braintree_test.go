package stack

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

// TestBraintreeDouble checks the stack's Braintree double the way the worker and the BFF use it:
// the gateway built from the stack's environment charges through it, and its webhooks reach
// the BFF's endpoint signed with the keys the BFF verifies them with.
func TestBraintreeDouble(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := ensureDir(filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}
	// The double must listen on the port it is given. Another process on a shared machine may
	// take a port between FreePort and the double's bind, so a taken port is tried again.
	var port int
	var s *Stack
	for attempt := 1; ; attempt++ {
		port = freePort(t)
		s = &Stack{opts: Options{Dir: dir, BraintreePort: port}}
		err := s.startBraintree()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 3 {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.Stop)
	if want := "http://127.0.0.1:" + strconv.Itoa(port); s.BraintreeURL != want {
		t.Fatalf("BraintreeURL = %q, want %q", s.BraintreeURL, want)
	}

	// The environment the worker and the BFF get, and the URLs make dev prints. Both need the
	// other components' addresses only, which stand-ins provide.
	s.Temporal, s.StripeMock = &Temporal{hostPort: "127.0.0.1:7233"}, &StripeMock{url: "http://127.0.0.1:12111"}
	env := map[string]string{}
	for _, kv := range s.env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if got := s.Ports()["Braintree (local double)"]; got != s.BraintreeURL {
		t.Errorf("Ports lists the double at %q", got)
	}
	s.Temporal, s.StripeMock = nil, nil
	if env["BRAINTREE_API_URL"] != s.BraintreeURL+"/graphql" || env["BRAINTREE_PUBLIC_KEY"] != LocalBraintreePublicKey ||
		env["BRAINTREE_PRIVATE_KEY"] != LocalBraintreePrivateKey {
		t.Fatalf("Braintree environment = %q, %q, %q", env["BRAINTREE_API_URL"], env["BRAINTREE_PUBLIC_KEY"], env["BRAINTREE_PRIVATE_KEY"])
	}

	gw := billing.NewBraintree(billing.BraintreeConfig{APIURL: env["BRAINTREE_API_URL"],
		PublicKey: env["BRAINTREE_PUBLIC_KEY"], PrivateKey: env["BRAINTREE_PRIVATE_KEY"], Timeout: 5 * time.Second})
	res, err := gw.Charge(t.Context(), billing.ChargeRequest{IdempotencyKey: "devstack/charge", Amount: 6200, Currency: "usd",
		Token: "fake-valid-nonce", OrderID: "9b2f4c1e-0000-4000-8000-000000000001"})
	if err != nil {
		t.Fatalf("Charge through the double: %v", err)
	}
	txs := s.Braintree.Transactions()
	if len(txs) != 1 || txs[0].LegacyID != res.ProviderRef || txs[0].Amount != "62.00" || txs[0].Currency != "USD" {
		t.Fatalf("double holds %+v, want one charge of 62.00 USD as %s", txs, res.ProviderRef)
	}

	// A stand-in BFF at the API URL: the double's webhooks go to its Braintree endpoint.
	verifier := billing.NewBraintreeWebhookVerifier(env["BRAINTREE_PUBLIC_KEY"], env["BRAINTREE_PRIVATE_KEY"], time.Now)
	var mu sync.Mutex
	var got []domain.WebhookEvent
	bff := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		event, err := verifier.Verify(r.Context(), r.Header, body)
		if r.URL.Path != "/webhooks/braintree" || err != nil {
			t.Errorf("webhook at %s: %v", r.URL.Path, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, event)
		mu.Unlock()
	}))
	defer bff.Close()
	s.APIURL = bff.URL
	s.braintreeWebhooksToAPI()
	if _, err := s.Braintree.SendWebhook(t.Context(), "dispute_opened", res.ProviderRef); err != nil {
		t.Fatalf("SendWebhook: %v", err)
	}
	mu.Lock()
	if len(got) != 1 || got[0].Type != domain.EventDisputeOpened || got[0].PaymentRef != res.ProviderRef || got[0].Amount != 6200 {
		t.Errorf("the BFF got %+v", got)
	}
	mu.Unlock()

	// The double logs what it did, but never the nonce or the keys.
	log, err := os.ReadFile(filepath.Join(dir, "logs", "braintree.log"))
	if err != nil || !strings.Contains(string(log), res.ProviderRef) {
		t.Errorf("braintree.log = %q, %v; want the transaction logged", log, err)
	}
	for _, secret := range []string{"fake-valid-nonce", LocalBraintreePrivateKey} {
		if strings.Contains(string(log), secret) {
			t.Errorf("braintree.log contains %q", secret)
		}
	}

	s.Stop()
	// Another test's process may bind the freed port at once, so the check is that the double
	// no longer answers there, not that nothing listens.
	client := &http.Client{Timeout: time.Second}
	if resp, err := client.Get(s.BraintreeURL + "/__cartflow/state"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the double still answers after Stop")
		}
	}
}
