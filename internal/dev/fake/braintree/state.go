package braintree

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// Braintree's PaymentStatus values that the double uses.
const (
	statusAuthorized             = "AUTHORIZED"
	statusSubmittedForSettlement = "SUBMITTED_FOR_SETTLEMENT"
	statusSettling               = "SETTLING"
	statusSettled                = "SETTLED"
	statusSettlementPending      = "SETTLEMENT_PENDING"
	statusSettlementDeclined     = "SETTLEMENT_DECLINED"
	statusVoided                 = "VOIDED"
	statusProcessorDeclined      = "PROCESSOR_DECLINED"
	statusGatewayRejected        = "GATEWAY_REJECTED"
	statusFailed                 = "FAILED"
)

// eventTypes are the GraphQL types of the status events, by status.
var eventTypes = map[string]string{
	statusAuthorized:             "AuthorizedEvent",
	statusSubmittedForSettlement: "SubmittedForSettlementEvent",
	statusSettling:               "SettlingEvent",
	statusSettled:                "SettledEvent",
	statusSettlementPending:      "SettlementPendingEvent",
	statusSettlementDeclined:     "SettlementDeclinedEvent",
	statusVoided:                 "VoidedEvent",
	statusProcessorDeclined:      "ProcessorDeclinedEvent",
	statusGatewayRejected:        "GatewayRejectedEvent",
	statusFailed:                 "FailedEvent",
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// event is one entry of a transaction's status history.
type event struct {
	Status                 string
	At                     time.Time
	DeclineType            string
	ProcessorCode          string
	ProcessorText          string
	GatewayRejectionReason string
}

// transaction is a sale the double holds; every change happens under Server.mu.
type transaction struct {
	id, legacyID, orderID, status, amount, currency, merchantAccountID string
	// createdAt has Braintree's microsecond precision, so that a search by creation time
	// splits transactions made within one second.
	createdAt time.Time
	// changedAt is when the transaction or one of its refunds last changed, for the search lag.
	changedAt time.Time
	history   []event // newest first, as Braintree lists it
	refunds   []*refund
	dispute   *dispute
}

// timestampLayout is Braintree's Timestamp scalar: ISO 8601 with microseconds, in UTC.
const timestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// refund is a refund of a transaction; Braintree models it as a transaction of its own.
type refund struct {
	id, legacyID, orderID, status, amount string
	tx                                    *transaction
	createdAt                             time.Time
}

// dispute is a chargeback on a transaction, opened and decided by webhooks the tests send.
type dispute struct {
	id, status, reason, amount string
	receivedAt                 time.Time
}

// push moves the transaction to the event's status.
func (tx *transaction) push(e event) {
	if e.At.IsZero() {
		e.At = now()
	}
	tx.status = e.Status
	tx.history = append([]event{e}, tx.history...)
	tx.changedAt = time.Now()
}

// refunded is what the transaction's refunds return, in units of 10^-digits.
func (tx *transaction) refunded(digits int) int64 {
	var sum int64
	for _, r := range tx.refunds {
		if r.status != statusVoided && r.status != statusFailed {
			sum += units(r.amount, digits)
		}
	}
	return sum
}

func money(amount, currency string) map[string]any {
	return map[string]any{"value": amount, "currencyCode": currency}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// json is the transaction as GraphQL returns it; only its type name when the query selected
// no fields of Transaction.
func (tx *transaction) json(full bool) map[string]any {
	out := map[string]any{"__typename": "Transaction"}
	if !full {
		return out
	}
	history := make([]any, len(tx.history))
	for i, e := range tx.history {
		h := map[string]any{"__typename": eventTypes[e.Status], "status": e.Status,
			"timestamp": e.At.Format(time.RFC3339), "amount": money(tx.amount, tx.currency)}
		processor := map[string]any{"legacyCode": e.ProcessorCode, "message": e.ProcessorText}
		switch e.Status {
		case statusProcessorDeclined:
			h["declineType"], h["processorResponse"] = e.DeclineType, processor
		case statusFailed, statusSettlementDeclined:
			h["processorResponse"] = processor
		case statusGatewayRejected:
			h["gatewayRejectionReason"], h["duplicateOf"] = e.GatewayRejectionReason, nil
		}
		history[i] = h
	}
	refunds := make([]any, len(tx.refunds))
	for i, r := range tx.refunds {
		refunds[i] = r.json(true)
	}
	disputes := []any{}
	if d := tx.dispute; d != nil {
		disputes = append(disputes, map[string]any{"__typename": "Dispute", "id": globalID("dispute", d.id), "legacyId": d.id,
			"status": strings.ToUpper(d.status), "amountDisputed": money(d.amount, tx.currency)})
	}
	out["id"], out["legacyId"], out["orderId"], out["status"] = tx.id, tx.legacyID, nullable(tx.orderID), tx.status
	out["amount"], out["merchantAccountId"] = money(tx.amount, tx.currency), nullable(tx.merchantAccountID)
	out["createdAt"], out["statusHistory"], out["refunds"], out["disputes"] = tx.createdAt.Format(timestampLayout), history, refunds, disputes
	return out
}

// json is the refund as GraphQL returns it; only its type name when the query selected no
// fields of Refund.
func (r *refund) json(full bool) map[string]any {
	out := map[string]any{"__typename": "Refund"}
	if !full {
		return out
	}
	out["id"], out["legacyId"], out["orderId"], out["status"] = r.id, r.legacyID, nullable(r.orderID), r.status
	out["amount"], out["createdAt"] = money(r.amount, r.tx.currency), r.createdAt.Format(time.RFC3339)
	out["refundedTransaction"] = map[string]any{"__typename": "Transaction", "id": r.tx.id, "legacyId": r.tx.legacyID}
	return out
}

// globalID is a GraphQL id: Braintree's are the unpadded base64 of the type and the legacy id.
func globalID(prefix, legacyID string) string {
	return base64.RawStdEncoding.EncodeToString([]byte(prefix + "_" + legacyID))
}

// legacyOf returns the legacy id inside a global id of the given prefix, or "".
func legacyOf(id, prefix string) string {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(id, "="))
	if err != nil {
		return ""
	}
	legacy, ok := strings.CutPrefix(string(raw), prefix+"_")
	if !ok {
		return ""
	}
	return legacy
}

func (s *Server) txByGlobalID(id string) *transaction {
	if legacy := legacyOf(id, "transaction"); legacy != "" {
		return s.byLegacyID[legacy]
	}
	return nil
}

func (s *Server) refundByGlobalID(id string) *refund {
	if legacy := legacyOf(id, "refund"); legacy != "" {
		return s.refundsByID[legacy]
	}
	return nil
}

// txByAnyID finds a transaction by global or legacy id: Braintree's mutations take either.
func (s *Server) txByAnyID(id string) *transaction {
	if tx := s.byLegacyID[id]; tx != nil {
		return tx
	}
	return s.txByGlobalID(id)
}

// newLegacyID returns an id that no transaction or refund has: eight random characters, like
// Braintree's, so that ids from a restarted double do not collide with ids kept in Postgres.
func (s *Server) newLegacyID() string {
	for {
		id := newID(8)
		if s.byLegacyID[id] == nil && s.refundsByID[id] == nil {
			return id
		}
	}
}

func (s *Server) newTransaction(amount, orderID, merchantAccountID string) *transaction {
	at := time.Now()
	tx := &transaction{legacyID: s.newLegacyID(), orderID: orderID, amount: amount, currency: s.currency,
		merchantAccountID: merchantAccountID, createdAt: at.UTC().Truncate(time.Microsecond), changedAt: at}
	tx.id = globalID("transaction", tx.legacyID)
	s.txs = append(s.txs, tx)
	s.byLegacyID[tx.legacyID] = tx
	return tx
}

// Transaction is a snapshot of a transaction the double holds.
type Transaction struct {
	// ID is the GraphQL global id; LegacyID the id that webhooks, the Control Panel and
	// cartflow's orders use.
	ID       string `json:"id"`
	LegacyID string `json:"legacy_id"`
	OrderID  string `json:"order_id"`
	// Status is Braintree's PaymentStatus, such as SUBMITTED_FOR_SETTLEMENT, SETTLED, VOIDED or
	// PROCESSOR_DECLINED.
	Status string `json:"status"`
	// Amount is Braintree's decimal Amount ("62.00"), in Currency (upper-case ISO 4217).
	Amount            string `json:"amount"`
	Currency          string `json:"currency"`
	MerchantAccountID string `json:"merchant_account_id,omitempty"`
	// ProcessorResponseCode and ProcessorResponseText are the bank's answer to a declined or
	// failed transaction.
	ProcessorResponseCode  string `json:"processor_response_code,omitempty"`
	ProcessorResponseText  string `json:"processor_response_text,omitempty"`
	GatewayRejectionReason string `json:"gateway_rejection_reason,omitempty"`
	// StatusHistory lists the statuses the transaction went through, newest first.
	StatusHistory []string  `json:"status_history"`
	Refunds       []Refund  `json:"refunds"`
	Dispute       *Dispute  `json:"dispute,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Refund is a snapshot of a refund the double holds.
type Refund struct {
	ID       string `json:"id"`
	LegacyID string `json:"legacy_id"`
	// TransactionID is the legacy id of the refunded transaction.
	TransactionID string    `json:"transaction_id"`
	OrderID       string    `json:"order_id"`
	Status        string    `json:"status"`
	Amount        string    `json:"amount"`
	Currency      string    `json:"currency"`
	CreatedAt     time.Time `json:"created_at"`
}

// Dispute is a snapshot of a transaction's dispute.
type Dispute struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	// Amount is the disputed amount, in the transaction's currency.
	Amount     string    `json:"amount"`
	ReceivedAt time.Time `json:"received_at"`
}

func (r *refund) snapshot() Refund {
	return Refund{ID: r.id, LegacyID: r.legacyID, TransactionID: r.tx.legacyID, OrderID: r.orderID, Status: r.status,
		Amount: r.amount, Currency: r.tx.currency, CreatedAt: r.createdAt}
}

func (tx *transaction) snapshot() Transaction {
	out := Transaction{ID: tx.id, LegacyID: tx.legacyID, OrderID: tx.orderID, Status: tx.status, Amount: tx.amount,
		Currency: tx.currency, MerchantAccountID: tx.merchantAccountID, CreatedAt: tx.createdAt, Refunds: []Refund{}}
	for _, e := range tx.history {
		out.StatusHistory = append(out.StatusHistory, e.Status)
		if out.ProcessorResponseCode == "" && e.ProcessorCode != "" {
			out.ProcessorResponseCode, out.ProcessorResponseText = e.ProcessorCode, e.ProcessorText
		}
		if out.GatewayRejectionReason == "" {
			out.GatewayRejectionReason = e.GatewayRejectionReason
		}
	}
	for _, r := range tx.refunds {
		out.Refunds = append(out.Refunds, r.snapshot())
	}
	if d := tx.dispute; d != nil {
		out.Dispute = &Dispute{ID: d.id, Status: d.status, Reason: d.reason, Amount: d.amount, ReceivedAt: d.receivedAt}
	}
	return out
}

// Transactions returns snapshots of every transaction, oldest first.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Map(s.txs, (*transaction).snapshot)
}

// Transaction returns a snapshot of the transaction with this legacy id.
func (s *Server) Transaction(legacyID string) (Transaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.Lookup(s.byLegacyID, legacyID, (*transaction).snapshot)
}

// Refunds returns snapshots of every refund, oldest transaction first.
func (s *Server) Refunds() []Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	return kit.FlatMap(s.txs, func(tx *transaction) []Refund { return kit.Map(tx.refunds, (*refund).snapshot) })
}

// Settle settles a transaction or a refund by legacy id, as Braintree's daily settlement batch
// does; settling one that is settled already changes nothing. Only a settled transaction can be
// refunded rather than voided.
func (s *Server) Settle(legacyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx := s.byLegacyID[legacyID]; tx != nil {
		return s.settle(tx)
	}
	if r := s.refundsByID[legacyID]; r != nil {
		switch r.status {
		case statusSettled:
		case statusSubmittedForSettlement, statusSettling, statusSettlementPending:
			r.status = statusSettled
			r.tx.changedAt = time.Now()
		default:
			return fmt.Errorf("%w: refund %s is %s", ErrInvalidState, legacyID, r.status)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotFound, legacyID)
}

// settle settles tx; the caller holds s.mu.
func (s *Server) settle(tx *transaction) error {
	switch tx.status {
	case statusSettled:
		return nil
	case statusSubmittedForSettlement, statusSettling, statusSettlementPending:
		tx.push(event{Status: statusSettled})
		s.log.Info("braintree settled", "transaction", tx.legacyID)
		return nil
	}
	return fmt.Errorf("%w: transaction %s is %s", ErrInvalidState, tx.legacyID, tx.status)
}

// SettleAll settles every transaction and refund waiting for settlement, as the daily batch
// does, and returns their legacy ids.
func (s *Server) SettleAll() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	settled := []string{}
	for _, tx := range s.txs {
		if tx.status != statusSettled && s.settle(tx) == nil {
			settled = append(settled, tx.legacyID)
		}
		for _, r := range tx.refunds {
			if r.status == statusSubmittedForSettlement {
				r.status = statusSettled
				tx.changedAt = time.Now()
				settled = append(settled, r.legacyID)
			}
		}
	}
	return settled
}
