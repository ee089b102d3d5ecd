package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
)

// How an orphan payment was found, as orphan_payments.found_by says.
const (
	FoundByWebhook        = "webhook"
	FoundByReconciliation = "reconciliation"
)

// An orphan payment's refund, as orphan_payments.status says.
const (
	OrphanRefunding    = "refunding"
	OrphanRefunded     = "refunded"
	OrphanRefundFailed = "refund_failed"
)

// OrderEventOrphanPayment and OrderEventOrphanRefunded are the order_events types that record
// on an order a payment that took money for it without being its charge, and that payment's refund.
const (
	OrderEventOrphanPayment  = "orphan_payment"
	OrderEventOrphanRefunded = "orphan_payment.refunded"
)

// ProviderPaymentLinks are what a provider keeps of a payment that can tie it to an order.
type ProviderPaymentLinks struct {
	// Ref is the provider's payment (a PaymentIntent, a PayPal capture, a Braintree transaction).
	Ref string
	// IdempotencyKey, OrderID and CartRef are the charge's key, cartflow's order id and the
	// PayPal order's cart binding, each when the provider kept it.
	IdempotencyKey, OrderID, CartRef string
}

// PaymentStanding is what the ledger says of a provider payment that took money.
type PaymentStanding struct {
	// Recorded says a charge that succeeded in the ledger names the payment: it is an order's
	// own charge, never an orphan.
	Recorded bool
	// OrderID and OrderStatus are the order the payment is tied to; empty when none is.
	OrderID     string
	OrderStatus domain.OrderStatus
}

// InFlight says the payment's order is still being charged: its checkout or renewal has not
// settled the charge yet, and will either record this payment as its charge or refund it.
func (s PaymentStanding) InFlight() bool {
	switch s.OrderStatus {
	case domain.OrderPending, domain.OrderCharging, domain.OrderRequiresAction:
		return true
	}
	return false
}

// PaymentStandings reads the ledger's standing of each of a provider's payments, in the order
// given, with one query for the whole batch.
func (s *Store) PaymentStandings(ctx context.Context, provider string, payments []ProviderPaymentLinks) ([]PaymentStanding, error) {
	if len(payments) == 0 {
		return nil, nil
	}
	arg := db.PaymentStandingsParams{Provider: provider}
	for _, p := range payments {
		arg.Refs = append(arg.Refs, p.Ref)
		arg.IdempotencyKeys = append(arg.IdempotencyKeys, p.IdempotencyKey)
		arg.OrderIds = append(arg.OrderIds, p.OrderID)
		arg.CartRefs = append(arg.CartRefs, p.CartRef)
	}
	rows, err := s.q.PaymentStandings(ctx, arg)
	if err != nil {
		return nil, fmt.Errorf("read the ledger's standing of %d %s payments: %w", len(payments), provider, err)
	}
	if len(rows) != len(payments) {
		return nil, fmt.Errorf("read the ledger's standing of %d %s payments: %d answers", len(payments), provider, len(rows))
	}
	return convert(rows, func(r db.PaymentStandingsRow) PaymentStanding {
		return PaymentStanding{Recorded: r.Recorded, OrderID: r.OrderID, OrderStatus: domain.OrderStatus(r.OrderStatus)}
	}), nil
}

// NewOrphan is a payment found to have taken money without a paid order to show for it.
type NewOrphan struct {
	Provider, ProviderRef string
	// OrderID is the order the payment was made for, or "" when cartflow knows none.
	OrderID  string
	Amount   int64
	Currency string
	// FoundBy is FoundByWebhook or FoundByReconciliation.
	FoundBy string
}

// Orphan is an orphan payment as recorded.
type Orphan struct {
	NewOrphan
	// Status is OrphanRefunding until the refund's outcome is known.
	Status string
	// RefundKey is the idempotency key of the orphan's one refund.
	RefundKey  string
	RefundRef  string
	FoundAt    time.Time
	ResolvedAt *time.Time
}

func orphanFrom(r db.OrphanPayment) Orphan {
	return Orphan{
		NewOrphan: NewOrphan{Provider: r.Provider, ProviderRef: r.ProviderRef, OrderID: deref(r.OrderID),
			Amount: r.Amount, Currency: r.Currency, FoundBy: r.FoundBy},
		Status: r.Status, RefundKey: r.RefundKey, RefundRef: deref(r.RefundRef), FoundAt: r.FoundAt, ResolvedAt: r.ResolvedAt,
	}
}

// OrphanRefundKey is the idempotency key of an orphan payment's refund: one per provider
// payment, so that however often the payment is found, it is refunded once.
func OrphanRefundKey(provider, providerRef string) string {
	return "orphan/" + provider + "/" + providerRef
}

// RecordOrphanPayment records an orphan payment once per provider payment, and on its order
// (an order_events row) when it has one. It returns the orphan as recorded, and found=true only
// for the call that recorded it, so that the payment is reported to ops once however often it
// is found again.
func (s *Store) RecordOrphanPayment(ctx context.Context, o NewOrphan) (_ Orphan, found bool, err error) {
	var out db.OrphanPayment
	err = s.inTx(ctx, func(q *db.Queries) error {
		var orderID *string
		if o.OrderID != "" {
			orderID = &o.OrderID
		}
		rows, err := q.InsertOrphanPayment(ctx, db.InsertOrphanPaymentParams{
			Provider: o.Provider, ProviderRef: o.ProviderRef, OrderID: orderID, Amount: o.Amount, Currency: o.Currency,
			FoundBy: o.FoundBy, RefundKey: OrphanRefundKey(o.Provider, o.ProviderRef),
		})
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		found = rows == 1
		if out, err = q.OrphanPayment(ctx, db.OrphanPaymentParams{Provider: o.Provider, ProviderRef: o.ProviderRef}); err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		if !found || out.OrderID == nil {
			return nil
		}
		return q.InsertOrderEvent(ctx, db.InsertOrderEventParams{
			OrderID: *out.OrderID, Provider: o.Provider, ProviderEventID: out.RefundKey, Type: OrderEventOrphanPayment,
			Amount: o.Amount, Currency: o.Currency, Reason: o.FoundBy,
		})
	})
	if err != nil {
		return Orphan{}, false, fmt.Errorf("record orphan payment %s %s: %w", o.Provider, o.ProviderRef, err)
	}
	return orphanFrom(out), found, nil
}

// OrphanPayment reads an orphan payment; ErrNotFound when the payment is none.
func (s *Store) OrphanPayment(ctx context.Context, provider, providerRef string) (Orphan, error) {
	r, err := s.q.OrphanPayment(ctx, db.OrphanPaymentParams{Provider: provider, ProviderRef: providerRef})
	if err != nil {
		return Orphan{}, readFailed(err, "orphan payment "+provider+" "+providerRef)
	}
	return orphanFrom(r), nil
}

// OrphanRefund is the outcome of an orphan payment's refund.
type OrphanRefund struct {
	// Failed says the provider refused the refund for good: ops must return the money by hand.
	Failed bool
	// RefundRef and Amount are the provider's refund and what it returned, when it succeeded.
	RefundRef string
	Amount    int64
}

// ResolveOrphanPayment records the outcome of an orphan payment's refund, and a refund that
// succeeded on its order. A refunded orphan stays refunded: resolving it again changes nothing.
func (s *Store) ResolveOrphanPayment(ctx context.Context, provider, providerRef string, out OrphanRefund) error {
	err := s.inTx(ctx, func(q *db.Queries) error {
		arg := db.ResolveOrphanPaymentParams{Status: OrphanRefunded, Provider: provider, ProviderRef: providerRef, RefundedAmount: out.Amount}
		if out.Failed {
			arg.Status = OrphanRefundFailed
		}
		if out.RefundRef != "" {
			arg.RefundRef = &out.RefundRef
		}
		rows, err := q.ResolveOrphanPayment(ctx, arg)
		if err != nil || rows == 0 || out.Failed {
			return err
		}
		o, err := q.OrphanPayment(ctx, db.OrphanPaymentParams{Provider: provider, ProviderRef: providerRef})
		if err != nil || o.OrderID == nil {
			return err
		}
		return q.InsertOrderEvent(ctx, db.InsertOrderEventParams{
			OrderID: *o.OrderID, Provider: provider, ProviderEventID: o.RefundKey + "/refunded", Type: OrderEventOrphanRefunded,
			Amount: o.Amount, Currency: o.Currency, Reason: out.RefundRef,
		})
	})
	if err != nil {
		return fmt.Errorf("resolve orphan payment %s %s: %w", provider, providerRef, err)
	}
	return nil
}
