//go:build integration

package activities_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/billing"
	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/dev/stack"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// cardTestingWorker runs the real charge activity with the real Stripe gateway against the
// Stripe double, with the card-testing defence's limits.
func cardTestingWorker(t *testing.T, limits activities.DeclineLimits) (*ledgerWorker, *stripefake.Proxy, *store.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mock, err := stack.StartStripeMock(ctx, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mock.Stop() })
	url, proxy, stop, err := stripefake.Start(ctx, mock.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	st := store.New(pg.NewDB(t))
	gw := billing.NewStripe(billing.StripeConfig{SecretKey: "sk_test_cartflow", APIURL: url, Timeout: 10 * time.Second})
	acts := &activities.Activities{Store: st, Gateways: map[string]billing.Gateway{billing.ProviderStripe: gw}, Declines: limits}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return &ledgerWorker{funnelWorker: &funnelWorker{acts: acts, env: env}}, proxy, st
}

// paymentIntentCreates counts the PaymentIntent creates the Stripe double received.
func paymentIntentCreates(p *stripefake.Proxy) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Method == "POST" && r.Path == "/v1/payment_intents" {
			n++
		}
	}
	return n
}

func (w *ledgerWorker) chargeToken(t *testing.T, key, token string, order activities.OrderSummary) error {
	t.Helper()
	_, err := w.env.ExecuteActivity(w.acts.Charge, activities.ChargeInput{
		OrderID: order.OrderID, Provider: billing.ProviderStripe, Token: token, Amount: order.Amount,
		Currency: order.Currency, IdempotencyKey: key, Description: "test",
	})
	return err
}

// A card tester's run of one card: the first declines reach Stripe; once the card's fingerprint
// has the threshold's declines, every further charge of it, in any token, is refused as
// too_many_declines before a PaymentIntent is made, and its order fails cleanly. Another card
// still goes through.
func TestCardTestingBlockedByFingerprint(t *testing.T) {
	t.Parallel()
	const threshold = 3
	w, proxy, st := cardTestingWorker(t, activities.DeclineLimits{Window: time.Hour, PerFingerprint: threshold})
	ctx := context.Background()

	tokens := []string{"pm_card_chargeDeclined", "tok_chargeDeclined"} // one card number, two kinds of token
	var declined, blocked int
	for i := range 20 {
		key := "card-test-" + strconv.Itoa(i)
		order := w.createOrder(t, key)
		err := w.chargeToken(t, "checkout-"+key+"/charge", tokens[i%2], order)
		var appErr *temporal.ApplicationError
		var f domain.Failure
		if !errors.As(err, &appErr) || appErr.Details(&f) != nil {
			t.Fatalf("charge %d: %v, want a final failure", i, err)
		}
		switch {
		case appErr.Type() == activities.ErrTypeCardDeclined:
			declined++
		case appErr.Type() == activities.ErrTypePaymentRejected && f.Code == "too_many_declines":
			blocked++
			o, err := st.OrderByID(ctx, order.OrderID)
			if err != nil || o.Status != domain.OrderFailed || o.FailureCode != "too_many_declines" {
				t.Fatalf("blocked order %+v %v, want failed with too_many_declines", o, err)
			}
		default:
			t.Fatalf("charge %d: %s %+v", i, appErr.Type(), f)
		}
	}
	if declined != threshold || blocked != 20-threshold {
		t.Fatalf("%d declined, %d blocked; want %d and %d", declined, blocked, threshold, 20-threshold)
	}
	if n := paymentIntentCreates(proxy); n != threshold {
		t.Fatalf("Stripe received %d PaymentIntent creates, want only the %d before the block", n, threshold)
	}

	// A legitimate card is untouched by the other card's declines.
	order := w.createOrder(t, "legit")
	if err := w.chargeToken(t, "checkout-legit/charge", "pm_card_visa", order); err != nil {
		t.Fatalf("legitimate charge: %v", err)
	}
	if n := paymentIntentCreates(proxy); n != threshold+1 {
		t.Fatalf("%d PaymentIntent creates, want the legitimate one too", n)
	}
}

// The IP the BFF recorded for the workflow is checked again in the worker, so that checkouts in
// flight when the threshold was crossed are stopped too; a renewal-like charge without a source
// is not affected.
func TestCardTestingBlockedBySourceInWorker(t *testing.T) {
	t.Parallel()
	w, proxy, st := cardTestingWorker(t, activities.DeclineLimits{Window: time.Hour, PerIP: 2})
	ctx := context.Background()
	// The activity test environment runs every activity under this workflow id.
	const workflowID = "default-test-workflow-id"
	if err := st.RecordPaymentSource(ctx, workflowID, store.PaymentSource{IPHash: "ip-card-tester", EmailHash: "e"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		order := w.createOrder(t, "src-"+strconv.Itoa(i))
		_ = w.chargeToken(t, "checkout-src-"+strconv.Itoa(i)+"/charge", "pm_card_chargeDeclined", order)
	}
	if n := paymentIntentCreates(proxy); n != 2 {
		t.Fatalf("%d PaymentIntent creates from the blocked IP, want 2", n)
	}
	var declines int
	if n, err := st.CountDeclines(ctx, store.PaymentSource{IPHash: "ip-card-tester"}, "", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	} else {
		declines = n.IP
	}
	if declines != 2 {
		t.Fatalf("%d declines recorded against the IP, want the 2 Stripe gave", declines)
	}
}
