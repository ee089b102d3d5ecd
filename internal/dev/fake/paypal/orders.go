package paypal

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// createOrder is POST /v2/checkout/orders, as a shop's server sends it: intent CAPTURE and one
// purchase unit with an amount and, for cartflow, a custom_id. The order waits for the buyer's
// approval (ApproveOrder). The caller holds s.mu.
func (s *Server) createOrder(rec *Request, body map[string]json.RawMessage, base string) answer {
	if a := unknownField(body, "intent", "purchase_units", "payment_source", "application_context"); a != nil {
		return *a
	}
	key := OpCreateOrder + " " + rec.RequestID
	if a, ok := s.answers[key]; ok && rec.RequestID != "" {
		rec.Replayed = true
		return a
	}
	var intent string
	var units []struct {
		ReferenceID string `json:"reference_id"`
		CustomID    string `json:"custom_id"`
		Description string `json:"description"`
		Amount      *struct {
			Currency string `json:"currency_code"`
			Value    string `json:"value"`
		} `json:"amount"`
	}
	if json.Unmarshal(body["intent"], &intent) != nil || json.Unmarshal(body["purchase_units"], &units) != nil {
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "The intent and purchase_units are not well formed.")
	}
	switch {
	case intent != "CAPTURE" && intent != "AUTHORIZE":
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "The intent must be CAPTURE or AUTHORIZE.")
	case intent != "CAPTURE":
		// The double captures orders only; an authorization is not what cartflow sends.
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "The double creates orders with intent CAPTURE only.")
	case len(units) != 1:
		// PayPal takes up to ten units; cartflow sends one, and the double holds one amount.
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_ARRAY_MAX_ITEMS", "The double takes exactly one purchase unit.")
	case units[0].Amount == nil || units[0].Amount.Currency == "" || units[0].Amount.Value == "":
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "purchase_units[0].amount needs currency_code and value.")
	}
	o, err := NewOrder{Value: units[0].Amount.Value, Currency: units[0].Amount.Currency, CustomID: units[0].CustomID, Status: statusCreated}.build()
	if err != nil {
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "The amount or custom_id is not valid: "+err.Error())
	}
	if err := s.add(o, ""); err != nil {
		panic(err) // a new id is never taken
	}
	s.log.Info("paypal order created", "order", o.id)
	a := jsonAnswer(http.StatusCreated, o.json(base))
	a.minimal, _ = json.Marshal(map[string]any{"id": o.id, "status": o.status, "links": o.links(base)})
	if rec.RequestID != "" {
		s.answers[key] = a
	}
	return a
}

// ApproveOrder approves a created order, as the buyer does in PayPal's window; an order that is
// approved already stays so. A captured order is ErrInvalidState.
func (s *Server) ApproveOrder(id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byID[id]
	switch {
	case o == nil:
		return Order{}, fmt.Errorf("%w: order %s", ErrNotFound, id)
	case o.status == statusCreated:
		o.status, o.updatedAt = statusApproved, now()
		s.log.Info("paypal order approved", "order", id)
	case o.status != statusApproved:
		return Order{}, fmt.Errorf("%w: order %s is %s", ErrInvalidState, id, o.status)
	}
	return o.snapshot(), nil
}

// transactionTime is how the Transaction Search API writes times: no colon in the offset.
const transactionTime = "2006-01-02T15:04:05-0700"

// transactionStatuses are the Transaction Search API's one-letter statuses of a capture.
var transactionStatuses = map[string]string{
	statusCompleted: "S", statusPartiallyRefunded: "S", statusRefunded: "S", statusPending: "P", statusDeclined: "D",
}

// transaction is one row of the Transaction Search API.
type transaction struct {
	at   time.Time
	info map[string]any
}

// listTransactions is GET /v1/reporting/transactions: the captures (T0006, PayPal Checkout APIs)
// and refunds (T1107) made between start_date and end_date, at most 31 days apart, paged. PayPal
// lists a transaction up to three hours after it happened; the double lists it at once. The
// caller holds s.mu.
func (s *Server) listTransactions(q url.Values) answer {
	start, err1 := time.Parse(time.RFC3339, q.Get("start_date"))
	end, err2 := time.Parse(time.RFC3339, q.Get("end_date"))
	switch {
	case err1 != nil || err2 != nil:
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_DATE_FORMAT", "start_date and end_date are required, in RFC 3339.")
	case end.Before(start) || end.Sub(start) > 31*24*time.Hour:
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_DATE_RANGE", "end_date must follow start_date by at most 31 days.")
	}
	pageSize, err1 := positive(q.Get("page_size"), 100)
	page, err2 := positive(q.Get("page"), 1)
	if err1 != nil || err2 != nil || pageSize > 500 {
		return apiError(http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "page_size is 1 to 500 and page at least 1.")
	}
	var rows []transaction
	in := func(t time.Time) bool { return !t.Before(start) && !t.After(end) }
	for _, o := range s.orders {
		for _, c := range o.captures {
			places := currencies[c.currency].paypal
			if in(c.createdAt) {
				rows = append(rows, transaction{c.createdAt, map[string]any{
					"transaction_id": c.id, "transaction_event_code": "T0006", "transaction_status": transactionStatuses[c.status],
					"transaction_initiation_date": c.createdAt.Format(transactionTime), "transaction_updated_date": c.updatedAt.Format(transactionTime),
					"transaction_amount": map[string]string{"currency_code": c.currency, "value": formatValue(c.amount, places)},
					"custom_field":       o.customID, "paypal_reference_id": o.id, "paypal_reference_id_type": "ODR",
				}})
			}
			for _, r := range c.refunds {
				if in(r.createdAt) {
					rows = append(rows, transaction{r.createdAt, map[string]any{
						"transaction_id": r.id, "transaction_event_code": "T1107", "transaction_status": "S",
						"transaction_initiation_date": r.createdAt.Format(transactionTime), "transaction_updated_date": r.createdAt.Format(transactionTime),
						"transaction_amount": map[string]string{"currency_code": c.currency, "value": "-" + formatValue(r.amount, places)},
						"custom_field":       o.customID, "paypal_reference_id": c.id, "paypal_reference_id_type": "TXN",
					}})
				}
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b transaction) int { return a.at.Compare(b.at) })
	pages := max(1, (len(rows)+pageSize-1)/pageSize)
	details := []any{}
	for _, r := range rows[min(len(rows), (page-1)*pageSize):min(len(rows), page*pageSize)] {
		details = append(details, map[string]any{"transaction_info": r.info})
	}
	return jsonAnswer(http.StatusOK, map[string]any{
		"transaction_details": details, "account_number": "CARTFLOWDOUBLE",
		"start_date": start.Format(transactionTime), "end_date": end.Format(transactionTime),
		"last_refreshed_datetime": now().Format(transactionTime),
		"page":                    page, "total_items": len(rows), "total_pages": pages,
	})
}

// positive reads a query parameter that must be a positive integer; empty is def.
func positive(v string, def int) (int, error) {
	n, err := strconv.Atoi(cmp.Or(v, strconv.Itoa(def)))
	if err == nil && n < 1 {
		err = errors.New("not positive")
	}
	return n, err
}
