package stripe

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// outcome is what charging a test card yields; an empty code means success.
type outcome struct {
	brand, code, decline string
	// attachable marks a declining card that still passes the card check done when it is
	// attached to a customer, like Stripe's chargeCustomerFail card.
	attachable bool
	// auth is when the card's bank asks the customer to authenticate (3-D Secure) first; the
	// code applies to the charge made once they have.
	auth authMode
}

// authMode is when a test card's bank asks for authentication, after Stripe's "regulatory"
// and 3-D Secure test cards (https://docs.stripe.com/testing#regulatory-cards).
type authMode int

const (
	authNever authMode = iota
	// authAlways asks on every payment: on-session the PaymentIntent requires_action, and
	// off-session, where nobody can authenticate, the charge is declined.
	authAlways
	// authUnlessSetUp asks on-session, and off-session until an authenticated on-session
	// payment with setup_future_usage=off_session has set the saved card up for later.
	authUnlessSetUp
	// authOnSession asks on-session only: the card counts as set up for off-session payments.
	authOnSession
)

var authModeNames = map[authMode]string{authAlways: "always", authUnlessSetUp: "unless_set_up", authOnSession: "on_session"}

// testTokens are Stripe's documented test tokens.
var testTokens = map[string]outcome{
	"tok_visa":                            {brand: "visa"},
	"tok_mastercard":                      {brand: "mastercard"},
	"tok_amex":                            {brand: "amex"},
	"tok_chargeDeclined":                  {brand: "visa", code: "card_declined", decline: "generic_decline"},
	"tok_chargeDeclinedInsufficientFunds": {brand: "visa", code: "card_declined", decline: "insufficient_funds"},
	"tok_chargeDeclinedLostCard":          {brand: "visa", code: "card_declined", decline: "lost_card"},
	"tok_chargeDeclinedStolenCard":        {brand: "visa", code: "card_declined", decline: "stolen_card"},
	"tok_chargeDeclinedFraudulent":        {brand: "visa", code: "card_declined", decline: "fraudulent"},
	"tok_chargeDeclinedExpiredCard":       {brand: "visa", code: "expired_card"},
	"tok_chargeDeclinedIncorrectCvc":      {brand: "visa", code: "incorrect_cvc"},
	"tok_chargeDeclinedProcessingError":   {brand: "visa", code: "processing_error"},
	// Attaching it to a customer succeeds; every charge of it is then declined.
	"tok_chargeCustomerFail": {brand: "visa", code: "card_declined", decline: "generic_decline", attachable: true},
	// 4000 0000 0000 3220: 3-D Secure 2 must be completed for every payment.
	"tok_threeDSecure2Required": {brand: "visa", auth: authAlways},
}

// magicPaymentMethods mirror testTokens as Stripe's pm_card_* test PaymentMethods, plus the
// regulatory test cards that Stripe documents as PaymentMethods only.
var magicPaymentMethods = func() map[string]outcome {
	m := map[string]outcome{
		"pm_card_visa_debit": {brand: "visa"},
		// 4000 0027 6000 3184, "Always authenticate".
		"pm_card_authenticationRequired": {brand: "visa", auth: authAlways},
		// 4000 0025 0000 3155, "Authenticate unless set up".
		"pm_card_authenticationRequiredOnSetup": {brand: "visa", auth: authUnlessSetUp},
		// 4000 0038 0000 0446, "Already set up": off-session payments pass without authentication.
		"pm_card_authenticationRequiredSetupForOffSession": {brand: "visa", auth: authOnSession},
	}
	for tok, o := range testTokens {
		m["pm_card_"+strings.TrimPrefix(tok, "tok_")] = o
	}
	return m
}()

var declineMessages = map[string]string{
	"insufficient_funds": "Your card has insufficient funds.",
	"expired_card":       "Your card has expired.",
	"incorrect_cvc":      "Your card's security code is incorrect.",
	"processing_error":   "An error occurred while processing your card. Try again in a little bit.",
	// Stripe's wording for an off-session charge of a card whose bank wants authentication.
	"authentication_required": "Your card was declined. This transaction requires authentication.",
}

// PaymentIntent is a snapshot of a PaymentIntent the proxy holds.
type PaymentIntent struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Amount         int64             `json:"amount"`
	AmountReceived int64             `json:"amount_received"`
	AmountRefunded int64             `json:"amount_refunded"`
	Currency       string            `json:"currency"`
	PaymentMethod  string            `json:"payment_method,omitempty"` // kept after a decline, unlike the served JSON
	LatestCharge   string            `json:"latest_charge,omitempty"`
	Metadata       map[string]string `json:"metadata"`
	Customer       string            `json:"customer,omitempty"`
	// OffSession says the charge was made without the customer present (a renewal).
	OffSession       bool   `json:"off_session,omitempty"`
	SetupFutureUsage string `json:"setup_future_usage,omitempty"`
	// ClientSecret is what the storefront's Stripe.js would use to authenticate the payment.
	ClientSecret string `json:"client_secret"`
	// NextAction is next_action.type while the PaymentIntent requires_action.
	NextAction string `json:"next_action,omitempty"`
	// LastPaymentError is last_payment_error.code after a failed attempt.
	LastPaymentError   string `json:"last_payment_error,omitempty"`
	CancellationReason string `json:"cancellation_reason,omitempty"`
}

type intent struct {
	PaymentIntent
	body []byte // the PaymentIntent JSON as served; rewrite keeps it in step with the snapshot
	// created is the served created time, in Unix seconds as Stripe gives it; the list filters on it.
	created int64
	// changed is when the PaymentIntent was last written, which search may not see yet (SetSearchLag).
	changed time.Time
}

func (pi *intent) snapshot() PaymentIntent {
	out := pi.PaymentIntent
	out.Metadata = maps.Clone(out.Metadata)
	return out
}

// rewrite applies change to the served JSON and sets its status from the snapshot; the caller
// holds p.mu and has already updated the snapshot.
func (pi *intent) rewrite(change func(obj map[string]any)) error {
	obj, err := decodeObject(pi.body)
	if err != nil {
		return err
	}
	change(obj)
	return pi.store(obj)
}

// store makes obj, with its status set from the snapshot, the served JSON, and notes the time
// of the change; the caller holds p.mu.
func (pi *intent) store(obj map[string]any) error {
	obj["status"] = pi.Status
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	pi.body, pi.changed = body, time.Now()
	return nil
}

// PaymentIntents returns snapshots of all stored PaymentIntents, oldest first.
func (p *Proxy) PaymentIntents() []PaymentIntent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return kit.Map(p.piOrder, func(id string) PaymentIntent { return p.pis[id].snapshot() })
}

// PaymentIntentsWithMetadata returns snapshots of the stored PaymentIntents whose metadata maps
// key to value, oldest first: cartflow's charges carry their idempotency key there.
func (p *Proxy) PaymentIntentsWithMetadata(key, value string) []PaymentIntent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PaymentIntent
	for _, id := range p.piOrder {
		pi := p.pis[id]
		if v, ok := pi.Metadata[key]; ok && v == value {
			out = append(out, pi.snapshot())
		}
	}
	return out
}

func (p *Proxy) createPaymentMethod(up *response, form url.Values) *response {
	tok := form.Get("card[token]")
	o, ok := testTokens[tok]
	if !ok {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", "card[token]",
			fmt.Sprintf("No such token: '%s'", tok))
	}
	pm := &storedPaymentMethod{id: newID("pm_"), source: tok, outcome: o}
	obj, err := paymentMethodObject(up, pm)
	if err != nil {
		return up
	}
	p.mu.Lock()
	p.storePaymentMethod(pm)
	p.mu.Unlock()
	return jsonResponse(http.StatusOK, up, obj)
}

// currencyCode is the shape Stripe accepts for a currency; stripe-mock accepts anything.
var currencyCode = regexp.MustCompile(`^[a-z]{3}$`)

func (p *Proxy) createPaymentIntent(up *response, form url.Values) *response {
	// Real Stripe refuses these; stripe-mock does not check them.
	if !currencyCode.MatchString(form.Get("currency")) {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_string", "currency",
			fmt.Sprintf("Invalid currency: %s.", form.Get("currency")))
	}
	amount, err := strconv.ParseInt(form.Get("amount"), 10, 64)
	if err != nil || amount < 1 {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "amount",
			"This value must be greater than or equal to 1.")
	}
	pmID, customer := form.Get("payment_method"), form.Get("customer")
	confirm := form.Get("confirm") == "true"
	offSession := offSessionParam(form)
	if offSession && !confirm {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "", "off_session",
			"You can only pass `off_session` when `confirm` is set to `true`.")
	}
	// The lock is held from the checks to the store: SetCardOutcome may change the card, and the
	// charge must see one outcome.
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, known := p.cus[customer]; customer != "" && !known {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", "customer",
			fmt.Sprintf("No such customer: '%s'", customer))
	}
	pm, refused := p.usablePaymentMethod(pmID, customer)
	if refused != nil {
		return refused
	}
	if confirm && pmID == "" {
		return missingPaymentMethod()
	}
	obj, err := decodeObject(up.body)
	if err != nil {
		return up
	}
	now := time.Now()
	pi := &intent{PaymentIntent: PaymentIntent{ID: newID("pi_"), Amount: amount, Currency: form.Get("currency"),
		PaymentMethod: pmID, Metadata: metadata(form), Customer: customer, SetupFutureUsage: form.Get("setup_future_usage")},
		created: now.Unix(), changed: now}
	pi.ClientSecret = pi.ID + "_secret_" + newID("")
	// stripe-mock's fixture carries leftovers from other states (a
	// last_payment_error, next_action, canceled_at...) that would confuse a client.
	for _, k := range []string{"canceled_at", "cancellation_reason", "last_payment_error", "next_action", "processing",
		"transfer_data", "payment_method_configuration_details", "review", "latest_charge", "shipping"} {
		obj[k] = nil
	}
	for _, k := range []string{"description", "customer", "receipt_email", "setup_future_usage"} {
		obj[k] = nilIfEmpty(form.Get(k))
	}
	maps.Copy(obj, map[string]any{
		"id": pi.ID, "object": "payment_intent", "amount": amount, "currency": pi.Currency,
		"metadata": pi.Metadata, "payment_method": nilIfEmpty(pmID), "created": pi.created, "livemode": false,
		"amount_received": 0, "amount_capturable": 0, "client_secret": pi.ClientSecret,
		"capture_method":      orDefault(form.Get("capture_method"), "automatic"),
		"confirmation_method": orDefault(form.Get("confirmation_method"), "automatic"),
	})

	status, res := http.StatusOK, any(obj)
	switch {
	case confirm:
		pi.OffSession = offSession
		status, res = p.attemptCharge(pi, obj, pm)
	case pmID == "":
		pi.Status = "requires_payment_method"
	default:
		pi.Status = "requires_confirmation"
	}
	if err := pi.store(obj); err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
	}
	p.pis[pi.ID] = pi
	p.piOrder = append(p.piOrder, pi.ID)
	return jsonResponse(status, up, res)
}

// confirmable are the statuses Stripe confirms a PaymentIntent from.
var confirmable = []string{"requires_confirmation", "requires_payment_method"}

// confirmPaymentIntent is POST /v1/payment_intents/{id}/confirm: the charge attempt of a
// PaymentIntent created unconfirmed (or declined before), with the same outcomes as a create
// with confirm=true, because both run attemptCharge. Like Stripe it takes a payment_method
// replacing the PaymentIntent's, off_session and setup_future_usage, and refuses a
// PaymentIntent that is not waiting for confirmation or a payment method with
// payment_intent_unexpected_state, the PaymentIntent in the error.
func (p *Proxy) confirmPaymentIntent(up *response, form url.Values, id string) *response {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi, refused := p.intentInState(id, "confirm", "confirmed", confirmable)
	if refused != nil {
		return refused
	}
	obj, err := decodeObject(pi.body)
	if err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
	}
	// The served payment_method, not the snapshot's: a decline detached the card, and a new
	// attempt needs one given again.
	pmID, _ := obj["payment_method"].(string)
	pmID = orDefault(form.Get("payment_method"), pmID)
	if pmID == "" {
		return withPaymentIntent(missingPaymentMethod(), pi.body)
	}
	pm, refused := p.usablePaymentMethod(pmID, pi.Customer)
	if refused != nil {
		return refused
	}
	if form.Has("setup_future_usage") {
		pi.SetupFutureUsage = form.Get("setup_future_usage")
		obj["setup_future_usage"] = nilIfEmpty(pi.SetupFutureUsage)
	}
	if form.Has("receipt_email") {
		obj["receipt_email"] = nilIfEmpty(form.Get("receipt_email"))
	}
	pi.PaymentMethod, pi.OffSession, pi.LastPaymentError = pmID, offSessionParam(form), ""
	obj["payment_method"], obj["last_payment_error"] = pmID, nil
	status, res := p.attemptCharge(pi, obj, pm)
	if err := pi.store(obj); err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
	}
	return jsonResponse(status, up, res)
}

// attemptCharge charges pi with pm, as confirming does (a create with confirm=true, or
// POST …/confirm), and updates pi and its served JSON obj to the outcome: requires_action when
// the bank asks the customer to authenticate on-session, succeeded with the money received, or
// requires_payment_method after a decline. It returns the answer's status and body: the
// PaymentIntent, or for a decline Stripe's 402 card_error carrying it. The caller holds p.mu.
func (p *Proxy) attemptCharge(pi *intent, obj map[string]any, pm storedPaymentMethod) (int, any) {
	o := pm.outcome
	// The bank's wish to authenticate comes before the charge: on-session the customer is asked
	// and nothing is charged yet; off-session nobody can answer, so the charge is declined.
	var challenge bool
	if o.auth != authNever {
		switch {
		case !pi.OffSession:
			challenge = true
		case o.auth == authAlways, o.auth == authUnlessSetUp && !pm.setUp:
			o = outcome{brand: o.brand, code: "authentication_required", decline: "authentication_required"}
		}
	}
	status, res := http.StatusOK, any(obj)
	switch {
	case challenge:
		pi.Status, pi.NextAction = "requires_action", "use_stripe_sdk"
		obj["next_action"] = useStripeSDK(pi.ID)
	case o.code == "":
		pi.Status, pi.AmountReceived, pi.LatestCharge = "succeeded", pi.Amount, newID("ch_")
		obj["amount_received"], obj["latest_charge"], obj["next_action"] = pi.Amount, pi.LatestCharge, nil
	default:
		// A declined PaymentIntent exists at Stripe, detached from the card
		// and carrying the failure, so a later GET or search finds it. An
		// off-session decline looks the same: a 402 card_error whose
		// payment_intent the merchant uses to bring the customer back.
		pi.Status, pi.LatestCharge, pi.LastPaymentError = "requires_payment_method", newID("ch_"), o.code
		e := cardError(o, pm.id)
		e["charge"] = pi.LatestCharge
		obj["last_payment_error"], obj["payment_method"], obj["latest_charge"] = maps.Clone(e), nil, pi.LatestCharge
		e["payment_intent"] = obj
		status, res = http.StatusPaymentRequired, map[string]any{"error": e}
	}
	obj["status"] = pi.Status
	p.markSetUp(pi)
	return status, res
}

// usablePaymentMethod looks up the PaymentMethod a PaymentIntent of customer would be charged
// with, or answers Stripe's refusal: an unknown one, or one saved on another customer (a
// customer's charge may only use a payment method saved on that customer, and a saved one
// needs its customer). An empty pmID is no PaymentMethod, which is allowed until confirming.
// The caller holds p.mu.
func (p *Proxy) usablePaymentMethod(pmID, customer string) (storedPaymentMethod, *response) {
	pm, known := p.paymentMethod(pmID)
	switch {
	case pmID == "":
		return storedPaymentMethod{}, nil
	case !known:
		return pm, stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", "payment_method",
			fmt.Sprintf("No such PaymentMethod: '%s'", pmID))
	case customer != "" && pm.customer != customer:
		return pm, stripeError(http.StatusBadRequest, "invalid_request_error", "", "payment_method", fmt.Sprintf(
			"The customer does not have a payment method with the ID %s. The payment method must be attached to the customer.", pmID))
	case customer == "" && pm.customer != "":
		return pm, stripeError(http.StatusBadRequest, "invalid_request_error", "", "customer", fmt.Sprintf(
			"The `payment_method` parameter supplied %s belongs to the Customer %s. Please include the Customer in the `customer` parameter on the PaymentIntent.",
			pmID, pm.customer))
	}
	return pm, nil
}

// offSessionParam reads off_session, which Stripe takes as a boolean or as one_off / recurring.
func offSessionParam(form url.Values) bool {
	return form.Get("off_session") != "" && form.Get("off_session") != "false"
}

// missingPaymentMethod is Stripe's answer to confirming without a payment method.
func missingPaymentMethod() *response {
	return stripeError(http.StatusBadRequest, "invalid_request_error", "payment_intent_unexpected_state", "payment_method",
		"You cannot confirm this PaymentIntent because it's missing a payment method.")
}

// noSuchPaymentIntent is Stripe's 404 for a PaymentIntent id it does not know.
func noSuchPaymentIntent(id string) *response {
	return stripeError(http.StatusNotFound, "invalid_request_error", "resource_missing", "intent",
		fmt.Sprintf("No such payment_intent: '%s'", id))
}

// cardError is the error object of a charge or card check that o declines.
func cardError(o outcome, pmID string) map[string]any {
	e := map[string]any{"type": "card_error", "code": o.code,
		"message":        orDefault(declineMessages[o.code], declineMessages[o.decline], "Your card was declined."),
		"payment_method": map[string]any{"id": pmID, "object": "payment_method", "type": "card"}}
	if o.decline != "" {
		e["decline_code"] = o.decline
	}
	return e
}

func (p *Proxy) getPaymentIntent(up *response, id string) *response {
	p.mu.Lock()
	pi, ok := p.pis[id]
	p.mu.Unlock()
	if !ok {
		return noSuchPaymentIntent(id)
	}
	return rawResponse(http.StatusOK, up, pi.body)
}

// searchQuery accepts the single clause metadata['KEY']:'VALUE' (either quote style).
var searchQuery = regexp.MustCompile(`^\s*metadata\[(?:'([^']*)'|"([^"]*)")\]\s*:\s*(?:'([^']*)'|"([^"]*)")\s*$`)

// searchPaymentIntents is GET /v1/payment_intents/search, newest first, leaving out what the
// search lag (SetSearchLag) hides.
func (p *Proxy) searchPaymentIntents(up *response, form url.Values) *response {
	m := searchQuery.FindStringSubmatch(form.Get("query"))
	if m == nil {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "", "query",
			"stripefake only supports queries of the form metadata['KEY']:'VALUE'")
	}
	key, value := m[1]+m[2], m[3]+m[4]
	data := []json.RawMessage{}
	now := time.Now()
	p.mu.Lock()
	for _, id := range slices.Backward(p.piOrder) { // Stripe lists newest first
		pi := p.pis[id]
		if v, has := pi.Metadata[key]; has && v == value && p.searchable(pi, now) {
			data = append(data, pi.body)
		}
	}
	p.mu.Unlock()
	return jsonResponse(http.StatusOK, up, map[string]any{"object": "search_result", "data": data,
		"has_more": false, "next_page": nil, "url": "/v1/payment_intents/search"})
}

func (p *Proxy) createRefund(up *response, form url.Values) *response {
	obj, err := decodeObject(up.body)
	if err != nil {
		return up
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	param, ref := "payment_intent", form.Get("payment_intent")
	pi := p.pis[ref]
	if ref == "" && form.Get("charge") != "" {
		param, ref = "charge", form.Get("charge")
		for _, cand := range p.pis {
			if cand.LatestCharge == ref && cand.Status == "succeeded" {
				pi = cand
			}
		}
	}
	if pi == nil {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", param,
			fmt.Sprintf("No such %s: '%s'", param, ref))
	}
	if pi.Status != "succeeded" {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "payment_intent_unexpected_state", param,
			fmt.Sprintf("This PaymentIntent (%s) does not have a successful charge to refund.", pi.ID))
	}
	remaining := pi.AmountReceived - pi.AmountRefunded
	amount := remaining
	if s := form.Get("amount"); s != "" {
		amount, _ = strconv.ParseInt(s, 10, 64)
	}
	switch {
	case remaining == 0:
		return stripeError(http.StatusBadRequest, "invalid_request_error", "charge_already_refunded", "",
			fmt.Sprintf("Charge %s has already been refunded.", pi.LatestCharge))
	case amount > remaining:
		return stripeError(http.StatusBadRequest, "invalid_request_error", "amount_too_large", "amount",
			fmt.Sprintf("Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, remaining))
	}
	pi.AmountRefunded += amount
	maps.Copy(obj, map[string]any{"id": newID("re_"), "object": "refund", "status": "succeeded", "amount": amount,
		"currency": pi.Currency, "payment_intent": pi.ID, "charge": pi.LatestCharge, "created": time.Now().Unix(),
		"metadata": metadata(form), "reason": nilIfEmpty(form.Get("reason"))})
	return jsonResponse(http.StatusOK, up, obj)
}

// metadata collects the form's metadata[KEY]=VALUE pairs.
func metadata(form url.Values) map[string]string {
	md := map[string]string{}
	for k, v := range form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") && len(v) > 0 {
			md[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	return md
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orDefault(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// intentInState returns the PaymentIntent id for an action that Stripe allows only in the
// statuses allowed, or the answer Stripe gives instead: resource_missing for an unknown id, and
// payment_intent_unexpected_state, the PaymentIntent in the error, for one in another status.
// verb and done name the action ("cancel", "canceled"). The caller holds p.mu.
func (p *Proxy) intentInState(id, verb, done string, allowed []string) (*intent, *response) {
	pi, ok := p.pis[id]
	if !ok {
		return nil, noSuchPaymentIntent(id)
	}
	if !slices.Contains(allowed, pi.Status) {
		res := stripeError(http.StatusBadRequest, "invalid_request_error", "payment_intent_unexpected_state", "", fmt.Sprintf(
			"You cannot %s this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of the following statuses may be %s: %s.",
			verb, pi.Status, done, strings.Join(allowed, ", ")))
		return nil, withPaymentIntent(res, pi.body)
	}
	return pi, nil
}
