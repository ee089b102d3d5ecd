//go:build integration

package stripe

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// createUnconfirmed creates a PaymentIntent for pm without confirming it, as the Stripe gateway
// does before it records the id; customer may be "".
func (e *env) createUnconfirmed(t *testing.T, pm, customer, key string) *stripe.PaymentIntent {
	t.Helper()
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(1200), Currency: stripe.String("usd"),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"})}
	if pm != "" {
		params.PaymentMethod = stripe.String(pm)
	}
	if customer != "" {
		params.Customer = stripe.String(customer)
		params.SetupFutureUsage = stripe.String("off_session")
	}
	if key != "" {
		params.SetIdempotencyKey(key)
	}
	params.AddMetadata("order_id", "o-confirm")
	pi, err := e.sc.PaymentIntents.New(params)
	if err != nil {
		t.Fatalf("create %s unconfirmed: %v", pm, err)
	}
	want := stripe.PaymentIntentStatusRequiresConfirmation
	if pm == "" {
		want = stripe.PaymentIntentStatusRequiresPaymentMethod
	}
	if pi.Status != want || pi.AmountReceived != 0 || pi.LatestCharge != nil {
		t.Fatalf("unconfirmed PaymentIntent %+v, want %s with nothing charged", pi, want)
	}
	if s := e.storedPI(t, pi.ID); s.Status != string(want) || s.AmountReceived != 0 {
		t.Fatalf("stored %+v, want %s", s, want)
	}
	return pi
}

func (e *env) confirm(id string, params *stripe.PaymentIntentConfirmParams) (*stripe.PaymentIntent, error) {
	if params == nil {
		params = &stripe.PaymentIntentConfirmParams{}
	}
	return e.sc.PaymentIntents.Confirm(id, params)
}

// outcomeOf reduces a charge attempt's answer to what the tests compare: the status, the money
// received and the error's codes.
func outcomeOf(t *testing.T, pi *stripe.PaymentIntent, err error) string {
	t.Helper()
	if err != nil {
		se := stripeErr(t, err)
		if se.PaymentIntent == nil {
			t.Fatalf("a decline without its PaymentIntent: %+v", se)
		}
		return strings.Join([]string{string(se.PaymentIntent.Status), string(se.Type), string(se.Code), string(se.DeclineCode)}, " ")
	}
	next := ""
	if pi.NextAction != nil {
		next = string(pi.NextAction.Type)
	}
	return string(pi.Status) + " " + next
}

// A confirm gives what a create with confirm=true gives for the same card, and leaves the same
// PaymentIntent state behind.
func TestConfirmMatchesConfirmedCreate(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ pm, want string }{
		{"pm_card_visa", "succeeded "},
		{"pm_card_chargeDeclined", "requires_payment_method card_error card_declined generic_decline"},
		{"pm_card_chargeDeclinedExpiredCard", "requires_payment_method card_error expired_card "},
		{"pm_card_authenticationRequired", "requires_action use_stripe_sdk"},
	} {
		t.Run(tc.pm, func(t *testing.T) {
			created, err := e.charge(tc.pm, "", 1200, nil)
			if got := outcomeOf(t, created, err); got != tc.want {
				t.Fatalf("confirmed create: %q, want %q", got, tc.want)
			}
			pi := e.createUnconfirmed(t, tc.pm, "", "")
			confirmed, err := e.confirm(pi.ID, nil)
			if got := outcomeOf(t, confirmed, err); got != tc.want {
				t.Fatalf("confirm: %q, want %q", got, tc.want)
			}
			s := e.storedPI(t, pi.ID)
			wantReceived := map[bool]int64{true: 1200}[strings.HasPrefix(tc.want, "succeeded")]
			if s.Status != strings.Fields(tc.want)[0] || s.AmountReceived != wantReceived || s.PaymentMethod != tc.pm {
				t.Fatalf("stored %+v after confirm, want %s with %d received", s, tc.want, wantReceived)
			}
			// A GET answers what the confirm left.
			got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
			if err != nil || string(got.Status) != s.Status || got.AmountReceived != wantReceived {
				t.Fatalf("GET after confirm: %+v %v", got, err)
			}
		})
	}
}

// A confirm takes off_session and keeps setup_future_usage: an on-session, authenticated charge
// sets the saved card up, and the off-session confirm that follows passes without the customer;
// a card never set up is declined off-session with authentication_required.
func TestConfirmOffSession(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	pm, err := e.attach("pm_card_authenticationRequiredOnSetup", c.ID)
	if err != nil {
		t.Fatal(err)
	}

	renewal := e.createUnconfirmed(t, pm.ID, c.ID, "")
	_, err = e.confirm(renewal.ID, &stripe.PaymentIntentConfirmParams{OffSession: stripe.Bool(true)})
	if se := stripeErr(t, err); se.HTTPStatusCode != 402 || se.Code != stripe.ErrorCodeAuthenticationRequired ||
		se.PaymentIntent == nil || se.PaymentIntent.ID != renewal.ID {
		t.Fatalf("off-session confirm of a card never set up: %+v", se)
	}
	if s := e.storedPI(t, renewal.ID); !s.OffSession || s.AmountReceived != 0 || s.LastPaymentError != "authentication_required" {
		t.Fatalf("stored %+v", s)
	}

	first := e.createUnconfirmed(t, pm.ID, c.ID, "")
	waiting, err := e.confirm(first.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRequiresAction(t, waiting)
	if err := e.proxy.Authenticate(first.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := e.paymentMethod(t, pm.ID); !got.SetUp {
		t.Fatalf("the authenticated confirm with setup_future_usage did not set the card up: %+v", got)
	}

	later := e.createUnconfirmed(t, pm.ID, c.ID, "")
	pi, err := e.confirm(later.ID, &stripe.PaymentIntentConfirmParams{OffSession: stripe.Bool(true)})
	if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.AmountReceived != 1200 {
		t.Fatalf("off-session confirm of a set-up card: %+v %v", pi, err)
	}
}

func TestConfirmUnexpectedState(t *testing.T) {
	e := newEnv(t)
	wantUnexpected := func(t *testing.T, id string, params *stripe.PaymentIntentConfirmParams, status stripe.PaymentIntentStatus) {
		t.Helper()
		_, err := e.confirm(id, params)
		se := stripeErr(t, err)
		if se.HTTPStatusCode != 400 || se.Code != stripe.ErrorCodePaymentIntentUnexpectedState ||
			se.PaymentIntent == nil || se.PaymentIntent.ID != id || se.PaymentIntent.Status != status {
			t.Fatalf("confirm of %s: %+v, want payment_intent_unexpected_state with the PaymentIntent in %s", id, se, status)
		}
	}

	succeeded, err := e.charge("pm_card_visa", "", 1200, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnexpected(t, succeeded.ID, nil, stripe.PaymentIntentStatusSucceeded)
	wantUnexpected(t, succeeded.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_visa")},
		stripe.PaymentIntentStatusSucceeded)
	if s := e.storedPI(t, succeeded.ID); s.AmountReceived != 1200 {
		t.Fatalf("a refused confirm charged again: %+v", s)
	}
	waiting := e.requiresAction(t, "pm_card_authenticationRequired")
	wantUnexpected(t, waiting.ID, nil, stripe.PaymentIntentStatusRequiresAction)
	canceled := e.createUnconfirmed(t, "pm_card_visa", "", "")
	if _, err := e.sc.PaymentIntents.Cancel(canceled.ID, nil); err != nil {
		t.Fatal(err)
	}
	wantUnexpected(t, canceled.ID, nil, stripe.PaymentIntentStatusCanceled)

	// No payment method to charge: the one made without, and a declined one, whose card was detached.
	noPM := e.createUnconfirmed(t, "", "", "")
	wantUnexpected(t, noPM.ID, nil, stripe.PaymentIntentStatusRequiresPaymentMethod)
	declined := e.createUnconfirmed(t, "pm_card_chargeDeclined", "", "")
	if _, err := e.confirm(declined.ID, nil); stripeErr(t, err).Code != stripe.ErrorCodeCardDeclined {
		t.Fatalf("confirm of a declining card: %v", err)
	}
	wantUnexpected(t, declined.ID, nil, stripe.PaymentIntentStatusRequiresPaymentMethod)
	// Another card pays for it.
	pi, err := e.confirm(declined.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_visa")})
	if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.LastPaymentError != nil ||
		pi.PaymentMethod == nil || pi.PaymentMethod.ID != "pm_card_visa" {
		t.Fatalf("confirm with another card: %+v %v", pi, err)
	}

	_, err = e.confirm("pi_unknown", nil)
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("confirm of an unknown PaymentIntent: %+v", se)
	}
	_, err = e.confirm(noPM.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_nope")})
	if se := stripeErr(t, err); se.Code != stripe.ErrorCodeResourceMissing || se.Param != "payment_method" {
		t.Fatalf("confirm with an unknown card: %+v", se)
	}
}

// A confirm under an idempotency key runs once; its repeat gets the first answer, a decline too.
func TestConfirmIdempotency(t *testing.T) {
	e := newEnv(t)
	for _, pm := range []string{"pm_card_visa", "pm_card_chargeDeclined"} {
		pi := e.createUnconfirmed(t, pm, "", "")
		var answers []string
		for range 2 {
			params := &stripe.PaymentIntentConfirmParams{}
			params.SetIdempotencyKey("confirm-" + pi.ID)
			got, err := e.confirm(pi.ID, params)
			answers = append(answers, outcomeOf(t, got, err))
		}
		if answers[0] != answers[1] {
			t.Fatalf("%s: answers %q, want the first one replayed", pm, answers)
		}
		var confirms []Request
		for _, r := range e.proxy.Requests() {
			if r.Path == "/v1/payment_intents/"+pi.ID+"/confirm" {
				confirms = append(confirms, r)
			}
		}
		if len(confirms) != 2 || confirms[0].Replayed || !confirms[1].Replayed || confirms[0].ObjectID != pi.ID {
			t.Fatalf("%s: confirm requests %+v, want one executed and one replayed", pm, confirms)
		}
	}
	// The key of one confirm cannot confirm another PaymentIntent.
	first, other := e.createUnconfirmed(t, "pm_card_visa", "", ""), e.createUnconfirmed(t, "pm_card_visa", "", "")
	for i, id := range []string{first.ID, other.ID} {
		params := &stripe.PaymentIntentConfirmParams{}
		params.SetIdempotencyKey("confirm-shared")
		_, err := e.confirm(id, params)
		if i == 1 && stripeErr(t, err).Type != stripe.ErrorTypeIdempotency {
			t.Fatalf("the same key on another PaymentIntent: %v", err)
		}
	}
	if s := e.storedPI(t, other.ID); s.Status != "requires_confirmation" {
		t.Fatalf("a refused confirm changed %+v", s)
	}
}

// A create repeated under a key the proxy forgot (Stripe forgets keys after 24 hours) runs again
// and makes a second PaymentIntent, where before the key is forgotten it replays the first.
func TestForgetIdempotencyKeys(t *testing.T) {
	e := newEnv(t)
	first, err := e.charge("pm_card_visa", "forgotten-key", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := e.charge("pm_card_visa", "forgotten-key", 1000, nil)
	if err != nil || replay.ID != first.ID {
		t.Fatalf("before forgetting: %+v %v, want %s replayed", replay, err, first.ID)
	}

	req, _ := http.NewRequest(http.MethodDelete, e.url+"/__cartflow/idempotency_keys", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Forgotten int `json:"forgotten"`
	}
	err = json.NewDecoder(res.Body).Decode(&body)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || body.Forgotten != 1 {
		t.Fatalf("DELETE /__cartflow/idempotency_keys: %d %+v %v, want 1 forgotten", res.StatusCode, body, err)
	}

	again, err := e.charge("pm_card_visa", "forgotten-key", 1000, nil)
	if err != nil || again.ID == first.ID || again.Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("after forgetting: %+v %v, want a new PaymentIntent", again, err)
	}
	if n := countStatus(e.proxy.PaymentIntents(), "succeeded"); n != 2 {
		t.Fatalf("%d succeeded PaymentIntents, want 2: the forgotten key charged again", n)
	}
	if n := e.proxy.ForgetIdempotencyKeys(); n != 1 {
		t.Fatalf("ForgetIdempotencyKeys = %d, want the one key saved since", n)
	}
}
