package stripeproxy

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
// sharing it costs no isolation.
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
		dir = filepath.Join("..", "..", ".tools", "bin")
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
