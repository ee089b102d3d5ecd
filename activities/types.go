package activities

import (
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/directory"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// The activities' own payload types. Workflows send and receive these, and Temporal records them
// in histories, so they are declared here rather than aliased to the store's or billing's
// structs: a change in either package must not silently change a workflow's payload. The JSON
// names are the ones recorded in the histories under workflows/testdata.

// Customer is a customer after the User Directory's standardization.
type Customer struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Line is one cart line: a SKU and a quantity, never a price.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// ChargeResult is a charge that succeeded, or one that waits for the customer to authenticate.
type ChargeResult struct {
	// ProviderRef identifies the payment at the provider (a PaymentIntent id for Stripe).
	ProviderRef string `json:"provider_ref"`
	// Action, when set, means no money has moved yet: the customer must authenticate first.
	Action *PaymentAction `json:"action,omitempty"`
}

// PaymentAction is what the storefront needs to let the customer authenticate a payment.
type PaymentAction struct {
	ClientSecret string `json:"client_secret"`
	// Type is the provider's next action, such as use_stripe_sdk or redirect_to_url.
	Type        string `json:"type"`
	RedirectURL string `json:"redirect_url,omitempty"`
}

// RefundResult is the outcome of a refund.
type RefundResult struct {
	ProviderRef string `json:"provider_ref"`
	Amount      int64  `json:"amount"`
	// NothingCharged means no successful payment exists for the charge, so nothing was returned.
	NothingCharged bool `json:"nothing_charged"`
}

// SavedPaymentMethod is a payment method the provider keeps for later charges.
type SavedPaymentMethod struct {
	// CustomerRef is the provider's customer (a Stripe Customer id).
	CustomerRef string `json:"customer_ref"`
	// PaymentMethodRef is what later charges use as their token (a Stripe PaymentMethod id).
	PaymentMethodRef string `json:"payment_method_ref"`
}

// Subscription is a customer's plan, priced as it was sold.
type Subscription struct {
	ID                 string                    `json:"id"`
	UserID             string                    `json:"user_id"`
	Email              string                    `json:"email"`
	Name               string                    `json:"name"`
	SKU                string                    `json:"sku"`
	PlanName           string                    `json:"plan_name"`
	OrderID            string                    `json:"order_id"`
	Status             domain.SubscriptionStatus `json:"status"`
	Provider           string                    `json:"provider"`
	CustomerRef        string                    `json:"customer_ref"`
	PaymentMethodRef   string                    `json:"payment_method_ref"`
	PriceAmount        int64                     `json:"price_amount"`
	Currency           string                    `json:"currency"`
	BillingInterval    string                    `json:"billing_interval"`
	CurrentPeriodStart time.Time                 `json:"current_period_start"`
	CurrentPeriodEnd   time.Time                 `json:"current_period_end"`
	TrialEnd           *time.Time                `json:"trial_end,omitempty"`
	CancelAtPeriodEnd  bool                      `json:"cancel_at_period_end"`
	CanceledAt         *time.Time                `json:"canceled_at,omitempty"`
	DunningAttempts    int                       `json:"dunning_attempts"`
}

// DueSubscription is a subscription whose period has ended.
type DueSubscription struct {
	ID        string    `json:"id"`
	PeriodEnd time.Time `json:"period_end"`
}

// AppliedEvent says what recording a provider event did. Its fields carry no JSON tags because
// the recorded histories hold them under their Go names.
type AppliedEvent struct {
	// OrderID and WorkflowID name the order the event is about and the workflow that made it;
	// empty when no order matches.
	OrderID    string
	WorkflowID string
	// Duplicate is true when this event was recorded before; nothing changed this time.
	Duplicate bool
}

func customerOf(c directory.Customer) Customer { return Customer{Email: c.Email, Name: c.Name} }

func lineRequests(lines []Line) []store.LineRequest {
	out := make([]store.LineRequest, len(lines))
	for i, l := range lines {
		out[i] = store.LineRequest{SKU: l.SKU, Quantity: l.Quantity}
	}
	return out
}

func chargeResultOf(r billing.ChargeResult) ChargeResult {
	out := ChargeResult{ProviderRef: r.ProviderRef}
	if r.Action != nil {
		out.Action = &PaymentAction{ClientSecret: r.Action.ClientSecret, Type: r.Action.Type, RedirectURL: r.Action.RedirectURL}
	}
	return out
}

func refundResultOf(r billing.RefundResult) RefundResult {
	return RefundResult{ProviderRef: r.ProviderRef, Amount: r.Amount, NothingCharged: r.NothingCharged}
}

func savedPaymentMethodOf(m billing.SavedPaymentMethod) SavedPaymentMethod {
	return SavedPaymentMethod{CustomerRef: m.CustomerRef, PaymentMethodRef: m.PaymentMethodRef}
}

func subscriptionOf(s store.Subscription) Subscription {
	return Subscription{
		ID: s.ID, UserID: s.UserID, Email: s.Email, Name: s.Name, SKU: s.SKU, PlanName: s.PlanName,
		OrderID: s.OrderID, Status: s.Status, Provider: s.Provider, CustomerRef: s.CustomerRef,
		PaymentMethodRef: s.PaymentMethodRef, PriceAmount: s.PriceAmount, Currency: s.Currency,
		BillingInterval: s.BillingInterval, CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
		TrialEnd: s.TrialEnd, CancelAtPeriodEnd: s.CancelAtPeriodEnd, CanceledAt: s.CanceledAt, DunningAttempts: s.DunningAttempts,
	}
}

func dueSubscriptionsOf(due []store.DueSubscription) []DueSubscription {
	out := make([]DueSubscription, len(due))
	for i, d := range due {
		out[i] = DueSubscription{ID: d.ID, PeriodEnd: d.PeriodEnd}
	}
	return out
}

func appliedEventOf(e store.AppliedEvent) AppliedEvent {
	return AppliedEvent{OrderID: e.OrderID, WorkflowID: e.WorkflowID, Duplicate: e.Duplicate}
}
