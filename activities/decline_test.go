package activities

import (
	"testing"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

// The decline codes Stripe says not to disclose reach the customer as a plain generic decline,
// as the code or as the decline code, while the error type still follows the real reason;
// every other decline keeps its code and the provider's customer message.
func TestFraudCodedDeclinesAreNotDisclosed(t *testing.T) {
	t.Parallel()
	generic := domain.Failure{Code: "card_declined", DeclineCode: "generic_decline", Message: genericDeclineMessage}
	cases := []struct {
		decline  billing.DeclineError
		want     domain.Failure
		wantType string
	}{
		{billing.DeclineError{Code: "card_declined", DeclineCode: "stolen_card", Message: "Your card was reported stolen."}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "lost_card", Message: "lost"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "fraudulent", Message: "fraud"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "pickup_card", Message: "keep it"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "merchant_blacklist", Message: "blocked"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "restricted_card", Message: "restricted"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "security_violation", Message: "violation"}, generic, ErrTypeCardDeclinedHard},
		// A provider that gives the reason as the code itself.
		{billing.DeclineError{Code: "stolen_card", Message: "stolen"}, generic, ErrTypeCardDeclinedHard},
		{billing.DeclineError{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."},
			domain.Failure{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}, ErrTypeCardDeclined},
		{billing.DeclineError{Code: "expired_card", Message: "Your card has expired."},
			domain.Failure{Code: "expired_card", Message: "Your card has expired."}, ErrTypeCardDeclinedHard},
	}
	for _, c := range cases {
		got, errType, ok := finalPaymentFailure(&c.decline)
		if !ok || got != c.want || errType != c.wantType {
			t.Errorf("%s/%s: customer sees %+v as %s, want %+v as %s", c.decline.Code, c.decline.DeclineCode, got, errType, c.want, c.wantType)
		}
	}
}
