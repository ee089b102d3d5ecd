package billing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plutov/paypal/v4"
)

// The PayPal gateway lists the captures it took for the reconciliation.
var _ Reconciler = (*PayPal)(nil)

// PayPalOrderRequest asks PayPal for an order that the buyer then approves in PayPal's window.
type PayPalOrderRequest struct {
	// IdempotencyKey becomes the PayPal-Request-Id: the same key returns the order it created.
	IdempotencyKey string
	// Amount, in minor units of Currency, is the cart's price from the database.
	Amount   int64
	Currency string
	// CartRef is sent as the purchase unit's custom_id: the binding the capture checks.
	CartRef string
}

// PayPalOrder is an order PayPal created for cartflow, as PayPal answered.
type PayPalOrder struct {
	ID string
	// ApproveURL is where the storefront sends the buyer to approve the payment.
	ApproveURL string
	// CartRef, Amount and Currency are the order's as PayPal holds them: for a repeated
	// IdempotencyKey those of the order first created, which may differ from the request's.
	CartRef  string
	Amount   int64
	Currency string
}

// CreateOrder creates an order with intent CAPTURE for the server-priced amount, bound to
// req.CartRef by its custom_id. A technical failure is retried with the same key, which PayPal
// answers with the order it created, if any.
func (p *PayPal) CreateOrder(ctx context.Context, req PayPalOrderRequest) (PayPalOrder, error) {
	if req.IdempotencyKey == "" {
		return PayPalOrder{}, &RejectedError{Code: "idempotency_key_required", Message: "the order has no idempotency key"}
	}
	if req.CartRef == "" || len(req.CartRef) > 127 {
		return PayPalOrder{}, &RejectedError{Code: "invalid_cart_ref", Message: "the cart reference must be 1 to 127 characters", Malformed: true}
	}
	value, err := paypalValue(req.Amount, req.Currency)
	if err != nil {
		return PayPalOrder{}, &RejectedError{Code: "invalid_amount", Message: err.Error()}
	}
	c := p.client()
	unit := paypal.PurchaseUnitRequest{
		Amount:   &paypal.PurchaseUnitAmount{Currency: strings.ToUpper(req.Currency), Value: value},
		CustomID: req.CartRef,
	}
	o, err := c.CreateOrderWithPaypalRequestID(ctx, "CAPTURE", []paypal.PurchaseUnitRequest{unit}, nil, nil, paypalRequestID(req.IdempotencyKey))
	p.observe(c, err)
	if err != nil {
		return PayPalOrder{}, paypalClassify(err, "order_not_found")
	}
	if paypalCheckRef(o.ID, "order") != nil || len(o.PurchaseUnits) != 1 || o.PurchaseUnits[0].Amount == nil {
		return PayPalOrder{}, fmt.Errorf("paypal answered the order creation without one purchase unit and an id (status %s)", o.Status)
	}
	pu := o.PurchaseUnits[0]
	amount, err := paypalMinor(pu.Amount.Value, pu.Amount.Currency)
	if err != nil {
		return PayPalOrder{}, err
	}
	out := PayPalOrder{ID: o.ID, CartRef: pu.CustomID, Amount: amount, Currency: strings.ToLower(pu.Amount.Currency)}
	for _, l := range o.Links {
		// "payer-action" is the approve link of an order created with a payment_source.
		if l.Rel == "approve" || l.Rel == "payer-action" {
			out.ApproveURL = l.Href
		}
	}
	if out.ApproveURL == "" {
		return PayPalOrder{}, fmt.Errorf("paypal answered order %s (status %s) without an approve link", o.ID, o.Status)
	}
	p.log.InfoContext(ctx, "paypal order created", "paypal_order", o.ID, "status", o.Status)
	return out, nil
}

// paypalSearchWindow is the longest range one Transaction Search request may cover.
const paypalSearchWindow = 31 * 24 * time.Hour

// paypalSearchPageSize is the most transactions PayPal returns per page.
const paypalSearchPageSize = 500

// SucceededPayments lists the captures that took money since then, through PayPal's
// Transaction Search API: completed PayPal Checkout payments (event code T0006), with what
// merchant-initiated refunds (T1107) in the same window returned of each. PayPal lists a
// transaction up to three hours after it happened, so a caller looks back well beyond that:
// the reconciliation's 48 hours do.
func (p *PayPal) SucceededPayments(ctx context.Context, since time.Time) ([]ProviderPayment, error) {
	now := time.Now().UTC()
	var payments []ProviderPayment
	index := map[string]int{}
	refunded := map[string]int64{}
	for start := since.UTC().Truncate(time.Second); start.Before(now); start = start.Add(paypalSearchWindow) {
		end := start.Add(paypalSearchWindow)
		if end.After(now) {
			end = now
		}
		for page := 1; ; page++ {
			res, err := p.listTransactions(ctx, start, end, page)
			if err != nil {
				return nil, paypalClassify(err, "transactions_not_found")
			}
			for _, d := range res.TransactionDetails {
				t := d.TransactionInfo
				switch {
				case t.TransactionStatus != "S":
					// Pending, denied or reversed: no money taken, or none kept.
				case t.TransactionEventCode == "T0006":
					amount, err := paypalMinor(t.TransactionAmount.Value, t.TransactionAmount.Currency)
					if err != nil {
						return nil, fmt.Errorf("paypal transaction %s: %w", t.TransactionID, err)
					}
					if _, seen := index[t.TransactionID]; !seen && amount > 0 {
						index[t.TransactionID] = len(payments)
						payments = append(payments, ProviderPayment{
							Ref: t.TransactionID, CartRef: t.CustomField, Amount: amount,
							Currency: strings.ToLower(t.TransactionAmount.Currency), Created: time.Time(t.TransactionInitiationDate),
						})
					}
				case t.TransactionEventCode == "T1107" && t.PayPalReferenceID != "":
					amount, err := paypalMinor(strings.TrimPrefix(t.TransactionAmount.Value, "-"), t.TransactionAmount.Currency)
					if err != nil {
						return nil, fmt.Errorf("paypal transaction %s: %w", t.TransactionID, err)
					}
					refunded[t.PayPalReferenceID] += amount
				}
			}
			if page >= res.TotalPages {
				break
			}
		}
	}
	for ref, amount := range refunded {
		if i, ok := index[ref]; ok {
			payments[i].Refunded = min(amount, payments[i].Amount)
		}
	}
	slices.SortStableFunc(payments, func(a, b ProviderPayment) int { return a.Created.Compare(b.Created) })
	return payments, nil
}

// listTransactions reads one page of the Transaction Search API.
func (p *PayPal) listTransactions(ctx context.Context, start, end time.Time, page int) (*paypal.TransactionSearchResponse, error) {
	fields, size := "all", paypalSearchPageSize
	c := p.client()
	res, err := c.ListTransactions(ctx, &paypal.TransactionSearchRequest{StartDate: start, EndDate: end, Fields: &fields, PageSize: &size, Page: &page})
	p.observe(c, err)
	return res, err
}
