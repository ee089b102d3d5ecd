package billing_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
)

// The ledger comes first: a Braintree charge authorizes, records the transaction through
// ChargeRequest.Created and only then captures, and a retry that the ledger hands the
// transaction (PaymentRef) reads it by id, never through the search, which lags.

// ledger is the part of cartflow's ledger a charge writes: the transaction recorded by Created.
type ledger struct {
	mu   sync.Mutex
	refs []string
	// fail makes Created fail, as a ledger whose database is unreachable does.
	fail error
	// seen is what the double held for the transaction when Created was called.
	seen []braintreefake.Transaction
	d    *btDouble
}

// created is ChargeRequest.Created.
func (l *ledger) created(_ context.Context, ref string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tx, ok := l.d.Transaction(ref); ok {
		l.seen = append(l.seen, tx)
	}
	if l.fail != nil {
		return l.fail
	}
	l.refs = append(l.refs, ref)
	return nil
}

func (l *ledger) recorded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.refs)
}

// chargeWith is btCharge recording into l.
func chargeWith(l *ledger, key, nonce string) billing.ChargeRequest {
	req := btCharge(key, nonce)
	req.Created = l.created
	return req
}

// captured returns the double's transactions that took money: captured, settled or not.
func captured(d *btDouble) []braintreefake.Transaction {
	return filter(d.Transactions(), func(tx braintreefake.Transaction) bool {
		switch tx.Status {
		case "SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED", "SETTLEMENT_PENDING", "SETTLEMENT_CONFIRMED":
			return true
		}
		return false
	})
}

// mutations are the operations that change a transaction.
var mutations = []string{"BraintreeAuthorize", "BraintreeCapture", "BraintreeRefund", "BraintreeReverse"}

func (d *btDouble) mutationCount() int {
	n := 0
	for _, op := range mutations {
		n += d.count(op)
	}
	return n
}

func TestBraintreeChargeRecordsTheAuthorizationBeforeCapturing(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	l := &ledger{d: d}
	res, err := gw.Charge(t.Context(), chargeWith(l, "ledger/charge", "tokencc_ledger"))
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	if refs := l.recorded(); len(refs) != 1 || refs[0] != res.ProviderRef {
		t.Fatalf("ledger recorded %v, want the charged transaction %s", refs, res.ProviderRef)
	}
	// When the ledger recorded it, the transaction held money but had taken none.
	if len(l.seen) != 1 || l.seen[0].Status != "AUTHORIZED" {
		t.Errorf("at Created the double held %+v, want the transaction only authorized", l.seen)
	}
	if txs := captured(d); len(txs) != 1 || txs[0].LegacyID != res.ProviderRef {
		t.Errorf("captured transactions = %+v, want %s", txs, res.ProviderRef)
	}
}

// The ledger cannot record the authorization: nothing is captured, the error is retryable
// (whatever the ledger's error was), and the retry the ledger hands the transaction to captures it.
func TestBraintreeChargeCreatedErrorDoesNotCapture(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	l := &ledger{d: d, fail: &billing.RejectedError{Code: "ledger_down", Message: "the ledger is unreachable"}}
	key := "created-error/charge"
	_, err := gw.Charge(t.Context(), chargeWith(l, key, "tokencc_created_error"))
	wantRetryable(t, err)
	if n := d.count("BraintreeCapture"); n != 0 || len(captured(d)) != 0 {
		t.Fatalf("%d captures and captured %+v after the ledger failed, want none", n, captured(d))
	}
	txs := d.Transactions()
	if len(txs) != 1 || txs[0].Status != "AUTHORIZED" || len(l.seen) != 1 {
		t.Fatalf("transactions = %+v, want one authorization, offered to the ledger once", txs)
	}

	// The ledger holds it now (recorded by hand, say): the retry reads it by id and captures it.
	l.fail = nil
	req := chargeWith(l, key, "tokencc_created_error")
	req.PaymentRef, req.Resume = txs[0].LegacyID, true
	d.ClearRequests()
	res, err := gw.Charge(t.Context(), req)
	if err != nil || res.ProviderRef != txs[0].LegacyID {
		t.Fatalf("retry with the ledger's PaymentRef = %+v, %v", res, err)
	}
	_, calls := d.snapshot()
	if got := operations(calls); got != "BraintreeTransactionID,BraintreeTransaction,BraintreeCapture" {
		t.Errorf("retry sent %s, want a read by id and one capture, no search and no authorization", got)
	}
	if len(l.recorded()) != 0 {
		t.Errorf("Created called again for a transaction the ledger handed over: %v", l.recorded())
	}
	if txs := captured(d); len(txs) != 1 {
		t.Errorf("captured = %+v, want the one authorization", txs)
	}
}

// A PaymentRef is read by id and completed as its status says; only an authorization is
// captured, and a transaction that has finished gets no mutation at all.
func TestBraintreeChargePaymentRefCompletesAsTheStatusSays(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	// An authorization, left uncaptured by a ledger failure.
	failing := &ledger{d: d, fail: errors.New("ledger down")}
	if _, err := gw.Charge(t.Context(), chargeWith(failing, "ref/authorized", "tokencc_ref_authorized")); err == nil {
		t.Fatal("want the ledger's failure")
	}
	authorized := d.Transactions()[0].LegacyID
	settled := chargeSettled(t, d, gw, "ref/settled", true)
	submitted := chargeSettled(t, d, gw, "ref/submitted", false)
	if _, err := gw.Charge(t.Context(), btCharge("ref/declined", "fake-processor-declined-2001")); err == nil {
		t.Fatal("want a decline")
	}
	declined := d.Transactions()[3].LegacyID
	voided := chargeSettled(t, d, gw, "ref/voided", false)
	if _, err := gw.Refund(t.Context(), btRefund("ref/voided/refund", voided, 0)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		key, ref  string
		mutations int
		check     func(billing.ChargeResult, error) string
	}{
		{"ref/authorized", authorized, 1, func(res billing.ChargeResult, err error) string {
			if tx, _ := d.Transaction(authorized); err != nil || res.ProviderRef != authorized || tx.Status != "SUBMITTED_FOR_SETTLEMENT" {
				return "want it captured"
			}
			return ""
		}},
		{"ref/settled", settled, 0, func(res billing.ChargeResult, err error) string {
			if err != nil || res.ProviderRef != settled {
				return "want the settled transaction's result"
			}
			return ""
		}},
		{"ref/submitted", submitted, 0, func(res billing.ChargeResult, err error) string {
			if err != nil || res.ProviderRef != submitted {
				return "want the submitted transaction's result"
			}
			return ""
		}},
		{"ref/declined", declined, 0, func(_ billing.ChargeResult, err error) string {
			var decline *billing.DeclineError
			if !errors.As(err, &decline) || decline.DeclineCode != "insufficient_funds" {
				return "want the recorded decline"
			}
			return ""
		}},
		{"ref/voided", voided, 0, func(_ billing.ChargeResult, err error) string {
			var rejected *billing.RejectedError
			if !errors.As(err, &rejected) || rejected.Code != "payment_canceled" {
				return "want payment_canceled"
			}
			return ""
		}},
		{"ref/unknown", "nosuch", 0, func(_ billing.ChargeResult, err error) string {
			var rejected *billing.RejectedError
			if !errors.As(err, &rejected) || rejected.Code != "payment_not_found" {
				return "want payment_not_found"
			}
			return ""
		}},
	} {
		d.ClearRequests()
		req := btCharge(tc.key, "nonce-"+tc.key)
		req.PaymentRef, req.Resume = tc.ref, true
		res, err := gw.Charge(t.Context(), req)
		if problem := tc.check(res, err); problem != "" {
			t.Errorf("%s: Charge = %+v, %v; %s", tc.key, res, err, problem)
		}
		if n := d.mutationCount(); n != tc.mutations || d.count("BraintreeFindCharge") != 0 {
			_, calls := d.snapshot()
			t.Errorf("%s: sent %s, want %d mutations and no search", tc.key, operations(calls), tc.mutations)
		}
	}
}

// The capture fails before it reaches Braintree, with the authorization not recorded (no
// Created): the retry finds the authorization, records it and captures it, once.
func TestBraintreeChargeCaptureFailureIsCompletedByTheRetry(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	l := &ledger{d: d}
	d.AddFault(braintreefake.Fault{Operation: "captureTransaction", Count: 1, Status: 503})
	key := "capture-503/charge"
	_, err := gw.Charge(t.Context(), chargeWith(l, key, "tokencc_capture_503"))
	wantRetryable(t, err)
	if len(captured(d)) != 0 || len(l.recorded()) != 1 {
		t.Fatalf("captured %+v, ledger %v: want nothing captured and the authorization recorded", captured(d), l.recorded())
	}
	req := chargeWith(l, key, "tokencc_capture_503")
	req.PaymentRef, req.Resume = l.recorded()[0], true
	res, err := gw.Charge(t.Context(), req)
	if err != nil || res.ProviderRef != l.recorded()[0] {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if n := d.count("BraintreeAuthorize"); n != 1 || len(captured(d)) != 1 {
		t.Errorf("%d authorizations, captured %+v: want one of each", n, captured(d))
	}
}

// Search lags 60 s behind writes, as Braintree's may, while the charge's answers get lost.
// Nothing here may rely on the search: the ledger's PaymentRef completes the charge exactly
// once, a refund with it returns the money, and an authorization the ledger never learnt of
// is never captured, whatever a refund without a PaymentRef answers.
func TestBraintreeChargeDuringSearchLag(t *testing.T) {
	t.Parallel()

	t.Run("capture answer lost", func(t *testing.T) {
		t.Parallel()
		d := newBTDouble(t)
		d.SetSearchLag(60 * time.Second)
		l := &ledger{d: d}
		// The capture happens; its answer comes too late for the gateway's timeout.
		d.AddFault(braintreefake.Fault{Operation: "captureTransaction", Count: 1, DelayAfterMS: 1000})
		gw := d.gateway(300 * time.Millisecond)
		key := "lag-capture-lost/charge"
		_, err := gw.Charge(t.Context(), chargeWith(l, key, "tokencc_lag_capture_lost"))
		wantRetryable(t, err)
		refs := l.recorded()
		if len(refs) != 1 || len(captured(d)) != 1 {
			t.Fatalf("ledger %v, captured %+v: want the authorization recorded, then captured", refs, captured(d))
		}
		req := chargeWith(l, key, "tokencc_lag_capture_lost")
		req.PaymentRef, req.Resume = refs[0], true
		res, err := gw.Charge(t.Context(), req)
		if err != nil || res.ProviderRef != refs[0] {
			t.Fatalf("retry with the ledger's PaymentRef = %+v, %v", res, err)
		}
		if n := d.count("BraintreeCapture"); n != 1 || len(captured(d)) != 1 || d.count("BraintreeAuthorize") != 1 {
			t.Errorf("%d captures, %d authorizations, captured %+v: want exactly one of each", n, d.count("BraintreeAuthorize"), captured(d))
		}

		// Refunded through the ledger's ref, during the lag: the money goes back.
		d.settle(refs[0])
		refund, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: key + "/refund", ChargeKey: key, PaymentRef: refs[0], Currency: "usd"})
		if err != nil || refund.NothingCharged || refund.Amount != 2500 {
			t.Fatalf("Refund with the PaymentRef during the lag = %+v, %v; want 2500 returned", refund, err)
		}
		if tx, _ := d.Transaction(refs[0]); len(tx.Refunds) != 1 || tx.Refunds[0].Amount != "25.00" {
			t.Errorf("refunds at Braintree = %+v, want one of 25.00", tx.Refunds)
		}
	})

	t.Run("capture never sent", func(t *testing.T) {
		t.Parallel()
		d, gw := newBTGateway(t)
		d.SetSearchLag(60 * time.Second)
		l := &ledger{d: d}
		d.AddFault(braintreefake.Fault{Operation: "captureTransaction", Count: 1, Status: 502})
		key := "lag-capture-502/charge"
		_, err := gw.Charge(t.Context(), chargeWith(l, key, "tokencc_lag_capture_502"))
		wantRetryable(t, err)
		req := chargeWith(l, key, "tokencc_lag_capture_502")
		req.PaymentRef, req.Resume = l.recorded()[0], true
		if _, err := gw.Charge(t.Context(), req); err != nil {
			t.Fatalf("retry with the ledger's PaymentRef: %v", err)
		}
		if n := d.count("BraintreeCapture"); n != 1 || len(captured(d)) != 1 {
			t.Errorf("%d captures ran, captured %+v: want exactly one", n, captured(d))
		}
	})

	t.Run("authorization answer lost", func(t *testing.T) {
		t.Parallel()
		d := newBTDouble(t)
		d.SetSearchLag(60 * time.Second)
		l := &ledger{d: d}
		d.AddFault(braintreefake.Fault{Operation: "authorizePaymentMethod", Count: 1, DelayAfterMS: 1000})
		gw := d.gateway(300 * time.Millisecond)
		key := "lag-authorize-lost/charge"
		_, err := gw.Charge(t.Context(), chargeWith(l, key, "tokencc_lag_authorize_lost"))
		wantRetryable(t, err)
		if len(l.recorded()) != 0 || len(d.Transactions()) != 1 {
			t.Fatalf("ledger %v, transactions %+v: want one authorization the ledger never learnt of", l.recorded(), d.Transactions())
		}
		// The retry cannot find it and cannot authorize again: outcome unknown, never a decline.
		req := chargeWith(l, key, "tokencc_lag_authorize_lost")
		req.Resume = true
		_, err = gw.Charge(t.Context(), req)
		wantRetryable(t, err)
		// A refund without a PaymentRef (the ledger has none) during the lag says nothing was
		// charged, and that is true: the authorization was never captured, and stays so.
		refund, err := gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: key + "/refund", ChargeKey: key, Currency: "usd"})
		if err != nil || !refund.NothingCharged {
			t.Fatalf("Refund without a PaymentRef = %+v, %v", refund, err)
		}
		if txs := captured(d); len(txs) != 0 || d.count("BraintreeCapture") != 0 || len(d.Transactions()) != 1 {
			t.Errorf("captured %+v after %d captures among %+v: want money held by one authorization only", txs, d.count("BraintreeCapture"), d.Transactions())
		}
		// Once the search catches up, a refund finds the authorization and voids it.
		d.SetSearchLag(0)
		refund, err = gw.Refund(t.Context(), billing.RefundRequest{IdempotencyKey: key + "/refund", ChargeKey: key, Currency: "usd"})
		if err != nil || !refund.NothingCharged {
			t.Fatalf("Refund after the lag = %+v, %v", refund, err)
		}
		if tx := d.Transactions()[0]; tx.Status != "VOIDED" {
			t.Errorf("the authorization is %s, want it voided", tx.Status)
		}
	})
}

// An authorization was never captured, so a refund returns nothing: it voids it, once.
func TestBraintreeRefundOfAnAuthorizationVoidsIt(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	failing := &ledger{d: d, fail: errors.New("ledger down")}
	if _, err := gw.Charge(t.Context(), chargeWith(failing, "refund-auth/charge", "tokencc_refund_auth")); err == nil {
		t.Fatal("want the ledger's failure")
	}
	ref := d.Transactions()[0].LegacyID
	for _, req := range []billing.RefundRequest{
		btRefund("refund-auth/refund", ref, 0),
		btRefund("refund-auth/refund", ref, 0), // the retry of a refund whose answer was lost
		{IdempotencyKey: "refund-auth/refund", ChargeKey: "refund-auth/charge", Currency: "usd"},
	} {
		res, err := gw.Refund(t.Context(), req)
		if err != nil || !res.NothingCharged {
			t.Errorf("Refund(%+v) = %+v, %v; want NothingCharged", req, res, err)
		}
	}
	tx, _ := d.Transaction(ref)
	if tx.Status != "VOIDED" || d.count("BraintreeReverse") != 1 || d.count("BraintreeRefund") != 0 {
		t.Errorf("transaction %s after %d reversals and %d refunds, want voided once", tx.Status, d.count("BraintreeReverse"), d.count("BraintreeRefund"))
	}
}

func TestBraintreeSucceededPayments(t *testing.T) {
	t.Parallel()
	d, gw := newBTGateway(t)
	before := chargeSettled(t, d, gw, "window/before", true)
	time.Sleep(5 * time.Millisecond)
	since := time.Now()
	// More captures than one page of the search holds (50), so the listing pages.
	var want []string
	for i := range 52 {
		want = append(want, chargeSettled(t, d, gw, "window/"+string(rune('a'+i%26))+string(rune('a'+i/26)), i%2 == 0))
	}
	// Partly refunded after settlement, and voided before it: the first took money, the second none.
	if _, err := gw.Refund(t.Context(), btRefund("window/refund", want[0], 1000)); err != nil {
		t.Fatal(err)
	}
	voided := chargeSettled(t, d, gw, "window/voided", false)
	if _, err := gw.Refund(t.Context(), btRefund("window/voided/refund", voided, 0)); err != nil {
		t.Fatal(err)
	}
	// An authorization never captured, and a decline: no money taken.
	failing := &ledger{d: d, fail: errors.New("ledger down")}
	if _, err := gw.Charge(t.Context(), chargeWith(failing, "window/authorized", "tokencc_window_authorized")); err == nil {
		t.Fatal("want the ledger's failure")
	}
	if _, err := gw.Charge(t.Context(), btCharge("window/declined", "fake-processor-declined-2001")); err == nil {
		t.Fatal("want a decline")
	}
	until := time.Now()

	got, err := gw.SucceededPayments(t.Context(), since)
	if err != nil {
		t.Fatalf("SucceededPayments: %v", err)
	}
	var refs []string
	for _, p := range got {
		refs = append(refs, p.Ref)
	}
	if strings.Join(refs, ",") != strings.Join(want, ",") {
		t.Fatalf("SucceededPayments since %s = %v, want the %d captures in order (not %s, the voided, the authorized or the declined)",
			since, refs, len(want), before)
	}
	for i, p := range got {
		if p.OrderID != btOrderID || p.Amount != 2500 || p.Currency != "usd" || p.Created.Before(since.Truncate(time.Microsecond)) ||
			p.Created.After(until) || i > 0 && p.Created.Before(got[i-1].Created) {
			t.Errorf("payment %d = %+v, want order %s, 2500 usd, created in the window, oldest first", i, p, btOrderID)
		}
		if wantRefunded := map[bool]int64{true: 1000}[i == 0]; p.Refunded != wantRefunded {
			t.Errorf("payment %s refunded %d, want %d", p.Ref, p.Refunded, wantRefunded)
		}
	}
	if n := d.count("BraintreeSucceededPayments"); n != 2 {
		t.Errorf("%d search pages, want 2", n)
	}
}
