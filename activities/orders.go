package activities

import (
	"context"
	"errors"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// CreateOrderInput is the checkout whose order is written.
type CreateOrderInput struct {
	CheckoutID     string   `json:"checkout_id"`
	IdempotencyKey string   `json:"idempotency_key"`
	RequestHash    string   `json:"request_hash"`
	WorkflowID     string   `json:"workflow_id"`
	Customer       Customer `json:"customer"`
	Provider       string   `json:"provider"`
	Lines          []Line   `json:"lines"`
	// Rejection records the checkout as failed without pricing it.
	Rejection *domain.Failure `json:"rejection,omitempty"`
}

// OrderSummary is the order as written.
type OrderSummary struct {
	OrderID  string             `json:"order_id"`
	Status   domain.OrderStatus `json:"status"`
	Amount   int64              `json:"amount"`
	Currency string             `json:"currency"`
	Failure  *domain.Failure    `json:"failure,omitempty"`
	// Plan is the subscription plan the order buys, if it buys one.
	Plan *Plan `json:"plan,omitempty"`
}

// Plan is a subscription plan as an order bought it.
type Plan struct {
	SKU  string `json:"sku"`
	Name string `json:"name"`
	// Amount is the price of one period, whatever is due today.
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	BillingInterval string `json:"billing_interval"`
	TrialDays       int    `json:"trial_days"`
}

// CreateOrder prices the cart from the database and writes the order, once per checkout.
// A cart that cannot be priced comes back as a failed order rather than an error.
func (a *Activities) CreateOrder(ctx context.Context, in CreateOrderInput) (OrderSummary, error) {
	o, s, err := a.createOrder(ctx, in)
	a.observeOrderCreated(ctx, in, o, s, err)
	return s, err
}

// createOrder is CreateOrder's business; it returns the order as stored and as summarized.
func (a *Activities) createOrder(ctx context.Context, in CreateOrderInput) (store.Order, OrderSummary, error) {
	o, err := a.Store.CreateOrder(ctx, store.NewOrder{
		CheckoutID:     in.CheckoutID,
		IdempotencyKey: in.IdempotencyKey,
		RequestHash:    in.RequestHash,
		WorkflowID:     in.WorkflowID,
		Email:          in.Customer.Email,
		Name:           in.Customer.Name,
		Provider:       in.Provider,
		Lines:          lineRequests(in.Lines),
		Rejection:      in.Rejection,
	})
	if err != nil {
		return o, OrderSummary{}, err
	}
	s := OrderSummary{OrderID: o.ID, Status: o.Status, Amount: o.TotalAmount, Currency: o.Currency}
	if o.FailureCode != "" {
		s.Failure = &domain.Failure{Code: o.FailureCode, Message: o.FailureMessage}
		return o, s, nil
	}
	// Pricing allows a plan only alone in its cart.
	if len(o.Lines) == 1 {
		line := o.Lines[0]
		products, err := a.Store.ProductsBySKU(ctx, []string{line.SKU})
		if err != nil {
			return o, OrderSummary{}, err
		}
		if p := products[line.SKU]; p.Kind == store.KindSubscription {
			s.Plan = &Plan{SKU: p.SKU, Name: line.Name, Amount: line.UnitAmount, Currency: o.Currency,
				BillingInterval: p.BillingInterval, TrialDays: p.TrialDays}
		}
	}
	return o, s, nil
}

// The workflows that call the order activities, which count a checkout's outcome and not a
// renewal's.
const (
	CallerCheckout = "checkout"
	CallerRenewal  = "renewal"
)

// OrderFailure names an order and why it failed.
type OrderFailure struct {
	OrderID string         `json:"order_id"`
	Failure domain.Failure `json:"failure"`
	// Caller is the workflow failing the order: CallerCheckout or CallerRenewal. See isCheckout.
	Caller string `json:"caller,omitempty"`
}

// FailOrder records that a checkout failed before any money moved.
func (a *Activities) FailOrder(ctx context.Context, in OrderFailure) error {
	err := orderStateError(a.Store.FailOrder(ctx, in.OrderID, in.Failure))
	a.observeOrderFailed(in, err)
	return err
}

// CompleteOrderInput names the order and the confirmed user who placed it.
type CompleteOrderInput struct {
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
	// Caller is the workflow completing the order: CallerCheckout or CallerRenewal. See isCheckout.
	Caller string `json:"caller,omitempty"`
	// Receipt, when set, is the email the completed order sends. It is enqueued in the outbox in
	// the completion's own transaction and sent by the worker's OutboxRelay, so that the
	// workflow needs no email activity (and no engine round trip) of its own for it.
	Receipt *EmailInput `json:"receipt,omitempty"`
}

// CompleteOrder links the order to its user and marks it completed, with its receipt queued.
func (a *Activities) CompleteOrder(ctx context.Context, in CompleteOrderInput) error {
	var then []store.OutboxMessage
	if in.Receipt != nil {
		// Checked now rather than by the relay: a receipt that can never be sent must not be
		// queued to fail there. Completing the order does not wait on it.
		m, err := emailMessage(*in.Receipt, a.Links)
		if err != nil {
			a.logger(ctx).ErrorContext(ctx, "receipt not queued", "order_id", in.OrderID, "error", err)
		} else {
			then = append(then, m)
		}
	}
	err := orderStateError(a.Store.CompleteOrder(ctx, in.OrderID, in.UserID, then...))
	if err == nil && len(then) > 0 && a.outboxWake != nil {
		a.outboxWake()
	}
	a.observeOrderCompleted(ctx, in, err)
	return err
}

// isCheckout reports whether an order activity runs for a checkout, whose outcome the checkout
// counters and checkout_completed record. The workflows say so in the input. An input without
// a caller counts nothing: FailOrder and CompleteOrder run as local activities, whose input the
// workflow code builds again on every attempt, so after an upgrade even a run started before it
// passes its caller; only a caller outside the workflows (a test, a tool) leaves it empty, and
// counting a renewal's order as a checkout's would be worse than counting nothing.
func isCheckout(caller string) bool { return caller == CallerCheckout }

// orderStateError makes a forbidden status change final: retrying cannot make it allowed.
func orderStateError(err error) error {
	if errors.Is(err, store.ErrTransition) {
		return final(err.Error(), ErrTypeOrderState, err, domain.Failure{Code: "order_state", Message: "the order cannot make this change"})
	}
	return err
}

// OrderView is an order as the refund workflow needs it.
type OrderView struct {
	OrderID        string             `json:"order_id"`
	Status         domain.OrderStatus `json:"status"`
	Provider       string             `json:"provider"`
	PaymentRef     string             `json:"payment_ref"`
	Amount         int64              `json:"amount"`
	Currency       string             `json:"currency"`
	RefundedAmount int64              `json:"refunded_amount"`
}

// LoadOrder reads an order. One that does not exist is final.
func (a *Activities) LoadOrder(ctx context.Context, orderID string) (OrderView, error) {
	o, err := a.Store.OrderByID(ctx, orderID)
	if errors.Is(err, store.ErrNotFound) {
		return OrderView{}, final("no such order", ErrTypeRefundRejected, err, domain.Failure{Code: "order_not_found", Message: "no such order"})
	}
	if err != nil {
		return OrderView{}, err
	}
	return OrderView{OrderID: o.ID, Status: o.Status, Provider: o.Provider, PaymentRef: o.ProviderPaymentRef,
		Amount: o.TotalAmount, Currency: o.Currency, RefundedAmount: o.RefundedAmount}, nil
}
