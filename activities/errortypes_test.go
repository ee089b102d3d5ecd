package activities_test

import (
	"slices"
	"testing"

	"github.com/cartflow/cartflow/activities"
)

// The groups hold exactly what their consumers listed before they were defined once: a change
// to any of them changes a retry policy, what Sentry hears of, or what Mixpanel counts.
func TestErrorTypeGroups(t *testing.T) {
	for _, g := range []struct {
		name      string
		got, want []string
	}{
		{"ProviderRefusals", activities.ProviderRefusals, []string{
			activities.ErrTypeCardDeclined, activities.ErrTypeCardDeclinedHard, activities.ErrTypePaymentRejected,
			activities.ErrTypePaymentRequestInvalid,
		}},
		{"PaymentRefusals", activities.PaymentRefusals, []string{
			activities.ErrTypeCardDeclined, activities.ErrTypeCardDeclinedHard, activities.ErrTypePaymentRejected,
			activities.ErrTypePaymentRequestInvalid, activities.ErrTypeUnknownProvider,
		}},
		{"BusinessOutcomes", activities.BusinessOutcomes, []string{
			activities.ErrTypeCardDeclined, activities.ErrTypeCardDeclinedHard, activities.ErrTypePaymentRejected,
			activities.ErrTypeInvalidCustomer, activities.ErrTypeRefundRejected, activities.ErrTypeOrderState,
			activities.ErrTypeSubscriptionState, activities.ErrTypePeriodMoved,
		}},
	} {
		if !slices.Equal(g.got, g.want) {
			t.Errorf("%s = %v, want %v", g.name, g.got, g.want)
		}
	}
	// A malformed request is cartflow's bug: final, but reported.
	if slices.Contains(activities.BusinessOutcomes, activities.ErrTypePaymentRequestInvalid) {
		t.Error("BusinessOutcomes hides PaymentRequestInvalid from Sentry")
	}
	if activities.IsProviderRefusal(activities.ErrTypeUnknownProvider) || !activities.IsProviderRefusal(activities.ErrTypeCardDeclined) {
		t.Error("IsProviderRefusal disagrees with ProviderRefusals")
	}
}
