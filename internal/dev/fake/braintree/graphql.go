package braintree

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The double reads just enough GraphQL to know what is asked: the operation (query or mutation,
// its name) and its first root field with that field's arguments. Arguments are taken from the
// variables they are bound to, or from scalar literals; object literals written inline are
// refused, since the gateway always passes inputs as variables, the way Braintree's examples do.
// Answers always carry every field the double knows of an object, whatever was selected, except
// that node and reverseTransaction honour the type conditions (… on Transaction, … on Refund),
// because a client that selects the wrong type must see an empty object, as at Braintree.

// operation is a parsed GraphQL request.
type operation struct {
	kind  string // query or mutation
	name  string
	field string
	args  map[string]any
	query string
}

var (
	commentPattern = regexp.MustCompile(`#[^\n]*`)
	// operationPattern reads `query|mutation Name($var: Type!) { alias: field(args)`.
	operationPattern = regexp.MustCompile(`^(query|mutation)\b\s*(\w*)\s*(?:\([^)]*\))?\s*(?:@\w+\s*)*\{\s*(?:\w+\s*:\s*)?(\w+)\s*(\([^)]*\))?`)
	// shorthandPattern reads a query written as a bare selection set: `{ field(args)`.
	shorthandPattern = regexp.MustCompile(`^\{\s*(?:\w+\s*:\s*)?(\w+)\s*(\([^)]*\))?`)
	operationStart   = regexp.MustCompile(`(?m)^\s*(query|mutation)\b`)
	argumentPattern  = regexp.MustCompile(`(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|\w+)`)
)

// rootFields are the root fields the double answers, by operation type.
var rootFields = map[string]map[string]bool{
	"query": {"ping": true, "transactions": true, "idsFromLegacyIds": true, "node": true},
	"mutation": {"chargePaymentMethod": true, "authorizePaymentMethod": true, "captureTransaction": true,
		"refundTransaction": true, "reverseTransaction": true},
}

// parseOperation finds the operation to run (the one named operationName, else the first) and
// its root field. A request it cannot run comes back with a GraphQL error and what could be read.
func parseOperation(query, operationName string, variables map[string]any) (operation, *gqlError) {
	op := operation{query: query}
	doc := commentPattern.ReplaceAllString(query, "")
	start := -1
	if operationName != "" {
		loc := regexp.MustCompile(`(?m)^\s*(query|mutation)\s+` + regexp.QuoteMeta(operationName) + `\b`).FindStringIndex(doc)
		if loc == nil {
			return op, &gqlError{Message: fmt.Sprintf("Unknown operation named %q.", operationName)}
		}
		start = loc[0]
	} else if loc := operationStart.FindStringIndex(doc); loc != nil {
		start = loc[0]
	}
	var args string
	if start >= 0 {
		m := operationPattern.FindStringSubmatch(strings.TrimSpace(doc[start:]))
		if m == nil {
			return op, &gqlError{Message: "The document could not be parsed as a GraphQL operation."}
		}
		op.kind, op.name, op.field, args = m[1], m[2], m[3], m[4]
	} else {
		m := shorthandPattern.FindStringSubmatch(strings.TrimSpace(doc))
		if m == nil {
			return op, &gqlError{Message: "The document could not be parsed as a GraphQL operation."}
		}
		op.kind, op.field, args = "query", m[1], m[2]
	}
	if !rootFields[op.kind][op.field] {
		typ := "Query"
		if op.kind == "mutation" {
			typ = "Mutation"
		}
		return op, &gqlError{Message: fmt.Sprintf("Field '%s' doesn't exist on type '%s'.", op.field, typ), Path: op.field}
	}
	op.args = map[string]any{}
	inner := strings.TrimSuffix(strings.TrimPrefix(args, "("), ")")
	if strings.ContainsAny(inner, "{[") {
		return op, &gqlError{Message: "The local Braintree double reads object and list arguments from variables only.", Path: op.field}
	}
	for _, m := range argumentPattern.FindAllStringSubmatch(inner, -1) {
		name, value := m[1], m[2]
		switch {
		case strings.HasPrefix(value, "$"):
			v, ok := variables[value[1:]]
			if !ok {
				return op, &gqlError{Message: fmt.Sprintf("Variable '%s' is not defined.", value[1:]), Path: op.field}
			}
			op.args[name] = v
		case strings.HasPrefix(value, `"`):
			s, err := strconv.Unquote(value)
			if err != nil {
				return op, &gqlError{Message: fmt.Sprintf("Argument '%s' is not a valid string.", name), Path: op.field}
			}
			op.args[name] = s
		case value == "true" || value == "false":
			op.args[name] = value == "true"
		case value == "null":
			op.args[name] = nil
		default:
			if n, err := strconv.ParseFloat(value, 64); err == nil {
				op.args[name] = n // as encoding/json decodes numbers in variables
			} else {
				op.args[name] = value // an enum value
			}
		}
	}
	return op, nil
}

// selects reports whether the document has a type condition on typ (`... on Refund`).
func selects(query, typ string) bool {
	return regexp.MustCompile(`\.\.\.\s*on\s+` + typ + `\b`).MatchString(query)
}

// str reads a string at a path of nested objects; "" when absent or not a string.
func str(v any, path ...string) string {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// obj reads an object at a path of nested objects; nil when absent or not an object.
func obj(v any, path ...string) map[string]any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	m, _ := v.(map[string]any)
	return m
}

// execute runs one parsed operation against the double's state.
func (s *Server) execute(op operation, staleSearch bool) (map[string]any, []gqlError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var value any
	var errs []gqlError
	switch op.field {
	case "ping":
		value = "pong"
	case "chargePaymentMethod":
		value, errs = s.charge(op.args, true)
	case "authorizePaymentMethod":
		value, errs = s.charge(op.args, false)
	case "captureTransaction":
		value, errs = s.capture(op.args)
	case "transactions":
		value, errs = s.search(op.args, staleSearch)
	case "idsFromLegacyIds":
		value, errs = s.idsFromLegacyIDs(op.args)
	case "node":
		value, errs = s.node(op)
	case "refundTransaction":
		value, errs = s.refundTransaction(op.args)
	case "reverseTransaction":
		value, errs = s.reverseTransaction(op)
	}
	for i := range errs {
		errs[i].Path = op.field
	}
	return map[string]any{op.field: value}, errs
}

// Validation errors, with Braintree's legacy codes.
var (
	errAmountRequired    = gqlError{Class: "VALIDATION", Code: "81502", Message: "Amount is required."}
	errAmountFormat      = gqlError{Class: "VALIDATION", Code: "81503", Message: "Amount is an invalid format."}
	errAmountNotPositive = gqlError{Class: "VALIDATION", Code: "81531", Message: "Amount must be greater than zero."}
	errNoPaymentMethod   = gqlError{Class: "VALIDATION", Code: "91508", Message: "Cannot determine payment method."}
	errNotFound          = gqlError{Class: "NOT_FOUND", Message: "An object with this ID was not found."}
	errRefundUnsettled   = gqlError{Class: "VALIDATION", Code: "91506", Message: "Cannot refund transaction unless it is settled."}
	errRefundedInFull    = gqlError{Class: "VALIDATION", Code: "91512", Message: "Transaction has already been fully refunded."}
	errRefundTooLarge    = gqlError{Class: "VALIDATION", Code: "91521", Message: "Refund amount is too large."}
	errCannotVoid        = gqlError{Class: "VALIDATION", Code: "91504", Message: "Transaction can only be voided if status is authorized, submitted_for_settlement, or - for PayPal - settlement_pending."}
	errCannotCapture     = gqlError{Class: "VALIDATION", Code: "91507", Message: "Cannot submit for settlement unless status is authorized."}
	errCaptureTooLarge   = gqlError{Class: "VALIDATION", Code: "91522", Message: "Settlement amount is too large."}
)

// amountPattern is Braintree's Amount scalar: a whole number, or one with two or three decimals.
var amountPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]{2,3})?$`)

// charge is chargePaymentMethod, which authorizes and submits for settlement at once, or, when
// capture is false, authorizePaymentMethod, which leaves a successful transaction AUTHORIZED
// until captureTransaction submits it for settlement.
func (s *Server) charge(args map[string]any, capture bool) (any, []gqlError) {
	nonce := str(args, "input", "paymentMethodId")
	amount := str(args, "input", "transaction", "amount")
	switch {
	case nonce == "":
		return nil, []gqlError{errNoPaymentMethod}
	case amount == "":
		return nil, []gqlError{errAmountRequired}
	case !amountPattern.MatchString(amount):
		return nil, []gqlError{errAmountFormat}
	case strings.Trim(amount, "0.") == "":
		return nil, []gqlError{errAmountNotPositive}
	}
	out := nonceOutcome(nonce)
	if out.refusal != nil {
		return nil, []gqlError{*out.refusal}
	}
	if !out.reusable {
		if s.consumed[nonce] {
			return nil, []gqlError{{Class: "VALIDATION", Code: "91564", Message: "Cannot use a payment_method_nonce more than once."}}
		}
		s.consumed[nonce] = true
	}
	tx := s.newTransaction(amount, str(args, "input", "transaction", "orderId"), str(args, "input", "transaction", "merchantAccountId"))
	switch out.status {
	case "":
		tx.push(event{Status: statusAuthorized})
		if capture {
			tx.push(event{Status: statusSubmittedForSettlement})
		}
	default:
		tx.push(event{Status: out.status, DeclineType: out.declineType, ProcessorCode: out.code,
			ProcessorText: out.text, GatewayRejectionReason: out.rejection})
	}
	s.log.Info("braintree transaction", "transaction", tx.legacyID, "status", tx.status, "amount", tx.amount, "currency", tx.currency)
	return map[string]any{"transaction": tx.json(true)}, nil
}

// capture is captureTransaction: it submits an AUTHORIZED transaction for settlement, for the
// authorized amount or, as Braintree allows, a smaller one that then becomes the transaction's
// amount; a larger one is refused (91522), and so is a transaction in any other status (91507).
func (s *Server) capture(args map[string]any) (any, []gqlError) {
	tx := s.txByAnyID(str(args, "input", "transactionId"))
	if tx == nil {
		return nil, []gqlError{errNotFound}
	}
	if tx.status != statusAuthorized {
		return nil, []gqlError{errCannotCapture}
	}
	amount := str(args, "input", "transaction", "amount")
	if amount == "" {
		amount = str(args, "input", "amount") // the deprecated field, still accepted
	}
	if amount != "" {
		digits := decimals(tx.amount)
		want, err := parseUnits(amount, digits)
		switch {
		case err != nil:
			return nil, []gqlError{*err}
		case want <= 0:
			return nil, []gqlError{errAmountNotPositive}
		case want > units(tx.amount, digits):
			return nil, []gqlError{errCaptureTooLarge}
		}
		tx.amount = formatUnits(want, digits)
	}
	tx.push(event{Status: statusSubmittedForSettlement})
	s.log.Info("braintree capture", "transaction", tx.legacyID, "amount", tx.amount, "currency", tx.currency)
	return map[string]any{"transaction": tx.json(true)}, nil
}

// parseUnits reads a client's amount as units of 10^-digits, refusing one that is malformed or
// has more decimals than the currency, such as 10.005 of a 2-decimal currency.
func parseUnits(amount string, digits int) (int64, *gqlError) {
	if !amountPattern.MatchString(amount) {
		return 0, &errAmountFormat
	}
	if d := decimals(amount); d > digits && strings.Trim(amount[len(amount)-(d-digits):], "0") != "" {
		return 0, &errAmountFormat
	}
	return units(amount, digits), nil
}

// searchCriteria are the TransactionSearchInput fields the double can search by.
var searchCriteria = map[string]bool{"orderId": true, "id": true, "status": true, "createdAt": true}

// search is the transactions query. It supports the criteria the gateway and people use: orderId
// (is, isNot, startsWith, endsWith, contains), id (is, in; global or legacy ids), status (is, in)
// and createdAt (greaterThanOrEqualTo, lessThanOrEqualTo), oldest first, in pages of first
// edges after the cursor of the previous page. While a search lag is set (SetSearchLag), a
// transaction created or changed less than the lag ago is not found yet, as Braintree's search
// index catches up with writes only after a while; a stale-search fault finds nothing at all.
func (s *Server) search(args map[string]any, stale bool) (any, []gqlError) {
	input := obj(args, "input")
	for key := range input {
		if !searchCriteria[key] {
			return nil, []gqlError{{Message: fmt.Sprintf("The local Braintree double cannot search transactions by %q.", key)}}
		}
	}
	created, err := timeRange(obj(input, "createdAt"))
	if err != nil {
		return nil, []gqlError{*err}
	}
	first := len(s.txs)
	if n, ok := args["first"].(float64); ok && int(n) >= 0 && int(n) < first {
		first = int(n)
	}
	start := 0
	if after := str(args, "after"); after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			return nil, []gqlError{{Message: fmt.Sprintf("The cursor %q is not one this search returned.", after)}}
		}
		start = n + 1
	}
	edges := []any{}
	more, end := false, ""
	if !stale {
		cutoff := time.Now().Add(-s.searchLag)
		for i := start; i < len(s.txs); i++ {
			tx := s.txs[i]
			if s.searchLag > 0 && tx.changedAt.After(cutoff) {
				continue
			}
			if !matchText(obj(input, "orderId"), tx.orderID) || !matchID(obj(input, "id"), tx) ||
				!matchStatus(obj(input, "status"), tx.status) || !created.contains(tx.createdAt) {
				continue
			}
			if len(edges) == first {
				more = true
				break
			}
			end = strconv.Itoa(i)
			edges = append(edges, map[string]any{"cursor": end, "node": tx.json(true)})
		}
	}
	return map[string]any{"edges": edges, "pageInfo": map[string]any{"hasNextPage": more, "hasPreviousPage": false,
		"startCursor": nil, "endCursor": nullable(end)}}, nil
}

// span is a SearchTimestampInput: both bounds inclusive, a zero one open.
type span struct{ from, to time.Time }

func (r span) contains(t time.Time) bool {
	return (r.from.IsZero() || !t.Before(r.from)) && (r.to.IsZero() || !t.After(r.to))
}

// timeRange reads a SearchTimestampInput.
func timeRange(c map[string]any) (span, *gqlError) {
	var r span
	for op, v := range c {
		text, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return r, &gqlError{Message: fmt.Sprintf("Variable 'input' has an invalid value: %q is not an ISO 8601 Timestamp.", text)}
		}
		switch op {
		case "greaterThanOrEqualTo":
			r.from = t
		case "lessThanOrEqualTo":
			r.to = t
		default:
			return r, &gqlError{Message: fmt.Sprintf("The local Braintree double cannot search timestamps by %q.", op)}
		}
	}
	return r, nil
}

func matchText(c map[string]any, v string) bool {
	for op, want := range c {
		w, _ := want.(string)
		var ok bool
		switch op {
		case "is":
			ok = v == w
		case "isNot":
			ok = v != w
		case "startsWith":
			ok = strings.HasPrefix(v, w)
		case "endsWith":
			ok = strings.HasSuffix(v, w)
		case "contains":
			ok = strings.Contains(v, w)
		}
		if !ok {
			return false
		}
	}
	return true
}

func matchID(c map[string]any, tx *transaction) bool {
	if is, ok := c["is"].(string); ok && is != tx.id && is != tx.legacyID {
		return false
	}
	if in, ok := c["in"].([]any); ok && !containsAny(in, tx.id, tx.legacyID) {
		return false
	}
	return true
}

func matchStatus(c map[string]any, status string) bool {
	if is, ok := c["is"].(string); ok && is != status {
		return false
	}
	in, ok := c["in"].([]any)
	return !ok || containsAny(in, status)
}

// containsAny reports whether list holds one of the values.
func containsAny(list []any, values ...string) bool {
	for _, item := range list {
		for _, v := range values {
			if item == v {
				return true
			}
		}
	}
	return false
}

// legacyIDTypes are the LegacyIdType values, with the prefix of the global ids they make.
var legacyIDTypes = map[string]string{
	"TRANSACTION": "transaction", "REFUND": "refund", "DISPUTE": "dispute", "CUSTOMER": "customer",
	"PAYMENT_METHOD": "paymentmethod", "VERIFICATION": "verification",
}

// idsFromLegacyIDs converts legacy ids to global ids. Like Braintree, it does not check that
// the objects exist: the conversion is pure.
func (s *Server) idsFromLegacyIDs(args map[string]any) (any, []gqlError) {
	list, _ := obj(args, "input")["ids"].([]any)
	out := make([]any, 0, len(list))
	for _, item := range list {
		prefix, ok := legacyIDTypes[str(item, "type")]
		legacy := str(item, "legacyId")
		if !ok || legacy == "" {
			return nil, []gqlError{{Message: "Variable 'input' has an invalid value: each id needs a legacyId and a LegacyIdType."}}
		}
		out = append(out, globalID(prefix, legacy))
	}
	return out, nil
}

// node fetches a Transaction or a Refund by global id; the fields come only under a matching
// type condition, as in GraphQL.
func (s *Server) node(op operation) (any, []gqlError) {
	id := str(op.args, "id")
	if tx := s.txByGlobalID(id); tx != nil {
		return tx.json(selects(op.query, "Transaction")), nil
	}
	if r := s.refundByGlobalID(id); r != nil {
		return r.json(selects(op.query, "Refund")), nil
	}
	return nil, []gqlError{errNotFound}
}

// refundTransaction refunds a settled (or settling) transaction, in part or in full.
func (s *Server) refundTransaction(args map[string]any) (any, []gqlError) {
	tx := s.txByAnyID(str(args, "input", "transactionId"))
	if tx == nil {
		return nil, []gqlError{errNotFound}
	}
	if tx.status != statusSettled && tx.status != statusSettling {
		return nil, []gqlError{errRefundUnsettled}
	}
	r, err := s.refund(tx, str(args, "input", "refund", "amount"), str(args, "input", "refund", "orderId"))
	if err != nil {
		return nil, []gqlError{*err}
	}
	return map[string]any{"refund": r.json(true)}, nil
}

// refund adds a refund of amount ("" for whatever remains) to tx, under orderID (the
// transaction's when empty).
func (s *Server) refund(tx *transaction, amount, orderID string) (*refund, *gqlError) {
	digits := decimals(tx.amount)
	remaining := units(tx.amount, digits) - tx.refunded(digits)
	if remaining <= 0 {
		return nil, &errRefundedInFull
	}
	want := remaining
	if amount != "" {
		var err *gqlError
		if want, err = parseUnits(amount, digits); err != nil {
			return nil, err
		}
	}
	switch {
	case want <= 0:
		return nil, &errAmountNotPositive
	case want > remaining:
		return nil, &errRefundTooLarge
	}
	if orderID == "" {
		orderID = tx.orderID
	}
	r := &refund{id: "", legacyID: s.newLegacyID(), orderID: orderID, status: statusSubmittedForSettlement,
		amount: formatUnits(want, digits), tx: tx, createdAt: now()}
	r.id = globalID("refund", r.legacyID)
	tx.refunds = append(tx.refunds, r)
	tx.changedAt = time.Now()
	s.refundsByID[r.legacyID] = r
	s.log.Info("braintree refund", "transaction", tx.legacyID, "refund", r.legacyID, "amount", r.amount)
	return r, nil
}

// reverseTransaction voids a transaction that has not settled, and refunds one that has.
func (s *Server) reverseTransaction(op operation) (any, []gqlError) {
	tx := s.txByAnyID(str(op.args, "input", "transactionId"))
	if tx == nil {
		return nil, []gqlError{errNotFound}
	}
	var reversal map[string]any
	switch tx.status {
	case statusAuthorized, statusSubmittedForSettlement, statusSettlementPending:
		tx.push(event{Status: statusVoided})
		s.log.Info("braintree void", "transaction", tx.legacyID)
		reversal = tx.json(selects(op.query, "Transaction"))
	case statusSettled, statusSettling:
		r, err := s.refund(tx, str(op.args, "input", "amount"), "")
		if err != nil {
			return nil, []gqlError{*err}
		}
		reversal = r.json(selects(op.query, "Refund"))
	default:
		return nil, []gqlError{errCannotVoid}
	}
	return map[string]any{"reversal": reversal}, nil
}

// decimals is the number of digits after the point ("25.00": 2, "2500": 0).
func decimals(amount string) int {
	if i := strings.IndexByte(amount, '.'); i >= 0 {
		return len(amount) - i - 1
	}
	return 0
}

// units reads a well-formed amount as an integer of 10^-digits; decimals beyond digits are dropped.
func units(amount string, digits int) int64 {
	whole, frac, _ := strings.Cut(amount, ".")
	frac = (frac + strings.Repeat("0", digits))[:digits]
	n, _ := strconv.ParseInt(whole+frac, 10, 64)
	return n
}

// formatUnits writes n units of 10^-digits as an amount.
func formatUnits(n int64, digits int) string {
	s := strconv.FormatInt(n, 10)
	if digits == 0 {
		return s
	}
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	return s[:len(s)-digits] + "." + s[len(s)-digits:]
}
