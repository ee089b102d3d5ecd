package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/errorreport"
	"github.com/cartflow/cartflow/internal/store"
)

// This file finds orphan payments, payments that took money without a paid order to show for
// them, and refunds them. Two paths find them: a provider's webhook saying a payment succeeded
// for an order that failed or expired (FindOrphanPayment), and the reconciliation that compares
// each provider's recent payments with the ledger (FindOrphanPayments). Both record an orphan
// once per provider payment, alert ops once, and hand it to RefundOrphanPayment, whose refund
// carries one idempotency key per payment: a payment found twice is refunded once.
//
// What is an orphan, precisely. A payment is an order's own charge, never an orphan, when a
// charge that succeeded in the ledger names it. Otherwise:
//   - it is in flight while its order is pending, charging or waiting for authentication: the
//     order's checkout or renewal has not settled the charge yet, and will either record this
//     payment or refund it itself. Refunding it from under that workflow could leave an order
//     paid with money already returned, so both paths leave it, and a later reconciliation
//     looks again once the order has settled;
//   - the webhook path acts only on an order that failed or expired, the final states that say
//     no money was taken (a compensation that found "nothing charged" fails the order too). An
//     order that is paid, refunded or unknown is left to the reconciliation, which knows what
//     the provider has refunded already;
//   - the reconciliation also counts a payment for a paid order that is not that order's
//     charge (a double charge), and one that names cartflow's key or order but whose order
//     cartflow does not have. It leaves alone a payment already refunded in full, and one that
//     carries nothing of cartflow's (no key, order or cart reference): money someone else took
//     on the same provider account is not cartflow's to return.

// OrphanPayment is a payment that took money without a paid order to show for it, to refund.
type OrphanPayment struct {
	Provider   string `json:"provider"`
	PaymentRef string `json:"payment_ref"`
	// OrderID is the order the payment was made for; empty when cartflow has none.
	OrderID  string `json:"order_id,omitempty"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// FoundBy is store.FoundByWebhook or store.FoundByReconciliation.
	FoundBy string `json:"found_by"`
	// RefundKey is the idempotency key of the payment's one refund.
	RefundKey string `json:"refund_key"`
}

// OrphanCheck is a provider event saying that a payment succeeded, for an order cartflow has.
type OrphanCheck struct {
	Provider   string `json:"provider"`
	PaymentRef string `json:"payment_ref"`
	OrderID    string `json:"order_id"`
	// Amount and Currency are the payment's, as the event gives them (zero when it does not).
	Amount   int64  `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
}

// FindOrphanPayment checks a payment that a provider event says succeeded against the ledger.
// When it took money for an order that failed or expired and is not that order's charge, it is
// recorded as an orphan found by the webhook, on its order too, and reported to ops; the
// orphan is returned for RefundOrphanPayment. Otherwise, or when it was found and settled
// before, it returns nil.
func (a *Activities) FindOrphanPayment(ctx context.Context, in OrphanCheck) (*OrphanPayment, error) {
	standings, err := a.Store.PaymentStandings(ctx, in.Provider, []store.ProviderPaymentLinks{{Ref: in.PaymentRef, OrderID: in.OrderID}})
	if err != nil {
		return nil, err
	}
	s := standings[0]
	if s.Recorded || s.OrderID == "" || (s.OrderStatus != domain.OrderFailed && s.OrderStatus != domain.OrderExpired) {
		return nil, nil
	}
	o, _, err := a.recordOrphan(ctx, store.NewOrphan{
		Provider: in.Provider, ProviderRef: in.PaymentRef, OrderID: s.OrderID, Amount: in.Amount, Currency: in.Currency,
		FoundBy: store.FoundByWebhook,
	})
	return o, err
}

// ReconcileProviderInput asks to reconcile one provider's payments made since a time.
type ReconcileProviderInput struct {
	Provider string    `json:"provider"`
	Since    time.Time `json:"since"`
}

// ProviderReconciliation is what comparing one provider's payments with the ledger found.
type ProviderReconciliation struct {
	Provider string `json:"provider"`
	// Checked counts the payments that took money; each is counted once in the fields below.
	Checked int `json:"checked"`
	// Matched are orders' own charges; InFlight those whose order is still being charged;
	// Refunded those already refunded in full; Foreign those that carry nothing of cartflow's.
	Matched  int `json:"matched"`
	InFlight int `json:"in_flight"`
	Refunded int `json:"refunded"`
	Foreign  int `json:"foreign"`
	// Orphans are the orphan payments still to refund, found now or by an earlier run.
	Orphans []OrphanPayment `json:"orphans,omitempty"`
	// Found counts the orphans recorded by this run; Settled those found before and already
	// refunded, or whose refund the provider refused (ops act on those).
	Found   int `json:"found"`
	Settled int `json:"settled"`
}

// reconcileBatch is how many payments one ledger query checks.
const reconcileBatch = 500

// ReconcilingProviders lists, sorted, the providers whose gateway can list its payments.
func (a *Activities) ReconcilingProviders(context.Context) ([]string, error) {
	providers := make([]string, 0, len(a.Reconcilers))
	for p := range a.Reconcilers {
		providers = append(providers, p)
	}
	slices.Sort(providers)
	return providers, nil
}

// FindOrphanPayments compares the provider's payments that took money since in.Since with the
// ledger, records each orphan among them (found by the reconciliation) and reports the new
// ones to ops. It returns the orphans still to refund, and counts of the rest. It heartbeats
// while the provider pages through its payments and between ledger batches, so that a long
// window does not time out; a retry starts over, and finds recorded orphans recorded.
func (a *Activities) FindOrphanPayments(ctx context.Context, in ReconcileProviderInput) (ProviderReconciliation, error) {
	out := ProviderReconciliation{Provider: in.Provider}
	rec, ok := a.Reconcilers[in.Provider]
	if !ok {
		err := fmt.Errorf("provider %q cannot list its payments", in.Provider)
		return out, final(err.Error(), ErrTypeUnknownProvider, err, domain.Failure{Code: "unknown_provider", Message: err.Error()})
	}
	stop := a.heartbeat(ctx)
	payments, err := rec.SucceededPayments(ctx, in.Since)
	stop()
	if err != nil {
		return out, fmt.Errorf("list %s payments since %s: %w", in.Provider, in.Since.Format(time.RFC3339), err)
	}
	for batch := range slices.Chunk(payments, reconcileBatch) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, out.Checked)
		}
		if err := a.reconcileBatch(ctx, in.Provider, batch, &out); err != nil {
			return out, err
		}
	}
	a.logger(ctx).InfoContext(ctx, "provider payments reconciled", "provider", in.Provider, "since", in.Since,
		"checked", out.Checked, "matched", out.Matched, "in_flight", out.InFlight, "refunded", out.Refunded,
		"foreign", out.Foreign, "orphans_found", out.Found, "orphans_to_refund", len(out.Orphans))
	return out, nil
}

func (a *Activities) reconcileBatch(ctx context.Context, provider string, batch []billing.ProviderPayment, out *ProviderReconciliation) error {
	var ours []billing.ProviderPayment
	for _, p := range batch {
		out.Checked++
		switch {
		case p.IdempotencyKey == "" && p.OrderID == "" && p.CartRef == "":
			out.Foreign++
		case p.Refunded >= p.Amount:
			out.Refunded++
		default:
			ours = append(ours, p)
		}
	}
	links := make([]store.ProviderPaymentLinks, len(ours))
	for i, p := range ours {
		links[i] = store.ProviderPaymentLinks{Ref: p.Ref, IdempotencyKey: p.IdempotencyKey, OrderID: p.OrderID, CartRef: p.CartRef}
	}
	standings, err := a.Store.PaymentStandings(ctx, provider, links)
	if err != nil {
		return err
	}
	for i, p := range ours {
		switch s := standings[i]; {
		case s.Recorded:
			out.Matched++
		case s.InFlight():
			out.InFlight++
		default:
			o, found, err := a.recordOrphan(ctx, store.NewOrphan{
				Provider: provider, ProviderRef: p.Ref, OrderID: s.OrderID, Amount: p.Amount - p.Refunded, Currency: p.Currency,
				FoundBy: store.FoundByReconciliation,
			})
			if err != nil {
				return err
			}
			if found {
				out.Found++
			}
			if o == nil {
				out.Settled++
				continue
			}
			out.Orphans = append(out.Orphans, *o)
		}
	}
	return nil
}

// recordOrphan records an orphan, and alerts ops the first time it is found (found says this
// call recorded it). It returns the orphan to refund, or nil when its refund is settled.
func (a *Activities) recordOrphan(ctx context.Context, o store.NewOrphan) (_ *OrphanPayment, found bool, _ error) {
	rec, found, err := a.Store.RecordOrphanPayment(ctx, o)
	if err != nil {
		return nil, false, err
	}
	if found {
		a.Metrics.OrphanPayment(rec.Provider, rec.FoundBy)
		a.Reporter.Alert(ctx, orphanAlert(rec.NewOrphan, "a payment took money without a paid order; cartflow refunds it", false))
		a.logger(ctx).WarnContext(ctx, "orphan payment found", "provider", rec.Provider, "provider_ref", rec.ProviderRef,
			"order_id", rec.OrderID, "found_by", rec.FoundBy, "amount", rec.Amount, "currency", rec.Currency)
	}
	if rec.Status != store.OrphanRefunding {
		return nil, found, nil
	}
	return &OrphanPayment{
		Provider: rec.Provider, PaymentRef: rec.ProviderRef, OrderID: rec.OrderID, Amount: rec.Amount, Currency: rec.Currency,
		FoundBy: rec.FoundBy, RefundKey: rec.RefundKey,
	}, found, nil
}

// orphanAlert is the ops alert about an orphan payment: the provider's payment and cartflow's
// order, never the customer.
func orphanAlert(o store.NewOrphan, message string, urgent bool) errorreport.Alert {
	return errorreport.Alert{Kind: "orphan_payment", Message: message, Urgent: urgent, Tags: map[string]string{
		errorreport.TagProvider: o.Provider, errorreport.TagProviderRef: o.ProviderRef, errorreport.TagOrderID: o.OrderID,
		errorreport.TagFoundBy: o.FoundBy, "amount": strconv.FormatInt(o.Amount, 10), "currency": o.Currency,
	}}
}

// OrphanRefundResult is the outcome of an orphan payment's refund.
type OrphanRefundResult struct {
	// Refunded says the money went back; otherwise the provider refused the refund for good,
	// and ops were alerted to return it by hand.
	Refunded  bool   `json:"refunded"`
	RefundRef string `json:"refund_ref,omitempty"`
	Amount    int64  `json:"amount,omitempty"`
}

// RefundOrphanPayment returns all that remains of an orphan payment through its provider, under
// the orphan's one refund key, and records the outcome on the orphan (and its order). The
// ledger's payments are left alone: the money was never an order's charge. A refusal by the
// provider is final: the orphan is marked refund_failed and ops get an urgent alert. Any other
// error is retried under the same key.
func (a *Activities) RefundOrphanPayment(ctx context.Context, in OrphanPayment) (OrphanRefundResult, error) {
	gw, err := a.gateway(in.Provider)
	if err != nil {
		return OrphanRefundResult{}, err
	}
	stop := a.heartbeat(ctx)
	res, err := gw.Refund(ctx, billing.RefundRequest{IdempotencyKey: in.RefundKey, PaymentRef: in.PaymentRef, Currency: in.Currency})
	stop()
	log := a.logger(ctx).With("provider", in.Provider, "provider_ref", in.PaymentRef, "order_id", in.OrderID)
	switch {
	case err != nil && !billing.IsFinal(err):
		log.WarnContext(ctx, "orphan payment refund failed, will retry", "error", err)
		return OrphanRefundResult{}, err
	case err == nil && res.NothingCharged:
		err = errors.New("the provider found no payment to refund")
	}
	if err != nil {
		if serr := a.Store.ResolveOrphanPayment(ctx, in.Provider, in.PaymentRef, store.OrphanRefund{Failed: true}); serr != nil {
			return OrphanRefundResult{}, serr
		}
		a.Metrics.Refund(in.Provider, "rejected")
		a.Reporter.Alert(ctx, orphanAlert(store.NewOrphan{Provider: in.Provider, ProviderRef: in.PaymentRef, OrderID: in.OrderID,
			Amount: in.Amount, Currency: in.Currency, FoundBy: in.FoundBy},
			"the refund of a payment without a paid order was refused; return the money by hand", true))
		log.ErrorContext(ctx, "orphan payment refund refused", "error", err)
		return OrphanRefundResult{}, nil
	}
	if err := a.Store.ResolveOrphanPayment(ctx, in.Provider, in.PaymentRef, store.OrphanRefund{RefundRef: res.ProviderRef, Amount: res.Amount}); err != nil {
		return OrphanRefundResult{}, err
	}
	a.Metrics.Refund(in.Provider, "succeeded")
	log.InfoContext(ctx, "orphan payment refunded", "refund_ref", res.ProviderRef, "amount", res.Amount)
	return OrphanRefundResult{Refunded: true, RefundRef: res.ProviderRef, Amount: res.Amount}, nil
}
