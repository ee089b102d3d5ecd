// Package domain is cartflow's shared vocabulary: the statuses of orders, subscriptions and
// payments, the Failure a customer is shown, and the provider events that webhooks carry. It
// imports only the standard library, so that the store, the workflows, the activities and the
// BFF can all name the same things without depending on one another.
package domain

// OrderStatus is an order's status, which is also the status the BFF reports for its checkout.
type OrderStatus string

// Order statuses, as stored in orders.status.
const (
	OrderPending  OrderStatus = "pending"
	OrderCharging OrderStatus = "charging"
	// OrderRequiresAction: the bank asked the customer to authenticate (3-D Secure).
	OrderRequiresAction OrderStatus = "requires_action"
	OrderPaid           OrderStatus = "paid"
	OrderCompleted      OrderStatus = "completed"
	OrderFailed         OrderStatus = "failed"
	OrderRefunded       OrderStatus = "refunded"
	// OrderPartiallyRefunded: part of the captured amount has been returned.
	OrderPartiallyRefunded OrderStatus = "partially_refunded"
	// OrderExpired: abandoned before payment, or never authenticated in time.
	OrderExpired OrderStatus = "expired"
)

// OrderStatuses lists every order status, in the order a checkout moves through them.
var OrderStatuses = []OrderStatus{
	OrderPending, OrderCharging, OrderRequiresAction, OrderPaid, OrderCompleted,
	OrderFailed, OrderRefunded, OrderPartiallyRefunded, OrderExpired,
}

// Final reports whether a checkout in this status has finished: its workflow returns and the
// BFF can answer with it.
func (s OrderStatus) Final() bool {
	switch s {
	case OrderCompleted, OrderFailed, OrderRefunded, OrderPartiallyRefunded, OrderExpired:
		return true
	}
	return false
}

// SubscriptionStatus is a subscription's status, mirrored in users.subscription_status.
type SubscriptionStatus string

// Subscription statuses.
const (
	SubscriptionTrialing SubscriptionStatus = "trialing"
	SubscriptionActive   SubscriptionStatus = "active"
	SubscriptionPastDue  SubscriptionStatus = "past_due"
	SubscriptionCanceled SubscriptionStatus = "canceled"
)

// PaymentKind says whether a ledger row moved money to the merchant or back.
type PaymentKind string

// Payment kinds in the ledger.
const (
	PaymentCharge PaymentKind = "charge"
	PaymentRefund PaymentKind = "refund"
)

// PaymentStatus is a ledger row's status. A pending row is an attempt whose outcome is not
// known yet: it must be resolved by asking the provider, never by charging again.
type PaymentStatus string

// Payment statuses in the ledger.
const (
	PaymentPending   PaymentStatus = "pending"
	PaymentSucceeded PaymentStatus = "succeeded"
	PaymentFailed    PaymentStatus = "failed"
)

// Failure is a stable machine-readable code with a message fit for the customer.
type Failure struct {
	Code string `json:"code"`
	// DeclineCode is the bank's reason when a card was declined.
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message"`
}

// EventType is a provider event's type, normalized across providers: every provider event that
// cartflow acts on maps to one of these, anything else to EventOther.
type EventType string

// Normalized provider event types.
const (
	EventPaymentSucceeded EventType = "payment.succeeded"
	EventPaymentFailed    EventType = "payment.failed"
	EventRefunded         EventType = "refund.created"
	EventDisputeOpened    EventType = "dispute.opened"
	EventDisputeClosed    EventType = "dispute.closed"
	EventOther            EventType = "other"
)

// PaymentOutcome reports whether the event settles a payment one way or the other, which a
// checkout waiting for 3-D Secure needs to hear.
func (t EventType) PaymentOutcome() bool {
	return t == EventPaymentSucceeded || t == EventPaymentFailed
}

// WebhookEvent is a provider's webhook event whose signature was verified.
type WebhookEvent struct {
	Provider string `json:"provider"`
	// ID is the provider's event id, unique per provider; a redelivery carries the same one.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// ProviderType is the provider's own event type, such as payment_intent.succeeded.
	ProviderType string `json:"provider_type"`
	// PaymentRef is the provider's payment the event is about: the ref that a charge returned
	// (a PaymentIntent id, a PayPal capture id, a Braintree transaction id).
	PaymentRef string `json:"payment_ref,omitempty"`
	// OrderID is cartflow's order id when the provider echoes it (metadata, custom_id, orderId).
	OrderID string `json:"order_id,omitempty"`
	// Amount and Currency are the event's money, when it has one: for a refund, the payment's
	// refunded total so far (not this refund alone); for a dispute, the disputed amount.
	Amount   int64  `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	// Reason is the provider's reason, such as a decline code or a dispute reason.
	Reason string `json:"reason,omitempty"`
	// Payload is the request body as the provider sent it, stored with the event.
	Payload []byte `json:"payload"`
}
