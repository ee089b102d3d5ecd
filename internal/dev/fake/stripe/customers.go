package stripe

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// This file emulates what saving a card for later needs: Customers, attaching PaymentMethods
// to them, a customer's default PaymentMethod, and cards whose outcome tests change later.

// ErrNoSuchPaymentMethod is returned by SetCardOutcome for a PaymentMethod the proxy never made.
var ErrNoSuchPaymentMethod = errors.New("stripefake: no such PaymentMethod")

// PaymentMethod is a snapshot of a PaymentMethod the proxy made: from a tok_… or by attaching
// one of Stripe's pm_card_* test PaymentMethods to a customer.
type PaymentMethod struct {
	ID string `json:"id"`
	// Source is the test token or pm_card_* PaymentMethod it was made from.
	Source   string `json:"source"`
	Customer string `json:"customer,omitempty"`
	Brand    string `json:"brand"`
	// Code and DeclineCode are what charging it yields; an empty Code means it succeeds.
	Code        string `json:"code,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
	// Authentication is when its bank asks for 3-D Secure: "always", "unless_set_up" or
	// "on_session"; empty for never.
	Authentication string `json:"authentication,omitempty"`
	// SetUp says an authenticated on-session payment saved it for off-session payments.
	SetUp bool `json:"set_up,omitempty"`
}

// storedPaymentMethod is a PaymentMethod's state; it changes when it is attached and when a
// test sets its outcome, always under Proxy.mu.
type storedPaymentMethod struct {
	id, source, customer string
	outcome              outcome
	// magic marks one of Stripe's shared pm_card_* PaymentMethods: never stored, never changed.
	magic bool
	// setUp marks a saved card that an authenticated on-session payment set up for off-session
	// use, which spares an authUnlessSetUp card the authentication its renewals would need.
	setUp bool
}

func (pm *storedPaymentMethod) snapshot() PaymentMethod {
	return PaymentMethod{ID: pm.id, Source: pm.source, Customer: pm.customer, Brand: pm.outcome.brand,
		Code: pm.outcome.code, DeclineCode: pm.outcome.decline, Authentication: authModeNames[pm.outcome.auth], SetUp: pm.setUp}
}

// Customer is a snapshot of a Customer the proxy holds.
type Customer struct {
	ID          string            `json:"id"`
	Email       string            `json:"email,omitempty"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	// DefaultPaymentMethod is invoice_settings.default_payment_method.
	DefaultPaymentMethod string `json:"default_payment_method,omitempty"`
}

// storedCustomer is a Customer's state and the JSON object served for it, kept in step.
type storedCustomer struct {
	Customer
	obj map[string]any
}

func (c *storedCustomer) snapshot() Customer {
	out := c.Customer
	out.Metadata = maps.Clone(out.Metadata)
	return out
}

// PaymentMethods returns snapshots of the PaymentMethods the proxy made, oldest first.
func (p *Proxy) PaymentMethods() []PaymentMethod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return kit.Map(p.pmOrder, func(id string) PaymentMethod { return p.pms[id].snapshot() })
}

// Customers returns snapshots of all stored Customers, oldest first.
func (p *Proxy) Customers() []Customer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return kit.Map(p.cusOrder, func(id string) Customer { return p.cus[id].snapshot() })
}

// SetCardOutcome changes what charging the PaymentMethod pmID yields from now on, for tests
// of saved cards that start failing later (or recover): code is a card error code such as
// card_declined or expired_card, decline the decline code, and an empty code makes charges
// succeed again. A card whose bank asks for authentication keeps asking: the outcome is that of
// the charge made once the customer has authenticated. Stripe's shared pm_card_* PaymentMethods
// cannot change; change the copy that attaching one to a customer made.
func (p *Proxy) SetCardOutcome(pmID, code, decline string) error {
	if code == "" && decline != "" {
		return fmt.Errorf("stripefake: decline code %q needs an error code such as card_declined", decline)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, magic := magicPaymentMethods[pmID]; magic {
		return fmt.Errorf("stripefake: %s is one of Stripe's shared test PaymentMethods; attach it to a customer and change the copy", pmID)
	}
	pm, ok := p.pms[pmID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchPaymentMethod, pmID)
	}
	// A card that now fails would also fail the check made when attaching it elsewhere.
	pm.outcome = outcome{brand: pm.outcome.brand, code: code, decline: decline, auth: pm.outcome.auth}
	return nil
}

// serveSetCardOutcome is POST /__cartflow/payment_methods/{id}/outcome with
// {"code":"card_declined","decline_code":"insufficient_funds"}; an empty code means success.
func (p *Proxy) serveSetCardOutcome(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
	}
	if !readJSON(w, r, &body, "outcome") {
		return
	}
	if err := p.SetCardOutcome(id, body.Code, body.DeclineCode); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNoSuchPaymentMethod) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	p.mu.Lock()
	pm := p.pms[id].snapshot()
	p.mu.Unlock()
	kit.WriteJSON(w, http.StatusOK, pm)
}

// paymentMethod looks a PaymentMethod up, magic or made; the caller holds p.mu.
func (p *Proxy) paymentMethod(id string) (storedPaymentMethod, bool) {
	if o, ok := magicPaymentMethods[id]; ok {
		return storedPaymentMethod{id: id, source: id, outcome: o, magic: true}, true
	}
	if pm, ok := p.pms[id]; ok {
		return *pm, true
	}
	return storedPaymentMethod{}, false
}

// storePaymentMethod keeps a new PaymentMethod; the caller holds p.mu.
func (p *Proxy) storePaymentMethod(pm *storedPaymentMethod) {
	p.pms[pm.id] = pm
	p.pmOrder = append(p.pmOrder, pm.id)
}

// paymentMethodObject is stripe-mock's PaymentMethod fixture rewritten to describe pm.
func paymentMethodObject(up *response, pm *storedPaymentMethod) (map[string]any, error) {
	obj, err := decodeObject(up.body)
	if err != nil {
		return nil, err
	}
	describePaymentMethod(obj, pm)
	return obj, nil
}

// CardFingerprint is the card.fingerprint the proxy gives every PaymentMethod and token made
// from the test card source (tok_visa, pm_card_visa, …): like Stripe's, the same for every token
// of one card number, so tok_chargeDeclined and pm_card_chargeDeclined share one.
func CardFingerprint(source string) string {
	card := strings.TrimPrefix(strings.TrimPrefix(source, "pm_card_"), "tok_")
	sum := sha256.Sum256([]byte("stripefake card " + card))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// getPaymentMethod serves GET /v1/payment_methods/{id}: the proxy's PaymentMethods and Stripe's
// pm_card_* ones, each with its card's fingerprint; any other id is unknown, as at Stripe.
func (p *Proxy) getPaymentMethod(up *response, id string) *response {
	p.mu.Lock()
	pm, ok := p.paymentMethod(id)
	p.mu.Unlock()
	if !ok {
		return stripeError(http.StatusNotFound, "invalid_request_error", "resource_missing", "id",
			fmt.Sprintf("No such PaymentMethod: '%s'", id))
	}
	obj, err := paymentMethodObject(up, &pm)
	if err != nil {
		return up
	}
	return jsonResponse(http.StatusOK, up, obj)
}

// getToken serves GET /v1/tokens/{id} for Stripe's test tokens, with the card's fingerprint.
func (p *Proxy) getToken(up *response, id string) *response {
	o, ok := testTokens[id]
	if !ok {
		return stripeError(http.StatusNotFound, "invalid_request_error", "resource_missing", "id",
			fmt.Sprintf("No such token: '%s'", id))
	}
	obj, err := decodeObject(up.body)
	if err != nil {
		return up
	}
	card, _ := obj["card"].(map[string]any)
	if card == nil {
		card = map[string]any{}
	}
	card["brand"], card["fingerprint"] = o.brand, CardFingerprint(id)
	maps.Copy(obj, map[string]any{"id": id, "object": "token", "type": "card", "card": card, "livemode": false})
	return jsonResponse(http.StatusOK, up, obj)
}

// describePaymentMethod rewrites a PaymentMethod object to describe pm.
func describePaymentMethod(obj map[string]any, pm *storedPaymentMethod) {
	card, _ := obj["card"].(map[string]any)
	if card == nil {
		card = map[string]any{}
	}
	card["brand"], card["display_brand"] = pm.outcome.brand, pm.outcome.brand
	card["fingerprint"] = CardFingerprint(pm.source)
	maps.Copy(obj, map[string]any{"id": pm.id, "object": "payment_method", "type": "card", "card": card,
		"created": time.Now().Unix(), "customer": nilIfEmpty(pm.customer), "livemode": false,
		"metadata": map[string]string{}})
}

func (p *Proxy) createCustomer(up *response, form url.Values) *response {
	if form.Has("payment_method") || form.Has("source") {
		// Not emulated; refusing beats silently ignoring a card the caller meant to save.
		return stripeError(http.StatusBadRequest, "invalid_request_error", "", "payment_method",
			"stripefake does not emulate saving a card while creating a customer; attach it with POST /v1/payment_methods/{id}/attach")
	}
	if pmID := form.Get("invoice_settings[default_payment_method]"); pmID != "" {
		// A customer being created has nothing attached yet.
		return notAttached(pmID, "invoice_settings[default_payment_method]")
	}
	obj, err := decodeObject(up.body)
	if err != nil {
		return up
	}
	c := &storedCustomer{Customer: Customer{ID: newID("cus_"), Metadata: map[string]string{}}, obj: obj}
	// stripe-mock's fixture carries a discount and other leftovers that no new customer has.
	for _, k := range []string{"discount", "default_source", "test_clock", "shipping", "phone"} {
		obj[k] = nil
	}
	maps.Copy(obj, map[string]any{"id": c.ID, "object": "customer", "created": time.Now().Unix(), "livemode": false,
		"balance": 0, "delinquent": false})
	invoiceSettings, _ := obj["invoice_settings"].(map[string]any)
	if invoiceSettings == nil {
		invoiceSettings = map[string]any{}
	}
	invoiceSettings["default_payment_method"] = nil
	obj["invoice_settings"] = invoiceSettings
	c.apply(form)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.cus[c.ID] = c
	p.cusOrder = append(p.cusOrder, c.ID)
	return jsonResponse(http.StatusOK, up, c.obj)
}

func (p *Proxy) getCustomer(up *response, id string) *response {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cus[id]
	if !ok {
		return noSuchCustomer(http.StatusNotFound, "id", id)
	}
	return jsonResponse(http.StatusOK, up, c.obj)
}

func (p *Proxy) updateCustomer(up *response, form url.Values, id string) *response {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cus[id]
	if !ok {
		return noSuchCustomer(http.StatusNotFound, "id", id)
	}
	const defaultPM = "invoice_settings[default_payment_method]"
	if pmID := form.Get(defaultPM); pmID != "" {
		switch pm, known := p.paymentMethod(pmID); {
		case !known:
			return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", defaultPM,
				fmt.Sprintf("No such PaymentMethod: '%s'", pmID))
		case pm.customer != id:
			return notAttached(pmID, defaultPM)
		}
	}
	c.apply(form)
	return jsonResponse(http.StatusOK, up, c.obj)
}

// apply sets the fields that form sends, in both the snapshot and the served object; the
// caller has validated them. As at Stripe, an empty value clears a field or metadata entry.
func (c *storedCustomer) apply(form url.Values) {
	for k, field := range map[string]*string{"email": &c.Email, "name": &c.Name, "description": &c.Description} {
		if form.Has(k) {
			*field = form.Get(k)
			c.obj[k] = nilIfEmpty(*field)
		}
	}
	for k, v := range metadata(form) {
		if v == "" {
			delete(c.Metadata, k)
		} else {
			c.Metadata[k] = v
		}
	}
	c.obj["metadata"] = maps.Clone(c.Metadata)
	if form.Has("invoice_settings[default_payment_method]") {
		c.DefaultPaymentMethod = form.Get("invoice_settings[default_payment_method]")
		if settings, ok := c.obj["invoice_settings"].(map[string]any); ok {
			settings["default_payment_method"] = nilIfEmpty(c.DefaultPaymentMethod)
		}
	}
}

// attachPaymentMethod saves a PaymentMethod on a customer. Attaching one of Stripe's pm_card_*
// test PaymentMethods makes a new PaymentMethod with the same card, as Stripe does. Stripe
// checks the card with the bank while attaching it, so a card that declines charges fails
// here with the same card error, unless it is one that only fails charges (chargeCustomerFail).
func (p *Proxy) attachPaymentMethod(up *response, form url.Values, pmID string) *response {
	customer := form.Get("customer")
	if customer == "" {
		return stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_missing", "customer",
			"Missing required param: customer.")
	}
	obj, err := decodeObject(up.body)
	if err != nil {
		return up
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cus[customer]; !ok {
		return noSuchCustomer(http.StatusBadRequest, "customer", customer)
	}
	found, ok := p.paymentMethod(pmID)
	switch {
	case !ok:
		return stripeError(http.StatusNotFound, "invalid_request_error", "resource_missing", "payment_method",
			fmt.Sprintf("No such PaymentMethod: '%s'", pmID))
	case found.customer == customer:
		// Already saved on this customer: nothing to do, as at Stripe.
	case found.customer != "":
		return stripeError(http.StatusBadRequest, "invalid_request_error", "", "payment_method",
			"The payment method you provided has already been attached to a customer.")
	case found.outcome.code != "" && !found.outcome.attachable:
		return jsonResponse(http.StatusPaymentRequired, up, map[string]any{"error": cardError(found.outcome, pmID)})
	}
	pm := p.pms[pmID]
	if found.magic {
		pm = &storedPaymentMethod{id: newID("pm_"), source: pmID, outcome: found.outcome}
		p.storePaymentMethod(pm)
	}
	pm.customer = customer
	describePaymentMethod(obj, pm)
	return jsonResponse(http.StatusOK, up, obj)
}

func noSuchCustomer(status int, param, id string) *response {
	return stripeError(status, "invalid_request_error", "resource_missing", param, fmt.Sprintf("No such customer: '%s'", id))
}

func notAttached(pmID, param string) *response {
	return stripeError(http.StatusBadRequest, "invalid_request_error", "", param, fmt.Sprintf(
		"The customer does not have a payment method with the ID %s. The payment method must be attached to the customer.", pmID))
}
