package activities

import (
	"time"

	"github.com/cartflow/cartflow/internal/mailer"
)

// The kinds of email, as the workflows fill an EmailInput. They are the activities' own types,
// not the mailer's, for the reason the payload types in types.go are: Temporal records them in
// histories, so a change in the mailer must not silently change them. Each turns into the
// mailer's data only when the email is rendered.

// ReceiptEmail confirms a charge: a purchase, or a subscription's first charge or renewal.
type ReceiptEmail struct {
	Name        string `json:"name"`
	OrderID     string `json:"order_id"`
	Description string `json:"description"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	// PeriodEnd is set for subscriptions: the paid period runs until then.
	PeriodEnd *time.Time `json:"period_end,omitempty"`
	// Renewal is true when the charge renewed an existing subscription.
	Renewal bool `json:"renewal"`
}

// TrialEndingEmail reminds a customer that their trial ends soon and the first charge follows.
type TrialEndingEmail struct {
	Name     string    `json:"name"`
	Plan     string    `json:"plan"`
	TrialEnd time.Time `json:"trial_end"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	// SubscriptionID is what the email's link opens; histories from before it lack it, and
	// their email then has no link.
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// PaymentFailedEmail tells a customer a renewal failed and what happens next.
type PaymentFailedEmail struct {
	Name          string `json:"name"`
	Plan          string `json:"plan"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	DeclineReason string `json:"decline_reason,omitempty"`
	// NextRetry is when the charge is tried again; nil when no retry is left.
	NextRetry *time.Time `json:"next_retry,omitempty"`
	// CancelsAt is when the subscription is (or was) canceled if payment does not succeed.
	CancelsAt *time.Time `json:"cancels_at,omitempty"`
	// Final is true when that was the last attempt and the subscription has been canceled.
	Final bool `json:"final"`
	// SubscriptionID is what the email's link opens to replace the card; histories from before
	// it lack it, and their email then has no link.
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// CancellationEmail confirms a cancellation.
type CancellationEmail struct {
	Name        string    `json:"name"`
	Plan        string    `json:"plan"`
	EffectiveAt time.Time `json:"effective_at"`
	// Immediate is true when access ended at once rather than at the end of the paid period.
	Immediate bool `json:"immediate"`
}

// RenewalRefundedEmail tells a customer that a renewal charge was refunded because the renewal
// was refused after the money moved (the subscription was canceled while it was charged).
type RenewalRefundedEmail struct {
	Name     string `json:"name"`
	Plan     string `json:"plan"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Reason says why the renewal was refused, for the customer.
	Reason string `json:"reason"`
}

// Revenue is one currency's charges less refunds, in minor units.
type Revenue struct {
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// DailySummaryEmail is one UTC day's business figures, for ops.
type DailySummaryEmail struct {
	// Day is the UTC day summarized, as YYYY-MM-DD.
	Day               string `json:"day"`
	NewOrders         int    `json:"new_orders"`
	NewSubscriptions  int    `json:"new_subscriptions"`
	RenewalsSucceeded int    `json:"renewals_succeeded"`
	RenewalsFailed    int    `json:"renewals_failed"`
	Cancellations     int    `json:"cancellations"`
	// InDunning is the number of past-due subscriptions when the figures were computed.
	InDunning int `json:"in_dunning"`
	// Revenue is charges less refunds per currency, ordered by currency.
	Revenue []Revenue `json:"revenue"`
}

func (e ReceiptEmail) mail(l Links) mailer.Data {
	return mailer.Receipt{Name: e.Name, OrderID: e.OrderID, Description: e.Description, Amount: e.Amount,
		Currency: e.Currency, PeriodEnd: e.PeriodEnd, Renewal: e.Renewal, Link: l.Order(e.OrderID)}
}

func (e TrialEndingEmail) mail(l Links) mailer.Data {
	return mailer.TrialEnding{Name: e.Name, Plan: e.Plan, TrialEnd: e.TrialEnd, Amount: e.Amount, Currency: e.Currency,
		Link: l.Subscription(e.SubscriptionID)}
}

func (e PaymentFailedEmail) mail(l Links) mailer.Data {
	return mailer.PaymentFailed{Name: e.Name, Plan: e.Plan, Amount: e.Amount, Currency: e.Currency,
		DeclineReason: e.DeclineReason, NextRetry: e.NextRetry, CancelsAt: e.CancelsAt, Final: e.Final,
		Link: l.UpdateCard(e.SubscriptionID)}
}

func (e CancellationEmail) mail() mailer.Data {
	return mailer.Cancellation{Name: e.Name, Plan: e.Plan, EffectiveAt: e.EffectiveAt, Immediate: e.Immediate}
}

func (e RenewalRefundedEmail) mail() mailer.Data {
	return mailer.RenewalRefunded{Name: e.Name, Plan: e.Plan, Amount: e.Amount, Currency: e.Currency, Reason: e.Reason}
}

func (e DailySummaryEmail) mail() mailer.Data {
	s := mailer.DailySummary{Day: e.Day, NewOrders: e.NewOrders, NewSubscriptions: e.NewSubscriptions,
		RenewalsSucceeded: e.RenewalsSucceeded, RenewalsFailed: e.RenewalsFailed, Cancellations: e.Cancellations,
		InDunning: e.InDunning, Revenue: make([]mailer.Money, len(e.Revenue))}
	for i, r := range e.Revenue {
		s.Revenue[i] = mailer.Money{Currency: r.Currency, Amount: r.Amount}
	}
	return s
}
