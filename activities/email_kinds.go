package activities

import "github.com/cartflow/cartflow/internal/mailer"

// The kinds of email, under names that workflows use to fill an EmailInput without importing
// the mailer themselves.
type (
	// ReceiptEmail confirms a charge.
	ReceiptEmail = mailer.Receipt
	// TrialEndingEmail reminds a customer that their trial ends soon.
	TrialEndingEmail = mailer.TrialEnding
	// PaymentFailedEmail tells a customer a renewal failed and what happens next.
	PaymentFailedEmail = mailer.PaymentFailed
	// CancellationEmail confirms a cancellation.
	CancellationEmail = mailer.Cancellation
	// DailySummaryEmail is one day's figures for ops.
	DailySummaryEmail = mailer.DailySummary
)
