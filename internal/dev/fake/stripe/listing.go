package stripe

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file emulates listing PaymentIntents by creation time, and search that lags behind
// writes. Stripe documents the two differently: the list API reads its data directly and sees
// every write at once, while Search is eventually consistent ("data is usually searchable within
// a minute", https://docs.stripe.com/search#data-freshness), so a search may miss a
// PaymentIntent that exists.

// SetSearchLag makes GET /v1/payment_intents/search leave out every PaymentIntent created or
// changed less than lag ago, as Stripe's eventually consistent search may; 0 turns it off.
// Retrieving and listing PaymentIntents stay immediate, as at Stripe.
func (p *Proxy) SetSearchLag(lag time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.searchLag = max(lag, 0)
}

// searchable reports whether search sees pi yet; the caller holds p.mu.
func (p *Proxy) searchable(pi *intent, now time.Time) bool {
	return p.searchLag == 0 || now.Sub(pi.changed) >= p.searchLag
}

// serveSetSearchLag is POST /__cartflow/search_lag with {"lag_ms": N}; 0 turns the lag off.
func (p *Proxy) serveSetSearchLag(w http.ResponseWriter, r *http.Request) {
	var body struct {
		LagMS *int64 `json:"lag_ms"`
	}
	if !readJSON(w, r, &body, "search lag") {
		return
	}
	if body.LagMS == nil || *body.LagMS < 0 {
		http.Error(w, `invalid search lag: want {"lag_ms": N} with N >= 0`, http.StatusBadRequest)
		return
	}
	p.SetSearchLag(time.Duration(*body.LagMS) * time.Millisecond)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]int64{"lag_ms": *body.LagMS})
}

// createdFilter is the list API's created filter: created=T, or any of created[gt], [gte], [lt]
// and [lte], in Unix seconds.
type createdFilter struct{ gt, gte, lt, lte *int64 }

// parseCreatedFilter reads the created filter, or answers Stripe's refusal of a bad bound.
func parseCreatedFilter(form url.Values) (createdFilter, *response) {
	var f createdFilter
	for param, bound := range map[string]**int64{"created": &f.gte, "created[gt]": &f.gt, "created[gte]": &f.gte,
		"created[lt]": &f.lt, "created[lte]": &f.lte} {
		if !form.Has(param) {
			continue
		}
		v, err := strconv.ParseInt(form.Get(param), 10, 64)
		if err != nil {
			return f, stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", param,
				fmt.Sprintf("Invalid integer: %s", form.Get(param)))
		}
		*bound = &v
		if param == "created" { // an exact time is both bounds
			f.lte = &v
		}
	}
	return f, nil
}

func (f createdFilter) matches(created int64) bool {
	return (f.gt == nil || created > *f.gt) && (f.gte == nil || created >= *f.gte) &&
		(f.lt == nil || created < *f.lt) && (f.lte == nil || created <= *f.lte)
}

// listPaymentIntents is GET /v1/payment_intents: the PaymentIntents whose created time passes
// the created filter (and of the customer, when given), newest first, a page of limit (1 to
// 100, 10 by default) after the cursor starting_after or before ending_before, with has_more,
// which is what stripe-go's list iterator pages through. With expand[]=data.latest_charge each
// latest_charge is the Charge itself, carrying amount_refunded. stripe-mock accepts all of these
// parameters; its fixture list only lends the expanded Charge's shape.
func (p *Proxy) listPaymentIntents(up *response, form url.Values) *response {
	limit := 10
	if s := form.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "limit",
				"This value must be greater than or equal to 1 and less than or equal to 100.")
		}
		limit = n
	}
	created, refused := parseCreatedFilter(form)
	if refused != nil {
		return refused
	}
	after, before := form.Get("starting_after"), form.Get("ending_before")
	customer := form.Get("customer")
	expandCharge := slices.ContainsFunc(expansions(form), func(e string) bool { return e == "data.latest_charge" })

	p.mu.Lock()
	defer p.mu.Unlock()
	for param, cursor := range map[string]string{"starting_after": after, "ending_before": before} {
		if _, ok := p.pis[cursor]; cursor != "" && !ok {
			return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", param,
				fmt.Sprintf("No such payment_intent: '%s'", cursor))
		}
	}
	// Newest first, as Stripe lists; PaymentIntents made within one second keep the order they
	// were made in, newest first too.
	var page []*intent
	passed := after == "" // past the starting_after cursor yet
	for _, id := range slices.Backward(p.piOrder) {
		pi := p.pis[id]
		switch {
		case id == after:
			passed = true
			continue
		case id == before:
			passed = false // nothing older than ending_before belongs in the page
		}
		if passed && created.matches(pi.created) && (customer == "" || pi.Customer == customer) {
			page = append(page, pi)
		}
	}
	var hasMore bool
	if len(page) > limit {
		hasMore = true
		if before != "" { // the page just before the cursor: its oldest items
			page = page[len(page)-limit:]
		} else {
			page = page[:limit]
		}
	}
	data := make([]json.RawMessage, 0, len(page))
	fixture := chargeFixture(up)
	for _, pi := range page {
		body := pi.body
		if expandCharge && pi.LatestCharge != "" {
			var err error
			if body, err = withCharge(pi, fixture); err != nil {
				return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
			}
		}
		data = append(data, body)
	}
	return jsonResponse(http.StatusOK, up, map[string]any{"object": "list", "data": data,
		"has_more": hasMore, "url": "/v1/payment_intents"})
}

// expansions are the expand[] values, which stripe-go sends as expand[0], expand[1]….
func expansions(form url.Values) []string {
	var out []string
	for k, v := range form {
		if strings.HasPrefix(k, "expand[") {
			out = append(out, v...)
		}
	}
	return out
}

// chargeFixture is the expanded latest_charge of stripe-mock's fixture list, the shape every
// expanded Charge is made from; an empty object when stripe-mock gave none.
func chargeFixture(up *response) map[string]any {
	obj, err := decodeObject(up.body)
	if err != nil {
		return map[string]any{}
	}
	if data, ok := obj["data"].([]any); ok && len(data) > 0 {
		if first, ok := data[0].(map[string]any); ok {
			if ch, ok := first["latest_charge"].(map[string]any); ok {
				return ch
			}
		}
	}
	return map[string]any{}
}

// withCharge is pi's JSON with latest_charge expanded into the Charge made by its last attempt:
// captured with the PaymentIntent's money when it succeeded, failed with nothing otherwise, and
// carrying what has been refunded of it. The caller holds p.mu.
func withCharge(pi *intent, fixture map[string]any) ([]byte, error) {
	obj, err := decodeObject(pi.body)
	if err != nil {
		return nil, err
	}
	ch := maps.Clone(fixture)
	succeeded := pi.Status == "succeeded"
	status := map[bool]string{true: "succeeded", false: "failed"}[succeeded]
	// The fixture's refunds list and failure fields describe some other charge.
	for _, k := range []string{"refunds", "failure_code", "failure_message", "failure_balance_transaction",
		"balance_transaction", "invoice", "review", "dispute", "transfer", "transfer_data"} {
		ch[k] = nil
	}
	maps.Copy(ch, map[string]any{
		"id": pi.LatestCharge, "object": "charge", "amount": pi.Amount, "amount_captured": pi.AmountReceived,
		"amount_refunded": pi.AmountRefunded, "refunded": succeeded && pi.AmountRefunded == pi.AmountReceived,
		"currency": pi.Currency, "payment_intent": pi.ID, "status": status, "paid": succeeded, "captured": succeeded,
		"customer": nilIfEmpty(pi.Customer), "payment_method": nilIfEmpty(pi.PaymentMethod),
		"metadata": pi.Metadata, "created": obj["created"], "livemode": false,
	})
	if !succeeded {
		ch["failure_code"] = nilIfEmpty(pi.LastPaymentError)
	}
	obj["latest_charge"] = ch
	return json.Marshal(obj)
}
