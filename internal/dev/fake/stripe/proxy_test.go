//go:build integration

package stripe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// mock is one stripe-mock shared by all tests; the proxy keeps the state, so
// sharing it costs no isolation. Every test of the package needs it, so every test file
// carries the integration tag.
var mock struct {
	once sync.Once
	url  string
	cmd  *exec.Cmd
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mock.cmd != nil {
		_ = mock.cmd.Process.Kill()
		_ = mock.cmd.Wait()
	}
	os.Exit(code)
}

func stripeMockURL(t *testing.T) string {
	t.Helper()
	mock.once.Do(func() { mock.url, mock.cmd, mock.err = startStripeMock() })
	if mock.err != nil {
		t.Fatal(mock.err)
	}
	return mock.url
}

func startStripeMock() (string, *exec.Cmd, error) {
	dir := os.Getenv("CARTFLOW_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", ".tools", "bin") // from internal/dev/fake/stripe
	}
	bin := filepath.Join(dir, "stripe-mock")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("stripe-mock not found at %s: run make tools (%v)", bin, err)
	}
	// Both addresses are given because stripe-mock otherwise also opens
	// HTTPS on every interface; port 0 avoids clashing with parallel runs.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() { // keep draining so stripe-mock never blocks on stdout
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a, cmd, nil
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, errors.New("stripe-mock did not report its HTTP address")
	}
}

type env struct {
	proxy *Proxy
	url   string
	sc    *client.API
}

func newEnv(t *testing.T) *env {
	t.Helper()
	p, err := New(stripeMockURL(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	// No keep-alives: net/http silently resends a request carrying an
	// Idempotency-Key when a reused connection drops, which would hide drop_after.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	sc := client.New("sk_test_123", &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(srv.URL), MaxNetworkRetries: stripe.Int64(0), HTTPClient: hc,
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})})
	return &env{proxy: p, url: srv.URL, sc: sc}
}

func (e *env) charge(pm, key string, amount int64, md map[string]string) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd"),
		PaymentMethod: stripe.String(pm), Confirm: stripe.Bool(true)}
	params.PaymentMethodTypes = stripe.StringSlice([]string{"card"})
	for k, v := range md {
		params.AddMetadata(k, v)
	}
	if key != "" {
		params.SetIdempotencyKey(key)
	}
	return e.sc.PaymentIntents.New(params)
}

func stripeErr(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("want *stripe.Error, got %T: %v", err, err)
	}
	return se
}

func countStatus(pis []PaymentIntent, status string) int {
	n := 0
	for _, pi := range pis {
		if pi.Status == status {
			n++
		}
	}
	return n
}

func TestVisaSucceeds(t *testing.T) {
	e := newEnv(t)
	pi, err := e.charge("pm_card_visa", "order-1", 2599, map[string]string{"order_id": "o-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pi.ID, "pi_") || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.AmountReceived != 2599 ||
		pi.Currency != "usd" || pi.Metadata["order_id"] != "o-1" || pi.PaymentMethod.ID != "pm_card_visa" ||
		!strings.HasPrefix(pi.LatestCharge.ID, "ch_") || !strings.HasPrefix(pi.ClientSecret, pi.ID+"_secret_") ||
		pi.LastPaymentError != nil || pi.NextAction != nil {
		t.Fatalf("unexpected PaymentIntent: %+v", pi)
	}
	got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
	if err != nil || got.ID != pi.ID || got.Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("GET stored PI: %+v, %v", got, err)
	}
	_, err = e.sc.PaymentIntents.Get("pi_unknown", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("unknown PI: %+v", se)
	}
	reqs := e.proxy.Requests()
	if len(reqs) != 3 || reqs[0].ObjectID != pi.ID || reqs[0].Status != 200 || reqs[0].IdempotencyKey != "order-1" ||
		reqs[0].Params["metadata[order_id]"][0] != "o-1" {
		t.Fatalf("recorded requests: %+v", reqs)
	}
}

func TestDeclines(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		pm      string
		code    stripe.ErrorCode
		decline stripe.DeclineCode
	}{
		{"pm_card_chargeDeclined", stripe.ErrorCodeCardDeclined, "generic_decline"},
		{"pm_card_chargeDeclinedInsufficientFunds", stripe.ErrorCodeCardDeclined, "insufficient_funds"},
		{"pm_card_chargeDeclinedLostCard", stripe.ErrorCodeCardDeclined, "lost_card"},
		{"pm_card_chargeDeclinedExpiredCard", stripe.ErrorCodeExpiredCard, ""},
		{"pm_card_chargeDeclinedProcessingError", stripe.ErrorCodeProcessingError, ""},
	} {
		_, err := e.charge(tc.pm, "", 1000, nil)
		se := stripeErr(t, err)
		if se.HTTPStatusCode != 402 || se.Type != stripe.ErrorTypeCard || se.Code != tc.code || se.DeclineCode != tc.decline ||
			se.Msg == "" || !strings.HasPrefix(se.ChargeID, "ch_") || se.PaymentIntent == nil ||
			se.PaymentIntent.Status != stripe.PaymentIntentStatusRequiresPaymentMethod ||
			se.PaymentIntent.LastPaymentError == nil || se.PaymentIntent.LastPaymentError.Code != tc.code {
			t.Errorf("%s: unexpected error %+v", tc.pm, se)
		}
	}
	pis := e.proxy.PaymentIntents()
	if len(pis) != 5 || countStatus(pis, "succeeded") != 0 {
		t.Fatalf("declined PIs must be stored unsucceeded: %+v", pis)
	}
	_, err := e.charge("pm_does_not_exist", "", 1000, nil)
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeResourceMissing || se.Param != "payment_method" {
		t.Fatalf("unknown pm: %+v", se)
	}
}

func TestTokenPaymentMethods(t *testing.T) {
	e := newEnv(t)
	newPM := func(tok string) (*stripe.PaymentMethod, error) {
		return e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
			Card: &stripe.PaymentMethodCardParams{Token: stripe.String(tok)}})
	}
	pm, err := newPM("tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pm.ID, "pm_") || pm.ID == "pm_card_visa" || pm.Type != stripe.PaymentMethodTypeCard {
		t.Fatalf("unexpected PaymentMethod %+v", pm)
	}
	if pi, err := e.charge(pm.ID, "", 500, nil); err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("charge with tok_visa pm: %+v %v", pi, err)
	}

	stolen, err := newPM("tok_chargeDeclinedStolenCard")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.charge(stolen.ID, "", 500, nil)
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeCardDeclined || se.DeclineCode != "stolen_card" {
		t.Fatalf("stolen card: %+v", se)
	}

	_, err = newPM("tok_nonsense")
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeResourceMissing || se.Param != "card[token]" {
		t.Fatalf("unknown token: %+v", se)
	}
	for _, r := range e.proxy.Requests() {
		for k := range r.Params {
			if strings.HasPrefix(k, "card[") {
				t.Fatalf("card field %q recorded", k)
			}
		}
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	first, err := e.charge("pm_card_visa", "key-1", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.charge("pm_card_visa", "key-1", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.LastResponse.Header.Get("Idempotent-Replayed") != "true" ||
		!bytes.Equal(second.LastResponse.RawJSON, first.LastResponse.RawJSON) {
		t.Fatalf("replay differs: %s vs %s", first.ID, second.ID)
	}
	if n := len(e.proxy.PaymentIntents()); n != 1 {
		t.Fatalf("replay executed again: %d PaymentIntents", n)
	}
	if reqs := e.proxy.Requests(); len(reqs) != 2 || reqs[0].Replayed || !reqs[1].Replayed || reqs[1].ObjectID != first.ID {
		t.Fatalf("recorded requests: %+v", reqs)
	}

	_, err = e.charge("pm_card_visa", "key-1", 2000, nil)
	if se := stripeErr(t, err); se.Type != stripe.ErrorTypeIdempotency || se.HTTPStatusCode != 400 {
		t.Fatalf("key reuse with other params: %+v", se)
	}

	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Go(func() {
			if pi, err := e.charge("pm_card_visa", "key-concurrent", 700, nil); err == nil {
				ids[i] = pi.ID
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent same-key requests: %v", ids)
		}
	}
	if n := countStatus(e.proxy.PaymentIntents(), "succeeded"); n != 2 {
		t.Fatalf("want 2 succeeded PaymentIntents, got %d", n)
	}
}

func TestFaultThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.proxy.AddFault(Fault{Method: "POST", PathPrefix: "/v1/payment_intents", Count: 1, Status: 500})
	_, err := e.charge("pm_card_visa", "retry-1", 1000, nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 500 || se.Type != stripe.ErrorTypeAPI {
		t.Fatalf("fault: %+v", se)
	}
	if n := len(e.proxy.PaymentIntents()); n != 0 {
		t.Fatalf("a status fault must not execute, got %d PaymentIntents", n)
	}
	pi, err := e.charge("pm_card_visa", "retry-1", 1000, nil)
	if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after fault: %+v %v", pi, err)
	}

	// The HTTP admin API is what tests in other processes use.
	body := `{"method":"POST","path_prefix":"/v1/payment_intents","count":0,"status":429}`
	res, err := http.Post(e.url+"/__cartflow/faults", "application/json", strings.NewReader(body))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST fault: %v %v", res, err)
	}
	for range 2 {
		_, err = e.charge("pm_card_visa", "", 1000, nil)
		if se := stripeErr(t, err); se.HTTPStatusCode != 429 || se.Code != stripe.ErrorCodeRateLimit {
			t.Fatalf("rate limit fault: %+v", se)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/__cartflow/faults", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE faults: %v %v", res, err)
	}
	if _, err := e.charge("pm_card_visa", "", 1000, nil); err != nil {
		t.Fatalf("after clearing faults: %v", err)
	}
	res, err = http.Get(e.url + "/__cartflow/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var reqs []Request
	if err := json.NewDecoder(res.Body).Decode(&reqs); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, r := range reqs {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[500 200 429 429 200]" {
		t.Fatalf("recorded statuses %v", statuses)
	}
}

// A fault with an error code answers Stripe's invalid_request_error for a request refused as
// sent, naming a parameter, and executes nothing; the admin API takes it as error_code.
func TestFaultWithErrorCode(t *testing.T) {
	e := newEnv(t)
	e.proxy.AddFault(Fault{Method: "POST", PathPrefix: "/v1/payment_intents", Count: 1, Status: 400, ErrorCode: "parameter_unknown"})
	_, err := e.charge("pm_card_visa", "bad-param-1", 1000, nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeInvalidRequest ||
		se.Code != stripe.ErrorCodeParameterUnknown || se.Param == "" || se.Msg == "" {
		t.Fatalf("fault: %+v", se)
	}
	if n := len(e.proxy.PaymentIntents()); n != 0 {
		t.Fatalf("an error-code fault must not execute, got %d PaymentIntents", n)
	}

	body := `{"method":"POST","path_prefix":"/v1/payment_intents","count":1,"status":400,"error_code":"parameter_missing"}`
	res, err := http.Post(e.url+"/__cartflow/faults", "application/json", strings.NewReader(body))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST fault: %v %v", res, err)
	}
	res.Body.Close()
	_, err = e.charge("pm_card_visa", "bad-param-2", 1000, nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodeParameterMissing {
		t.Fatalf("fault from the admin API: %+v", se)
	}
	if _, err := e.charge("pm_card_visa", "bad-param-2", 1000, nil); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

func TestUnknownOutcomes(t *testing.T) {
	e := newEnv(t)
	e.proxy.AddFault(Fault{Method: "POST", PathPrefix: "/v1/payment_intents", Count: 1, DropAfter: true})
	_, err := e.charge("pm_card_visa", "drop-1", 1000, nil)
	if se := (*stripe.Error)(nil); err == nil || errors.As(err, &se) {
		t.Fatalf("drop_after must look like a network failure, got %v", err)
	}
	pis := e.proxy.PaymentIntents()
	if len(pis) != 1 || pis[0].Status != "succeeded" {
		t.Fatalf("dropped request must still have charged once: %+v", pis)
	}
	pi, err := e.charge("pm_card_visa", "drop-1", 1000, nil)
	if err != nil || pi.ID != pis[0].ID || pi.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after drop: %+v %v", pi, err)
	}

	e.proxy.AddFault(Fault{PathPrefix: "/v1/payment_intents", Count: 1, DelayAfterMS: 5000})
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(300), Currency: stripe.String("usd"),
		PaymentMethod: stripe.String("pm_card_visa"), Confirm: stripe.Bool(true)}
	params.SetIdempotencyKey("slow-1")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	params.Context = ctx
	start := time.Now()
	if _, err := e.sc.PaymentIntents.New(params); err == nil {
		t.Fatal("want a timeout while the proxy delays its answer")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("client did not give up early")
	}
	pis = e.proxy.PaymentIntents()
	if len(pis) != 2 || countStatus(pis, "succeeded") != 2 {
		t.Fatalf("delayed request must be committed: %+v", pis)
	}
	params.Context = context.Background()
	if pi, err := e.sc.PaymentIntents.New(params); err != nil || pi.ID != pis[1].ID {
		t.Fatalf("retry after timeout: %+v %v", pi, err)
	}
	if reqs := e.proxy.Requests(); !reqs[0].Dropped || !reqs[1].Replayed || len(e.proxy.PaymentIntents()) != 2 {
		t.Fatalf("recorded requests: %+v", reqs)
	}
}

// A fault for one idempotency key leaves every other request alone, however many come first.
func TestFaultForOneIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	body := `{"method":"POST","path_prefix":"/v1/payment_intents","idempotency_key":"only-this","count":1,"status":500}`
	if res, err := http.Post(e.url+"/__cartflow/faults", "application/json", strings.NewReader(body)); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST fault: %v %v", res, err)
	}
	for _, key := range []string{"", "another"} {
		if _, err := e.charge("pm_card_visa", key, 1000, nil); err != nil {
			t.Fatalf("a charge under key %q met the fault of another key: %v", key, err)
		}
	}
	_, err := e.charge("pm_card_visa", "only-this", 1000, nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 500 {
		t.Fatalf("the key's fault: %+v", se)
	}
	if _, err := e.charge("pm_card_visa", "only-this", 1000, nil); err != nil || len(e.proxy.Faults()) != 0 {
		t.Fatalf("after its one fault the key's retry: %v; faults left %+v", err, e.proxy.Faults())
	}
}

func TestSearchByMetadata(t *testing.T) {
	e := newEnv(t)
	var want string
	for _, order := range []string{"o-1", "o-2", "o-3"} {
		pi, err := e.charge("pm_card_visa", "", 1000, map[string]string{"order_id": order})
		if err != nil {
			t.Fatal(err)
		}
		if order == "o-2" {
			want = pi.ID
		}
	}
	for _, q := range []string{`metadata['order_id']:'o-2'`, `metadata["order_id"]:"o-2"`} {
		it := e.sc.PaymentIntents.Search(&stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: q}})
		var ids []string
		for it.Next() {
			ids = append(ids, it.PaymentIntent().ID)
		}
		if err := it.Err(); err != nil || len(ids) != 1 || ids[0] != want {
			t.Fatalf("search %s: %v %v (want %s)", q, ids, err, want)
		}
	}
	it := e.sc.PaymentIntents.Search(&stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: `metadata['order_id']:'nope'`}})
	if it.Next() || it.Err() != nil {
		t.Fatalf("search for a missing order must be empty: %v", it.Err())
	}
	// What tests read directly: the same match, with no lag and no API call.
	if got := e.proxy.PaymentIntentsWithMetadata("order_id", "o-2"); len(got) != 1 || got[0].ID != want {
		t.Fatalf("PaymentIntentsWithMetadata(order_id, o-2) = %+v, want only %s", got, want)
	}
	if got := e.proxy.PaymentIntentsWithMetadata("no_such_key", ""); len(got) != 0 {
		t.Fatalf("an absent metadata key matched %d PaymentIntents", len(got))
	}
}

func TestRefunds(t *testing.T) {
	e := newEnv(t)
	pi, err := e.charge("pm_card_visa", "", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	refund := func(piID string, amount int64) (*stripe.Refund, error) {
		params := &stripe.RefundParams{PaymentIntent: stripe.String(piID)}
		if amount > 0 {
			params.Amount = stripe.Int64(amount)
		}
		return e.sc.Refunds.New(params)
	}
	re, err := refund(pi.ID, 0)
	if err != nil || !strings.HasPrefix(re.ID, "re_") || re.Amount != 1000 || re.Status != stripe.RefundStatusSucceeded ||
		re.PaymentIntent.ID != pi.ID || re.Charge.ID != pi.LatestCharge.ID {
		t.Fatalf("full refund: %+v %v", re, err)
	}
	_, err = refund(pi.ID, 0)
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeChargeAlreadyRefunded {
		t.Fatalf("second refund: %+v", se)
	}

	pi2, err := e.charge("pm_card_visa", "", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if re, err := refund(pi2.ID, 300); err != nil || re.Amount != 300 {
		t.Fatalf("partial refund: %+v %v", re, err)
	}
	_, err = refund(pi2.ID, 800)
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeAmountTooLarge {
		t.Fatalf("over-refund: %+v", se)
	}
	_, err = refund("pi_unknown", 0)
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeResourceMissing || se.Param != "payment_intent" {
		t.Fatalf("refund of unknown PI: %+v", se)
	}
	for _, p := range e.proxy.PaymentIntents() {
		if want := map[string]int64{pi.ID: 1000, pi2.ID: 300}[p.ID]; p.AmountRefunded != want {
			t.Fatalf("%s refunded %d, want %d", p.ID, p.AmountRefunded, want)
		}
	}
}

func TestShapeValidationPassesThrough(t *testing.T) {
	e := newEnv(t)
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(1000), PaymentMethod: stripe.String("pm_card_visa"),
		Confirm: stripe.Bool(true)}
	params.SetIdempotencyKey("no-currency")
	_, err := e.sc.PaymentIntents.New(params)
	se := stripeErr(t, err)
	if se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeInvalidRequest || !strings.Contains(se.Msg, "currency") {
		t.Fatalf("stripe-mock validation error not passed through: %+v", se)
	}
	if n := len(e.proxy.PaymentIntents()); n != 0 {
		t.Fatalf("invalid request created %d PaymentIntents", n)
	}
	// A rejected request leaves its key free, as at Stripe.
	params.Currency = stripe.String("usd")
	if pi, err := e.sc.PaymentIntents.New(params); err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("corrected request with the same key: %+v %v", pi, err)
	}
}

// stripe-mock accepts any currency string and any amount; real Stripe does not, and neither does the layer.
func TestRefusesWhatStripeRefuses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name     string
		amount   int64
		currency string
		param    string
	}{
		{"zero amount", 0, "usd", "amount"},
		{"negative amount", -5, "usd", "amount"},
		{"empty currency", 100, "", "currency"},
		{"currency not a code", 100, "usdollars", "currency"},
	}
	for _, tc := range cases {
		params := &stripe.PaymentIntentParams{Amount: stripe.Int64(tc.amount), Currency: stripe.String(tc.currency),
			PaymentMethod: stripe.String("pm_card_visa"), Confirm: stripe.Bool(true)}
		_, err := e.sc.PaymentIntents.New(params)
		if se := stripeErr(t, err); se.HTTPStatusCode != 400 || se.Param != tc.param {
			t.Errorf("%s: %+v, want 400 on %s", tc.name, se, tc.param)
		}
	}
	if n := len(e.proxy.PaymentIntents()); n != 0 {
		t.Fatalf("refused requests created %d PaymentIntents", n)
	}
}

// newCustomer creates a customer through the proxy under key ("" for none).
func (e *env) newCustomer(t *testing.T, key string) *stripe.Customer {
	t.Helper()
	params := &stripe.CustomerParams{Email: stripe.String("ada@example.com"), Name: stripe.String("Ada Lovelace")}
	params.AddMetadata("cartflow_reference", "sub-1")
	if key != "" {
		params.SetIdempotencyKey(key)
	}
	c, err := e.sc.Customers.New(params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// paymentMethodFrom returns the PaymentMethod id for a test source: a pm_ id as it is, a tok_
// token turned into a card PaymentMethod first, as a storefront's older integration would.
func (e *env) paymentMethodFrom(t *testing.T, source string) string {
	t.Helper()
	if !strings.HasPrefix(source, "tok_") {
		return source
	}
	pm, err := e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String(source)}})
	if err != nil {
		t.Fatal(err)
	}
	return pm.ID
}

func (e *env) attach(pm, customer string) (*stripe.PaymentMethod, error) {
	return e.sc.PaymentMethods.Attach(pm, &stripe.PaymentMethodAttachParams{Customer: stripe.String(customer)})
}

func (e *env) setDefault(customer, pm string) (*stripe.Customer, error) {
	return e.sc.Customers.Update(customer, &stripe.CustomerParams{
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm)}})
}

// chargeSaved charges pm as the customer's saved card, off-session or not.
func (e *env) chargeSaved(pm, customer string, offSession bool) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(1500), Currency: stripe.String("usd"),
		PaymentMethod: stripe.String(pm), Customer: stripe.String(customer), Confirm: stripe.Bool(true),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"})}
	if offSession {
		params.OffSession = stripe.Bool(true)
	} else {
		params.SetupFutureUsage = stripe.String("off_session")
	}
	return e.sc.PaymentIntents.New(params)
}

func (e *env) paymentMethod(t *testing.T, id string) PaymentMethod {
	t.Helper()
	for _, pm := range e.proxy.PaymentMethods() {
		if pm.ID == id {
			return pm
		}
	}
	t.Fatalf("PaymentMethod %s not stored: %+v", id, e.proxy.PaymentMethods())
	return PaymentMethod{}
}

func TestCustomers(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "cus-key-1")
	if !strings.HasPrefix(c.ID, "cus_") || c.Email != "ada@example.com" || c.Name != "Ada Lovelace" ||
		c.Metadata["cartflow_reference"] != "sub-1" || c.InvoiceSettings.DefaultPaymentMethod != nil || c.Discount != nil {
		t.Fatalf("created customer %+v", c)
	}
	// The same key replays the same customer; another key makes another one.
	again := e.newCustomer(t, "cus-key-1")
	if again.ID != c.ID || again.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed customer %s (replayed %q), want %s", again.ID, again.LastResponse.Header.Get("Idempotent-Replayed"), c.ID)
	}
	other := e.newCustomer(t, "cus-key-2")
	if other.ID == c.ID {
		t.Fatal("two keys made one customer")
	}
	cs := e.proxy.Customers()
	if len(cs) != 2 || cs[0].ID != c.ID || cs[1].ID != other.ID || cs[0].Email != "ada@example.com" ||
		cs[0].Metadata["cartflow_reference"] != "sub-1" {
		t.Fatalf("stored customers %+v", cs)
	}

	got, err := e.sc.Customers.Get(c.ID, nil)
	if err != nil || got.ID != c.ID || got.Email != c.Email {
		t.Fatalf("GET customer: %+v %v", got, err)
	}
	_, err = e.sc.Customers.Get("cus_unknown", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("unknown customer: %+v", se)
	}

	// Updates change what they name; an empty metadata value deletes the entry.
	params := &stripe.CustomerParams{Name: stripe.String("Ada King")}
	params.AddMetadata("cartflow_reference", "")
	params.AddMetadata("plan", "gold")
	if _, err := e.sc.Customers.Update(c.ID, params); err != nil {
		t.Fatal(err)
	}
	got, err = e.sc.Customers.Get(c.ID, nil)
	if err != nil || got.Name != "Ada King" || got.Email != "ada@example.com" || len(got.Metadata) != 1 || got.Metadata["plan"] != "gold" {
		t.Fatalf("updated customer %+v %v", got, err)
	}
	_, err = e.sc.Customers.Update("cus_unknown", &stripe.CustomerParams{Name: stripe.String("x")})
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("update of unknown customer: %+v", se)
	}
}

func TestAttachAndChargeOffSession(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	for _, source := range []string{"pm_card_visa", "tok_visa"} {
		t.Run(source, func(t *testing.T) {
			pmID := e.paymentMethodFrom(t, source)
			pm, err := e.attach(pmID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			// A magic test PaymentMethod is copied on attach; a made one keeps its id.
			if !strings.HasPrefix(pm.ID, "pm_") || pm.Customer == nil || pm.Customer.ID != c.ID ||
				(source == "pm_card_visa") == (pm.ID == pmID) {
				t.Fatalf("attached %s: %+v", pmID, pm)
			}
			if got := e.paymentMethod(t, pm.ID); got.Customer != c.ID || got.Source != source || got.Code != "" {
				t.Fatalf("stored PaymentMethod %+v", got)
			}
			// Attaching again to the same customer changes nothing.
			if again, err := e.attach(pm.ID, c.ID); err != nil || again.ID != pm.ID {
				t.Fatalf("re-attach: %+v %v", again, err)
			}

			upd, err := e.setDefault(c.ID, pm.ID)
			if err != nil || upd.InvoiceSettings.DefaultPaymentMethod == nil || upd.InvoiceSettings.DefaultPaymentMethod.ID != pm.ID {
				t.Fatalf("set default: %+v %v", upd, err)
			}
			if cs := e.proxy.Customers(); cs[0].DefaultPaymentMethod != pm.ID {
				t.Fatalf("stored default %q, want %s", cs[0].DefaultPaymentMethod, pm.ID)
			}

			pi, err := e.chargeSaved(pm.ID, c.ID, true)
			if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.Customer == nil || pi.Customer.ID != c.ID {
				t.Fatalf("off-session charge: %+v %v", pi, err)
			}
			pis := e.proxy.PaymentIntents()
			if last := pis[len(pis)-1]; last.ID != pi.ID || last.Customer != c.ID || !last.OffSession || last.AmountReceived != 1500 {
				t.Fatalf("stored PaymentIntent %+v", last)
			}
		})
	}
	if n := len(e.proxy.Customers()); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
}

func TestSavedPaymentMethodRules(t *testing.T) {
	e := newEnv(t)
	c, other := e.newCustomer(t, ""), e.newCustomer(t, "")
	pm, err := e.attach("pm_card_visa", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	otherPM, err := e.attach("pm_card_mastercard", other.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid := func(t *testing.T, err error, status int, param string) {
		t.Helper()
		if se := stripeErr(t, err); se.HTTPStatusCode != status || se.Type != stripe.ErrorTypeInvalidRequest || se.Param != param {
			t.Fatalf("got %+v, want a %d invalid_request_error on %s", se, status, param)
		}
	}
	before := len(e.proxy.PaymentIntents())

	t.Run("unattached magic card with a customer", func(t *testing.T) {
		_, err := e.chargeSaved("pm_card_visa", c.ID, true)
		wantInvalid(t, err, 400, "payment_method")
	})
	t.Run("another customer's card", func(t *testing.T) {
		_, err := e.chargeSaved(otherPM.ID, c.ID, true)
		wantInvalid(t, err, 400, "payment_method")
	})
	t.Run("saved card without its customer", func(t *testing.T) {
		_, err := e.charge(pm.ID, "", 1000, nil)
		wantInvalid(t, err, 400, "customer")
	})
	t.Run("unknown customer", func(t *testing.T) {
		_, err := e.chargeSaved(pm.ID, "cus_unknown", true)
		wantInvalid(t, err, 400, "customer")
	})
	t.Run("off_session without confirm", func(t *testing.T) {
		params := &stripe.PaymentIntentParams{Amount: stripe.Int64(100), Currency: stripe.String("usd"),
			PaymentMethod: stripe.String(pm.ID), Customer: stripe.String(c.ID), OffSession: stripe.Bool(true)}
		_, err := e.sc.PaymentIntents.New(params)
		wantInvalid(t, err, 400, "off_session")
	})
	t.Run("attach to a second customer", func(t *testing.T) {
		_, err := e.attach(pm.ID, other.ID)
		wantInvalid(t, err, 400, "payment_method")
	})
	t.Run("attach without customer", func(t *testing.T) {
		_, err := e.sc.PaymentMethods.Attach("pm_card_visa", &stripe.PaymentMethodAttachParams{})
		wantInvalid(t, err, 400, "customer")
	})
	t.Run("attach to unknown customer", func(t *testing.T) {
		_, err := e.attach("pm_card_visa", "cus_unknown")
		wantInvalid(t, err, 400, "customer")
	})
	t.Run("attach unknown payment method", func(t *testing.T) {
		_, err := e.attach("pm_unknown", c.ID)
		wantInvalid(t, err, 404, "payment_method")
	})
	t.Run("default that is not attached", func(t *testing.T) {
		_, err := e.setDefault(c.ID, otherPM.ID)
		wantInvalid(t, err, 400, "invoice_settings[default_payment_method]")
		_, err = e.setDefault(c.ID, "pm_card_visa")
		wantInvalid(t, err, 400, "invoice_settings[default_payment_method]")
	})
	if n := len(e.proxy.PaymentIntents()); n != before {
		t.Fatalf("refused charges stored %d PaymentIntents", n-before)
	}
	if cs := e.proxy.Customers(); cs[0].DefaultPaymentMethod != "" {
		t.Fatalf("a refused default was stored: %+v", cs[0])
	}
	if got := e.paymentMethod(t, pm.ID); got.Customer != c.ID {
		t.Fatalf("a refused attach moved the card: %+v", got)
	}
}

func TestDecliningCardsFailToAttach(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	for _, tc := range []struct {
		pm      string
		code    stripe.ErrorCode
		decline stripe.DeclineCode
	}{
		{"pm_card_chargeDeclined", stripe.ErrorCodeCardDeclined, "generic_decline"},
		{"pm_card_chargeDeclinedInsufficientFunds", stripe.ErrorCodeCardDeclined, "insufficient_funds"},
		{"pm_card_chargeDeclinedLostCard", stripe.ErrorCodeCardDeclined, "lost_card"},
		{"pm_card_chargeDeclinedExpiredCard", stripe.ErrorCodeExpiredCard, ""},
	} {
		_, err := e.attach(tc.pm, c.ID)
		if se := stripeErr(t, err); se.HTTPStatusCode != 402 || se.Type != stripe.ErrorTypeCard || se.Code != tc.code ||
			se.DeclineCode != tc.decline || se.Msg == "" {
			t.Errorf("%s: %+v", tc.pm, se)
		}
	}
	// A card made from a declining token is refused the same way and stays unattached.
	stolen, err := e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_chargeDeclinedStolenCard")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.attach(stolen.ID, c.ID)
	if se := stripeErr(t, err); se.HTTPStatusCode != 402 || se.DeclineCode != "stolen_card" {
		t.Fatalf("stolen card attach: %+v", se)
	}
	for _, pm := range e.proxy.PaymentMethods() {
		if pm.Customer != "" {
			t.Fatalf("a declined card was attached: %+v", pm)
		}
	}
}

func TestChargeCustomerFail(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	for _, source := range []string{"pm_card_chargeCustomerFail", "tok_chargeCustomerFail"} {
		pm, err := e.attach(e.paymentMethodFrom(t, source), c.ID)
		if err != nil {
			t.Fatalf("%s must attach: %v", source, err)
		}
		_, err = e.chargeSaved(pm.ID, c.ID, true)
		se := stripeErr(t, err)
		if se.HTTPStatusCode != 402 || se.Type != stripe.ErrorTypeCard || se.Code != stripe.ErrorCodeCardDeclined ||
			se.DeclineCode != "generic_decline" || se.PaymentIntent == nil ||
			se.PaymentIntent.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || se.PaymentIntent.LastPaymentError == nil {
			t.Fatalf("%s off-session charge: %+v", source, se)
		}
		pis := e.proxy.PaymentIntents()
		if last := pis[len(pis)-1]; last.ID != se.PaymentIntent.ID || last.Status != "requires_payment_method" ||
			last.Customer != c.ID || !last.OffSession || last.AmountReceived != 0 {
			t.Fatalf("stored PaymentIntent %+v", last)
		}
	}
}

func TestSetCardOutcome(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	pm, err := e.attach("pm_card_visa", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	declineOf := func(t *testing.T) *stripe.Error {
		t.Helper()
		_, err := e.chargeSaved(pm.ID, c.ID, true)
		if err == nil {
			return nil
		}
		return stripeErr(t, err)
	}
	if se := declineOf(t); se != nil {
		t.Fatalf("fresh visa declined: %+v", se)
	}

	// In-process.
	if err := e.proxy.SetCardOutcome(pm.ID, "card_declined", "lost_card"); err != nil {
		t.Fatal(err)
	}
	if se := declineOf(t); se == nil || se.Code != stripe.ErrorCodeCardDeclined || se.DeclineCode != "lost_card" {
		t.Fatalf("after lost_card: %+v", se)
	}
	if got := e.paymentMethod(t, pm.ID); got.Code != "card_declined" || got.DeclineCode != "lost_card" {
		t.Fatalf("stored PaymentMethod %+v", got)
	}

	// Over the admin API, as tests in other processes do it.
	setOutcome := func(id, body string) *http.Response {
		t.Helper()
		res, err := http.Post(e.url+"/__cartflow/payment_methods/"+id+"/outcome", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res
	}
	if res := setOutcome(pm.ID, `{"code":"card_declined","decline_code":"insufficient_funds"}`); res.StatusCode != http.StatusOK {
		t.Fatalf("admin outcome: %d", res.StatusCode)
	}
	if se := declineOf(t); se == nil || se.DeclineCode != "insufficient_funds" || se.Msg != "Your card has insufficient funds." {
		t.Fatalf("after insufficient_funds: %+v", se)
	}
	if res := setOutcome(pm.ID, `{"code":""}`); res.StatusCode != http.StatusOK {
		t.Fatalf("admin reset: %d", res.StatusCode)
	}
	if se := declineOf(t); se != nil {
		t.Fatalf("after reset the card still declines: %+v", se)
	}

	// Refused: Stripe's shared test cards, unknown cards, a decline code without a code, bad JSON.
	if res := setOutcome("pm_card_visa", `{"code":"card_declined"}`); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("magic card: %d", res.StatusCode)
	}
	if res := setOutcome("pm_unknown", `{"code":"card_declined"}`); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown card: %d", res.StatusCode)
	}
	if res := setOutcome(pm.ID, `{"decline_code":"lost_card"}`); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("decline code without code: %d", res.StatusCode)
	}
	if res := setOutcome(pm.ID, `{"cod":"card_declined"}`); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", res.StatusCode)
	}
	if err := e.proxy.SetCardOutcome("pm_unknown", "", ""); !errors.Is(err, ErrNoSuchPaymentMethod) {
		t.Fatalf("unknown card: %v", err)
	}
	if _, err := e.charge("pm_card_visa", "", 100, nil); err != nil {
		t.Fatalf("a refused change altered the shared test card: %v", err)
	}

	// The admin state lists customers and payment methods.
	var customers []Customer
	var pms []PaymentMethod
	for path, v := range map[string]any{"/__cartflow/customers": &customers, "/__cartflow/payment_methods": &pms} {
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(v)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(customers) != 1 || customers[0].ID != c.ID || len(pms) != 1 || pms[0].ID != pm.ID || pms[0].Customer != c.ID ||
		pms[0].Source != "pm_card_visa" || pms[0].Code != "" {
		t.Fatalf("admin state: %+v %+v", customers, pms)
	}
}

// TestCardFingerprints: every token and PaymentMethod of one test card carries one
// card.fingerprint, and another card another, as the card-testing defence needs.
func TestCardFingerprints(t *testing.T) {
	e := newEnv(t)
	pm, err := e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_chargeDeclined")}})
	if err != nil {
		t.Fatal(err)
	}
	fromToken := pm.Card.Fingerprint
	got, err := e.sc.PaymentMethods.Get(pm.ID, nil)
	if err != nil || got.Card.Fingerprint != fromToken {
		t.Fatalf("GET of the created PaymentMethod: %+v %v; want fingerprint %q", got, err, fromToken)
	}
	magic, err := e.sc.PaymentMethods.Get("pm_card_chargeDeclined", nil)
	if err != nil || magic.Card.Fingerprint != fromToken || fromToken == "" {
		t.Fatalf("pm_card_chargeDeclined: %+v %v; want the token's fingerprint %q", magic, err, fromToken)
	}
	tok, err := e.sc.Tokens.Get("tok_chargeDeclined", nil)
	if err != nil || tok.Card.Fingerprint != fromToken {
		t.Fatalf("tok_chargeDeclined: %+v %v; want %q", tok, err, fromToken)
	}
	visa, err := e.sc.PaymentMethods.Get("pm_card_visa", nil)
	if err != nil || visa.Card.Fingerprint == fromToken || visa.Card.Fingerprint != CardFingerprint("tok_visa") {
		t.Fatalf("pm_card_visa: %+v %v; want its own fingerprint", visa, err)
	}
	if _, err := e.sc.PaymentMethods.Get("pm_unknown", nil); stripeErr(t, err).HTTPStatusCode != http.StatusNotFound {
		t.Fatalf("unknown PaymentMethod: %v", err)
	}
}
