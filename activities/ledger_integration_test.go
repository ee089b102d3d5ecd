//go:build integration

package activities_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// scriptedGateway answers each call with the next of its scripted charges and records every
// request, so that a test sees whether the provider was asked at all, and what it was told.
type scriptedGateway struct {
	mu      sync.Mutex
	charges []func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error)
	asked   []billing.ChargeRequest
	refunds []billing.RefundRequest
}

func (g *scriptedGateway) Charge(ctx context.Context, req billing.ChargeRequest) (billing.ChargeResult, error) {
	g.mu.Lock()
	n := len(g.asked)
	g.asked = append(g.asked, req)
	g.mu.Unlock()
	if n >= len(g.charges) {
		return billing.ChargeResult{}, errors.New("the provider was asked more often than scripted")
	}
	return g.charges[n](ctx, req)
}

func (g *scriptedGateway) Refund(_ context.Context, req billing.RefundRequest) (billing.RefundResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refunds = append(g.refunds, req)
	return billing.RefundResult{ProviderRef: "re_" + req.PaymentRef, Amount: req.Amount}, nil
}

func succeeds(ref string) func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error) {
	return func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error) {
		return billing.ChargeResult{ProviderRef: ref}, nil
	}
}

// ledgerWorker runs the real activities against Postgres with a scripted gateway.
type ledgerWorker struct {
	*funnelWorker
	gw *scriptedGateway
}

func newLedgerWorker(t *testing.T, st *store.Store, gw *scriptedGateway) *ledgerWorker {
	t.Helper()
	acts := &activities.Activities{Store: st, Gateways: map[string]billing.Gateway{billing.ProviderStripe: gw}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return &ledgerWorker{funnelWorker: &funnelWorker{acts: acts, env: env}, gw: gw}
}

func (w *ledgerWorker) chargeKey(t *testing.T, key string, order activities.OrderSummary) (activities.ChargeResult, error) {
	t.Helper()
	val, err := w.env.ExecuteActivity(w.acts.Charge, activities.ChargeInput{
		OrderID: order.OrderID, Provider: billing.ProviderStripe, Token: "pm_card_visa", Amount: order.Amount,
		Currency: order.Currency, IdempotencyKey: key, Description: "test",
	})
	var res activities.ChargeResult
	if err == nil {
		err = val.Get(&res)
	}
	return res, err
}

// A charge the ledger records as succeeded comes back as recorded without asking the provider
// (which may have forgotten the key); the same order under a new key is refused for good, also
// without asking; and once the order is completed, nothing changes.
func TestChargeTheLedgerRecordsIsNotSentAgain(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	w := newLedgerWorker(t, store.New(pool), &scriptedGateway{charges: []func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error){
		succeeds("pi_first"), succeeds("pi_second"),
	}})
	order := w.createOrder(t, "ledger-first")
	key := "checkout-ledger-first/charge"
	if res, err := w.chargeKey(t, key, order); err != nil || res.ProviderRef != "pi_first" {
		t.Fatalf("first charge: %+v %v", res, err)
	}
	for _, status := range []string{"paid", "completed"} {
		if _, err := pool.Exec(context.Background(), `UPDATE orders SET status = $2 WHERE id = $1`, order.OrderID, status); err != nil {
			t.Fatal(err)
		}
		if res, err := w.chargeKey(t, key, order); err != nil || res.ProviderRef != "pi_first" {
			t.Fatalf("order %s, the charge again: %+v %v, want the recorded pi_first", status, res, err)
		}
		_, err := w.chargeKey(t, key+"/other", order)
		var appErr *temporal.ApplicationError
		var f domain.Failure
		if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeOrderState ||
			appErr.Details(&f) != nil || f.Code != "order_already_paid" {
			t.Fatalf("order %s, a new key: %v (%+v), want a final order_already_paid", status, err, f)
		}
	}
	if n := len(w.gw.asked); n != 1 {
		t.Fatalf("the provider was asked %d times, want once", n)
	}
	var payments int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'succeeded'`,
		order.OrderID).Scan(&payments); err != nil || payments != 1 {
		t.Fatalf("%d succeeded ledger rows (%v), want 1", payments, err)
	}
}

// The provider payment a charge attempt made is recorded through Created before any money
// moves, and the next attempt passes it back as PaymentRef; a compensation refund without a
// known payment refunds the one the ledger records.
func TestChargePassesTheLedgersPaymentBack(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	gw := &scriptedGateway{charges: []func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error){
		func(ctx context.Context, req billing.ChargeRequest) (billing.ChargeResult, error) {
			if req.PaymentRef != "" || req.Created == nil {
				return billing.ChargeResult{}, errors.New("the first attempt must create the payment and report it")
			}
			if err := req.Created(ctx, "pi_made"); err != nil {
				return billing.ChargeResult{}, err
			}
			return billing.ChargeResult{}, errors.New("connection reset while confirming: outcome unknown")
		},
		func(ctx context.Context, req billing.ChargeRequest) (billing.ChargeResult, error) {
			if req.PaymentRef != "pi_made" {
				return billing.ChargeResult{}, errors.New("the retry was not given the payment the ledger holds")
			}
			// Another payment for the same key is refused by the ledger.
			if err := req.Created(ctx, "pi_other"); !errors.Is(err, store.ErrOtherPayment) {
				return billing.ChargeResult{}, errors.New("the ledger accepted a second payment for one key")
			}
			return billing.ChargeResult{}, errors.New("still unknown")
		},
	}}
	w := newLedgerWorker(t, store.New(pool), gw)
	order := w.createOrder(t, "ledger-ref")
	key := "checkout-ledger-ref/charge"
	if _, err := w.chargeKey(t, key, order); err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("first attempt: %v, want the scripted unknown outcome", err)
	}
	if _, err := w.chargeKey(t, key, order); err == nil || !strings.Contains(err.Error(), "still unknown") {
		t.Fatalf("second attempt: %v, want the scripted unknown outcome", err)
	}
	var ref string
	if err := pool.QueryRow(context.Background(), `SELECT provider_ref FROM payments WHERE idempotency_key = $1`, key).Scan(&ref); err != nil || ref != "pi_made" {
		t.Fatalf("ledger provider_ref %q (%v), want pi_made", ref, err)
	}

	if _, err := w.env.ExecuteActivity(w.acts.Refund, activities.RefundInput{
		OrderID: order.OrderID, Provider: billing.ProviderStripe, ChargeKey: key, IdempotencyKey: "checkout-ledger-ref/refund",
		Amount: order.Amount, Currency: order.Currency, Reason: domain.Failure{Code: "payment_unavailable", Message: "refunded"},
	}); err != nil {
		t.Fatal(err)
	}
	if len(gw.refunds) != 1 || gw.refunds[0].PaymentRef != "pi_made" || gw.refunds[0].ChargeKey != key {
		t.Fatalf("refunds %+v, want one of pi_made", gw.refunds)
	}
}

// A decline the bank codes as fraud (a stolen card) reaches the customer as a plain card_declined
// with Stripe's generic message, on the order and in the error the workflow gets, while the
// ledger keeps the real code for staff, and the decline still counts as hard.
func TestFraudCodedDeclineIsNotDisclosed(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	w := newLedgerWorker(t, store.New(pool), &scriptedGateway{charges: []func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error){
		func(context.Context, billing.ChargeRequest) (billing.ChargeResult, error) {
			return billing.ChargeResult{}, &billing.DeclineError{Code: "card_declined", DeclineCode: "stolen_card", Message: "Your card was reported stolen."}
		},
	}})
	order := w.createOrder(t, "stolen")
	_, err := w.chargeKey(t, "checkout-stolen/charge", order)
	var appErr *temporal.ApplicationError
	var f domain.Failure
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeCardDeclinedHard || appErr.Details(&f) != nil {
		t.Fatalf("charge error %v, want a hard decline", err)
	}
	want := domain.Failure{Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."}
	if f != want || strings.Contains(appErr.Message(), "stolen") {
		t.Fatalf("the customer is told %+v (%q), want %+v", f, appErr.Message(), want)
	}
	var status, code, decline, message string
	if err := pool.QueryRow(context.Background(), `SELECT status, failure_code, decline_code, failure_message FROM orders WHERE id = $1`,
		order.OrderID).Scan(&status, &code, &decline, &message); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || code != want.Code || decline != want.DeclineCode || message != want.Message {
		t.Fatalf("order %s %s/%s %q, want failed with the generic decline", status, code, decline, message)
	}
	if err := pool.QueryRow(context.Background(), `SELECT failure_code, decline_code FROM payments WHERE order_id = $1`,
		order.OrderID).Scan(&code, &decline); err != nil {
		t.Fatal(err)
	}
	if code != "card_declined" || decline != "stolen_card" {
		t.Fatalf("ledger %s/%s, want the real card_declined/stolen_card", code, decline)
	}
}
