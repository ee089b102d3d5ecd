package billing

import "testing"

func TestDeclineErrorHard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code, declineCode string
		hard              bool
	}{
		// Soft: the same card may pass later.
		{"card_declined", "insufficient_funds", false},
		{"card_declined", "generic_decline", false},
		{"card_declined", "do_not_honor", false},
		{"card_declined", "try_again_later", false},
		{"card_declined", "card_velocity_exceeded", false},
		{"card_declined", "new_account_information_available", false},
		{"card_declined", "", false},
		{"processing_error", "", false},
		{"incorrect_cvc", "", false},
		{"card_declined", "some_future_code", false},
		// Hard: the card itself is finished.
		{"card_declined", "lost_card", true},
		{"card_declined", "stolen_card", true},
		{"card_declined", "pickup_card", true},
		{"card_declined", "restricted_card", true},
		{"card_declined", "fraudulent", true},
		{"card_declined", "merchant_blacklist", true},
		{"card_declined", "invalid_account", true},
		{"card_declined", "card_not_supported", true},
		{"card_declined", "currency_not_supported", true},
		{"card_declined", "revocation_of_authorization", true},
		{"card_declined", "expired_card", true},
		{"card_declined", "authentication_required", true},
		{"authentication_required", "authentication_required", true},
		{"expired_card", "", true},
		{"incorrect_number", "", true},
		{"invalid_number", "", true},
	}
	for _, tc := range tests {
		e := &DeclineError{Code: tc.code, DeclineCode: tc.declineCode, Message: "declined"}
		if e.Hard() != tc.hard {
			t.Errorf("%s/%s: Hard() = %v, want %v", tc.code, tc.declineCode, e.Hard(), tc.hard)
		}
		// Hard or soft, a decline is final for the attempt.
		if !IsFinal(e) {
			t.Errorf("%s/%s: not final", tc.code, tc.declineCode)
		}
	}
}
