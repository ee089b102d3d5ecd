package paypal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// PayPal's statuses that the double uses.
const (
	statusCreated           = "CREATED"
	statusApproved          = "APPROVED"
	statusCompleted         = "COMPLETED"
	statusPending           = "PENDING"
	statusDeclined          = "DECLINED"
	statusPartiallyRefunded = "PARTIALLY_REFUNDED"
	statusRefunded          = "REFUNDED"
	statusOpen              = "OPEN"
	statusResolved          = "RESOLVED"
)

// decimals is how a currency is counted: PayPal's decimals (its currency codes reference) and
// ISO 4217's, which cartflow's minor units follow. The table is the double's own, not
// cartflow's money package, so that the gateway's conversions are checked against another
// reading of the rules rather than against themselves.
type decimals struct{ paypal, iso int }

// currencies are PayPal's currencies. HUF and TWD have hundredths in ISO 4217, but PayPal takes
// them in whole units only. KWD is not a PayPal currency; the double accepts it so that
// three-decimal amounts can be tested.
var currencies = map[string]decimals{
	"AUD": {2, 2}, "BRL": {2, 2}, "CAD": {2, 2}, "CHF": {2, 2}, "CNY": {2, 2}, "CZK": {2, 2}, "DKK": {2, 2},
	"EUR": {2, 2}, "GBP": {2, 2}, "HKD": {2, 2}, "HUF": {0, 2}, "ILS": {2, 2}, "JPY": {0, 0}, "KWD": {3, 3},
	"MXN": {2, 2}, "MYR": {2, 2}, "NOK": {2, 2}, "NZD": {2, 2}, "PHP": {2, 2}, "PLN": {2, 2}, "SEK": {2, 2},
	"SGD": {2, 2}, "THB": {2, 2}, "TWD": {0, 2}, "USD": {2, 2},
}

// formatValue writes amount units of 10^-places as PayPal's decimal value: "62.00", "1500", "1.234".
func formatValue(amount int64, places int) string {
	s := strconv.FormatInt(amount, 10)
	if places == 0 {
		return s
	}
	s = fmt.Sprintf("%0*d", places+1, amount)
	return s[:len(s)-places] + "." + s[len(s)-places:]
}

// valuePattern is PayPal's decimal value without a sign.
var valuePattern = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,6})?$`)

// parseValue reads a value with exactly places decimals, as cartflow's gateway must send them
// (PayPal refuses more with DECIMAL_PRECISION).
func parseValue(value string, places int) (int64, bool) {
	if !valuePattern.MatchString(value) {
		return 0, false
	}
	whole, frac, _ := strings.Cut(value, ".")
	if len(frac) != places {
		return 0, false
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	return n, err == nil
}

func money(amount int64, currency string) map[string]string {
	return map[string]string{"currency_code": currency, "value": formatValue(amount, currencies[currency].paypal)}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func stamp(t time.Time) string { return t.Format(time.RFC3339) }

// order is an Orders v2 order; every change happens under Server.mu.
type order struct {
	id, status, currency, customID string
	amount                         int64 // in PayPal's unit of currency (cents, yen, forints)
	issue                          string
	pending, declined              bool
	captures                       []*capture
	createdAt, updatedAt           time.Time
}

// capture is a payment captured from an order.
type capture struct {
	id, status, reason, currency string
	amount, refunded             int64
	order                        *order
	requestID                    string
	refunds                      []*refund
	dispute                      *dispute
	// base is the double's URL as the request that made the capture reached it, for links.
	base                 string
	createdAt, updatedAt time.Time
}

// refund returns money of a capture.
type refund struct {
	id             string
	capture        *capture
	amount         int64
	totalRefunded  int64 // the capture's refunded total once this refund was made
	requestedValue string
	requestID      string
	createdAt      time.Time
}

// dispute is a buyer's dispute of a capture, opened and decided by the events tests send.
type dispute struct {
	id, status, reason, outcome string
	createdAt, updatedAt        time.Time
}

// NewOrder is an order as a buyer's browser creates it with PayPal's JavaScript SDK, and what
// PayPal will make of its captures.
type NewOrder struct {
	// ID is the order's id; empty makes a new one of 17 upper-case letters and digits, the shape
	// cartflow's BFF expects of a PayPal token.
	ID string `json:"id,omitempty"`
	// Amount is in minor units of Currency as cartflow counts them (ISO 4217: 6200 usd, 150000
	// huf); Value is PayPal's decimal value instead ("62.00", "1500"). Exactly one is set.
	Amount   int64  `json:"amount,omitempty"`
	Value    string `json:"value,omitempty"`
	Currency string `json:"currency"`
	// Status is APPROVED (the default: the buyer approved the payment) or CREATED (not yet).
	Status   string `json:"status,omitempty"`
	CustomID string `json:"custom_id,omitempty"`
	// Issue makes every capture of the order fail with 422 and this issue, such as
	// INSTRUMENT_DECLINED, PAYER_CANNOT_PAY or CARD_EXPIRED, as PayPal does when the buyer's
	// funding source refuses the payment.
	Issue string `json:"issue,omitempty"`
	// Pending leaves captures PENDING, as PayPal does while it reviews a payment (or an eCheck
	// clears); CompleteCaptures or a PAYMENT.CAPTURE.COMPLETED event completes them.
	Pending bool `json:"pending,omitempty"`
	// Declined makes captures with status DECLINED, and the order stays approved.
	Declined bool `json:"declined,omitempty"`
}

var (
	orderIDPattern = regexp.MustCompile(`^[A-Z0-9]{1,36}$`)
	issuePattern   = regexp.MustCompile(`^[A-Z][A-Z_]{0,63}$`)
)

// AddOrder creates an order as a buyer's browser does and returns it.
func (s *Server) AddOrder(n NewOrder) (Order, error) {
	o, err := n.build()
	if err != nil {
		return Order{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.add(o, n.ID); err != nil {
		return Order{}, err
	}
	return o.snapshot(), nil
}

// build checks a new order as PayPal would and makes it, without an id yet.
func (n NewOrder) build() (*order, error) {
	currency := strings.ToUpper(n.Currency)
	dec, ok := currencies[currency]
	if !ok {
		return nil, fmt.Errorf("%w: PayPal does not take the currency %q", ErrInvalidOrder, n.Currency)
	}
	var amount int64
	switch {
	case (n.Amount != 0) == (n.Value != ""):
		return nil, fmt.Errorf("%w: give either amount (minor units) or value (PayPal's decimal), not both or neither", ErrInvalidOrder)
	case n.Value != "":
		if amount, ok = parseValue(n.Value, dec.paypal); !ok {
			return nil, fmt.Errorf("%w: the value %q is not an amount with %d decimals (DECIMAL_PRECISION)", ErrInvalidOrder, n.Value, dec.paypal)
		}
	default:
		amount = n.Amount
		for range dec.iso - dec.paypal {
			if amount%10 != 0 {
				return nil, fmt.Errorf("%w: PayPal takes %s in whole units only, not %d minor units", ErrInvalidOrder, currency, n.Amount)
			}
			amount /= 10
		}
	}
	if amount <= 0 {
		return nil, fmt.Errorf("%w: the amount must be positive", ErrInvalidOrder)
	}
	status := n.Status
	if status == "" {
		status = statusApproved
	}
	switch {
	case status != statusApproved && status != statusCreated:
		return nil, fmt.Errorf("%w: the status must be %s or %s, not %q", ErrInvalidOrder, statusApproved, statusCreated, n.Status)
	case n.Issue != "" && !issuePattern.MatchString(n.Issue):
		return nil, fmt.Errorf("%w: the issue %q is not one of PayPal's (INSTRUMENT_DECLINED, …)", ErrInvalidOrder, n.Issue)
	case n.Pending && n.Declined:
		return nil, fmt.Errorf("%w: a capture is either pending or declined", ErrInvalidOrder)
	case len(n.CustomID) > 127:
		return nil, fmt.Errorf("%w: the custom id is longer than PayPal's 127 characters", ErrInvalidOrder)
	case n.ID != "" && !orderIDPattern.MatchString(n.ID):
		return nil, fmt.Errorf("%w: the id %q is not upper-case letters and digits", ErrInvalidOrder, n.ID)
	}

	at := now()
	return &order{status: status, currency: currency, customID: n.CustomID, amount: amount,
		issue: n.Issue, pending: n.Pending, declined: n.Declined, createdAt: at, updatedAt: at}, nil
}

// add stores a built order under id, or a new id when id is empty; the caller holds s.mu.
func (s *Server) add(o *order, id string) error {
	if id == "" {
		id = s.newID()
	} else if s.taken(id) {
		return fmt.Errorf("%w: the id %s is in use", ErrInvalidOrder, id)
	}
	o.id = id
	s.orders = append(s.orders, o)
	s.byID[id] = o
	return nil
}

// CreateApprovedOrder creates an order for amount minor units of currency that the buyer has
// approved, as the storefront's PayPal button leaves it, and returns its id: the token the
// storefront sends cartflow.
func (s *Server) CreateApprovedOrder(amount int64, currency string) (string, error) {
	o, err := s.AddOrder(NewOrder{Amount: amount, Currency: currency})
	return o.ID, err
}

// CompleteCaptures completes an order's pending captures, as PayPal does once its review passes.
// Captures that are complete already stay so; an order with no capture is ErrInvalidState.
func (s *Server) CompleteCaptures(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byID[orderID]
	if o == nil {
		return fmt.Errorf("%w: order %s", ErrNotFound, orderID)
	}
	if len(o.captures) == 0 {
		return fmt.Errorf("%w: order %s has no capture", ErrInvalidState, orderID)
	}
	for _, c := range o.captures {
		if c.status == statusPending {
			s.completeCapture(c)
		}
	}
	return nil
}

// completeCapture completes a pending capture; the caller holds s.mu.
func (s *Server) completeCapture(c *capture) {
	c.status, c.reason, c.updatedAt = statusCompleted, "", now()
	c.order.status, c.order.updatedAt = statusCompleted, c.updatedAt
	s.log.Info("paypal capture completed", "capture", c.id, "order", c.order.id)
}

// taken reports whether an id names an order, capture or refund; the caller holds s.mu.
func (s *Server) taken(id string) bool {
	if s.byID[id] != nil || s.captures[id] != nil {
		return true
	}
	for _, r := range s.refunds {
		if r.id == id {
			return true
		}
	}
	return false
}

// newID returns a 17-character id that nothing has; the caller holds s.mu.
func (s *Server) newID() string {
	for {
		if id := newID(17); !s.taken(id) {
			return id
		}
	}
}

// getOrder is GET /v2/checkout/orders/{id}; the caller holds s.mu.
func (s *Server) getOrder(id, base string) answer {
	o := s.byID[id]
	if o == nil {
		return apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
	}
	return jsonAnswer(http.StatusOK, o.json(base))
}

// capture is POST /v2/checkout/orders/{id}/capture; the caller holds s.mu.
func (s *Server) capture(rec *Request, body map[string]json.RawMessage, id, base string, captureFirst bool) answer {
	if a := unknownField(body, "payment_source"); a != nil {
		return *a
	}
	key := OpCapture + " " + id + " " + rec.RequestID
	if a, ok := s.answers[key]; ok && rec.RequestID != "" {
		rec.Replayed = true
		return a
	}
	o := s.byID[id]
	var a answer
	switch {
	case o == nil:
		a = apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
	default:
		if captureFirst && o.status == statusApproved && o.issue == "" {
			s.newCapture(o, "", base)
		}
		switch {
		case o.status == statusCompleted:
			a = unprocessable("ORDER_ALREADY_CAPTURED")
		case o.status == statusCreated:
			a = unprocessable("ORDER_NOT_APPROVED")
		case o.issue != "":
			a = unprocessable(o.issue)
		default:
			s.newCapture(o, rec.RequestID, base)
			a = jsonAnswer(http.StatusCreated, o.json(base))
			a.minimal, _ = json.Marshal(map[string]any{"id": o.id, "status": o.status, "links": o.links(base)})
		}
	}
	// PayPal keeps the answer for the PayPal-Request-Id: a retry gets it again, and captures
	// nothing more. Without an id every request is new.
	if rec.RequestID != "" {
		s.answers[key] = a
	}
	return a
}

// newCapture captures an order; the caller holds s.mu.
func (s *Server) newCapture(o *order, requestID, base string) *capture {
	at := now()
	c := &capture{id: s.newID(), status: statusCompleted, currency: o.currency, amount: o.amount, order: o,
		requestID: requestID, base: base, createdAt: at, updatedAt: at}
	switch {
	case o.pending:
		c.status, c.reason = statusPending, "PENDING_REVIEW"
	case o.declined:
		c.status = statusDeclined
	}
	if !o.declined {
		o.status, o.updatedAt = statusCompleted, at
	}
	o.captures = append(o.captures, c)
	s.captures[c.id] = c
	s.log.Info("paypal order captured", "order", o.id, "capture", c.id, "status", c.status)
	return c
}

// refund is POST /v2/payments/captures/{id}/refund; the caller holds s.mu.
func (s *Server) refund(rec *Request, body map[string]json.RawMessage, id, base string) answer {
	if a := unknownField(body, "amount", "custom_id", "invoice_id", "note_to_payer"); a != nil {
		return *a
	}
	var asked *struct {
		Currency string `json:"currency_code"`
		Value    string `json:"value"`
	}
	if raw, ok := body["amount"]; ok {
		if err := json.Unmarshal(raw, &asked); err != nil || asked == nil || asked.Currency == "" || asked.Value == "" {
			return apiError(http.StatusBadRequest, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "The amount must be a Money object with currency_code and value.")
		}
	}
	key := OpRefund + " " + id + " " + rec.RequestID
	if a, ok := s.answers[key]; ok && rec.RequestID != "" {
		rec.Replayed = true
		return a
	}
	keep := func(a answer) answer {
		if rec.RequestID != "" {
			s.answers[key] = a
		}
		return a
	}
	c := s.captures[id]
	if c == nil {
		return keep(apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist."))
	}
	remaining := c.amount - c.refunded
	amount, value := remaining, ""
	if asked != nil {
		if asked.Currency != c.currency {
			return keep(unprocessable("CURRENCY_MISMATCH"))
		}
		n, ok := parseValue(asked.Value, currencies[c.currency].paypal)
		if !ok {
			// Refused before anything is looked at: a corrected request is processed afresh.
			return apiError(http.StatusBadRequest, "INVALID_REQUEST", "DECIMAL_PRECISION",
				fmt.Sprintf("The value must have exactly %d decimals for %s.", currencies[c.currency].paypal, c.currency))
		}
		if n <= 0 {
			return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "The amount must be positive.")
		}
		amount, value = n, asked.Value
	}
	switch {
	case c.status == statusPending:
		return keep(unprocessable("PENDING_CAPTURE"))
	case c.status == statusDeclined:
		return keep(unprocessable("REFUND_NOT_ALLOWED"))
	case remaining == 0:
		return keep(unprocessable("CAPTURE_FULLY_REFUNDED"))
	case amount > remaining:
		return keep(unprocessable("REFUND_AMOUNT_EXCEEDED"))
	}
	r := s.newRefund(c, amount, value, rec.RequestID)
	a := jsonAnswer(http.StatusCreated, r.json(base))
	a.minimal, _ = json.Marshal(map[string]any{"id": r.id, "status": statusCompleted, "links": r.links(base)})
	return keep(a)
}

// newRefund refunds amount of a capture; the caller holds s.mu and has checked the amount.
func (s *Server) newRefund(c *capture, amount int64, requestedValue, requestID string) *refund {
	at := now()
	c.refunded += amount
	c.status, c.updatedAt = statusPartiallyRefunded, at
	if c.refunded == c.amount {
		c.status = statusRefunded
	}
	r := &refund{id: s.newID(), capture: c, amount: amount, totalRefunded: c.refunded, requestedValue: requestedValue,
		requestID: requestID, createdAt: at}
	c.refunds = append(c.refunds, r)
	s.refunds = append(s.refunds, r)
	s.log.Info("paypal capture refunded", "capture", c.id, "refund", r.id, "capture_status", c.status)
	return r
}

func link(href, rel, method string) map[string]string {
	return map[string]string{"href": href, "rel": rel, "method": method}
}

func (o *order) links(base string) []map[string]string {
	links := []map[string]string{link(base+"/v2/checkout/orders/"+o.id, "self", http.MethodGet)}
	if o.status == statusCreated {
		// Where the storefront sends the buyer to approve the payment; the double's admin API
		// (ApproveOrder) stands for the buyer doing so.
		links = append(links, link(base+"/checkoutnow?token="+o.id, "approve", http.MethodGet))
	}
	return links
}

func (r *refund) links(base string) []map[string]string {
	return []map[string]string{
		link(base+"/v2/payments/refunds/"+r.id, "self", http.MethodGet),
		link(base+"/v2/payments/captures/"+r.capture.id, "up", http.MethodGet),
	}
}

// json is the order as Orders v2 returns it, with its captures and refunds.
func (o *order) json(base string) map[string]any {
	pu := map[string]any{"reference_id": "default", "amount": money(o.amount, o.currency)}
	if o.customID != "" {
		pu["custom_id"] = o.customID
	}
	if len(o.captures) > 0 {
		var captures, refunds []any
		for _, c := range o.captures {
			captures = append(captures, c.json(base))
			for _, r := range c.refunds {
				refunds = append(refunds, r.json(base))
			}
		}
		payments := map[string]any{"captures": captures}
		if refunds != nil {
			payments["refunds"] = refunds
		}
		pu["payments"] = payments
	}
	return map[string]any{"id": o.id, "intent": "CAPTURE", "status": o.status, "purchase_units": []any{pu},
		"create_time": stamp(o.createdAt), "update_time": stamp(o.updatedAt), "links": o.links(base)}
}

// json is the capture as Payments v2 and webhook events describe it.
func (c *capture) json(base string) map[string]any {
	out := map[string]any{"id": c.id, "status": c.status, "amount": money(c.amount, c.currency), "final_capture": true,
		"create_time": stamp(c.createdAt), "update_time": stamp(c.updatedAt),
		"supplementary_data": map[string]any{"related_ids": map[string]string{"order_id": c.order.id}},
		"links": []map[string]string{
			link(base+"/v2/payments/captures/"+c.id, "self", http.MethodGet),
			link(base+"/v2/payments/captures/"+c.id+"/refund", "refund", http.MethodPost),
			link(base+"/v2/checkout/orders/"+c.order.id, "up", http.MethodGet),
		}}
	if c.order.customID != "" {
		out["custom_id"] = c.order.customID
	}
	if c.reason != "" {
		out["status_details"] = map[string]string{"reason": c.reason}
	}
	return out
}

// json is the refund as Payments v2 and webhook events describe it.
func (r *refund) json(base string) map[string]any {
	cur := r.capture.currency
	out := map[string]any{"id": r.id, "status": statusCompleted, "amount": money(r.amount, cur),
		"seller_payable_breakdown": map[string]any{
			"gross_amount": money(r.amount, cur), "paypal_fee": money(0, cur), "net_amount": money(r.amount, cur),
			"total_refunded_amount": money(r.totalRefunded, cur),
		},
		"create_time": stamp(r.createdAt), "update_time": stamp(r.createdAt), "links": r.links(base)}
	if id := r.capture.order.customID; id != "" {
		out["custom_id"] = id
	}
	return out
}

// Order is a snapshot of an order the double holds.
type Order struct {
	ID string `json:"id"`
	// Status is CREATED, APPROVED or COMPLETED (captured).
	Status string `json:"status"`
	// Value is PayPal's decimal value ("62.00") in Currency (upper-case ISO 4217).
	Value    string `json:"value"`
	Currency string `json:"currency"`
	CustomID string `json:"custom_id,omitempty"`
	// Issue, Pending and Declined are what the order's captures meet (see NewOrder).
	Issue     string    `json:"issue,omitempty"`
	Pending   bool      `json:"pending,omitempty"`
	Declined  bool      `json:"declined,omitempty"`
	Captures  []Capture `json:"captures"`
	CreatedAt time.Time `json:"created_at"`
}

// Capture is a snapshot of a capture.
type Capture struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	// Status is COMPLETED, PENDING, DECLINED, PARTIALLY_REFUNDED or REFUNDED.
	Status       string `json:"status"`
	StatusReason string `json:"status_reason,omitempty"`
	Value        string `json:"value"`
	Currency     string `json:"currency"`
	// RefundedValue is what the capture's refunds returned, in PayPal's decimal value.
	RefundedValue string `json:"refunded_value"`
	// RequestID is the PayPal-Request-Id of the request that made the capture; empty when the
	// order was captured by someone else (Fault.CaptureFirst).
	RequestID string    `json:"paypal_request_id,omitempty"`
	Refunds   []Refund  `json:"refunds"`
	Dispute   *Dispute  `json:"dispute,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Refund is a snapshot of a refund.
type Refund struct {
	ID        string `json:"id"`
	CaptureID string `json:"capture_id"`
	Status    string `json:"status"`
	// Value is what the refund returned, in PayPal's decimal value; RequestedValue the value the
	// request asked for, empty when it asked for whatever remained.
	Value          string `json:"value"`
	RequestedValue string `json:"requested_value,omitempty"`
	Currency       string `json:"currency"`
	// RequestID is the PayPal-Request-Id of the request that made the refund; empty for a
	// refund the merchant made at PayPal (SendWebhook with PAYMENT.CAPTURE.REFUNDED).
	RequestID string    `json:"paypal_request_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Dispute is a snapshot of a capture's dispute.
type Dispute struct {
	ID string `json:"id"`
	// Status is OPEN or RESOLVED; Outcome is set once resolved (RESOLVED_SELLER_FAVOUR).
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Outcome string `json:"outcome,omitempty"`
}

func (o *order) snapshot() Order {
	out := Order{ID: o.id, Status: o.status, Value: formatValue(o.amount, currencies[o.currency].paypal), Currency: o.currency,
		CustomID: o.customID, Issue: o.issue, Pending: o.pending, Declined: o.declined, Captures: []Capture{}, CreatedAt: o.createdAt}
	for _, c := range o.captures {
		out.Captures = append(out.Captures, c.snapshot())
	}
	return out
}

func (c *capture) snapshot() Capture {
	places := currencies[c.currency].paypal
	out := Capture{ID: c.id, OrderID: c.order.id, Status: c.status, StatusReason: c.reason, Value: formatValue(c.amount, places),
		Currency: c.currency, RefundedValue: formatValue(c.refunded, places), RequestID: c.requestID, Refunds: []Refund{}, CreatedAt: c.createdAt}
	for _, r := range c.refunds {
		out.Refunds = append(out.Refunds, r.snapshot())
	}
	if d := c.dispute; d != nil {
		out.Dispute = &Dispute{ID: d.id, Status: d.status, Reason: d.reason, Outcome: d.outcome}
	}
	return out
}

func (r *refund) snapshot() Refund {
	return Refund{ID: r.id, CaptureID: r.capture.id, Status: statusCompleted, Value: formatValue(r.amount, currencies[r.capture.currency].paypal),
		RequestedValue: r.requestedValue, Currency: r.capture.currency, RequestID: r.requestID, CreatedAt: r.createdAt}
}

// Orders returns snapshots of every order, oldest first.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Map(s.orders, (*order).snapshot)
}

// Order returns a snapshot of the order with this id.
func (s *Server) Order(id string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Lookup(s.byID, id, (*order).snapshot)
}

// Captures returns snapshots of every capture, declined and pending ones included, by order
// (oldest first) and then in the order they were made.
func (s *Server) Captures() []Capture {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.FlatMap(s.orders, func(o *order) []Capture { return kit.Map(o.captures, (*capture).snapshot) })
}

// Capture returns a snapshot of the capture with this id.
func (s *Server) Capture(id string) (Capture, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Lookup(s.captures, id, (*capture).snapshot)
}

// Refunds returns snapshots of every refund, oldest first.
func (s *Server) Refunds() []Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Map(s.refunds, (*refund).snapshot)
}
