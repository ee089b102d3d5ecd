package braintree

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// Braintree's webhooks are form posts of bt_signature and bt_payload, the payload being the
// base64 of an XML <notification> (developer.paypal.com/braintree/docs/guides/webhooks). The
// double builds the notification from its own state, signs it (sign.go) and posts it, and
// keeps it so that it can be delivered again unchanged: Braintree resends a notification with
// the same payload until it is acknowledged, which receivers must take as one event.

// keyPair is the API key pair that signs notifications.
type keyPair struct{ public, private string }

// newOutbox returns the outbox of the double's notifications. Every post is the same form:
// Braintree's signature covers only the payload, which was signed when the notification was made.
func newOutbox(cfg Config) *kit.Outbox[Notification, keyPair] {
	return kit.NewOutbox(kit.OutboxConfig[Notification, keyPair]{
		Name: "braintreefake", Client: cfg.HTTPClient, Logger: cfg.Logger, NoURL: ErrNoWebhook,
		NotFound: func(id string) error { return fmt.Errorf("%w: notification %s", ErrNotFound, id) },
		Build: func(n Notification, to kit.Target[keyPair]) kit.Post {
			form := url.Values{"bt_signature": {n.Signature}, "bt_payload": {n.Payload}}
			return kit.Post{At: now(), URL: to.URL, ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode())}
		},
		View: func(m kit.Message[Notification]) Notification { m.Event.Deliveries = m.Deliveries; return m.Event },
		LogAttrs: func(n Notification) []any {
			return []any{"notification", n.ID, "kind", n.Kind, "transaction", n.TransactionID}
		},
	})
}

// SetWebhook sets where notifications are posted and the API key pair that signs them.
func (s *Server) SetWebhook(destination, publicKey, privateKey string) {
	s.webhooks.SetTarget(destination, keyPair{public: publicKey, private: privateKey})
}

// WebhookURL is where notifications are posted; empty before SetWebhook.
func (s *Server) WebhookURL() string { return s.webhooks.Target().URL }

// Notification is a webhook notification the double made, and what became of its deliveries.
type Notification struct {
	// ID is the double's own id for the notification, for ResendWebhook; Braintree's carry none.
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	TransactionID string    `json:"transaction_id,omitempty"`
	Timestamp     time.Time `json:"timestamp"`
	// Signature and Payload are the bt_signature and bt_payload form fields, the same for
	// every delivery.
	Signature  string     `json:"bt_signature"`
	Payload    string     `json:"bt_payload"`
	Deliveries []Delivery `json:"deliveries"`
}

// Delivery is one post of a notification.
type Delivery = kit.Delivery

// WebhookKinds lists the notification kinds SendWebhook makes. All but check are about a
// transaction; check, Braintree's test notification, has none.
var WebhookKinds = []string{
	"check",
	"transaction_settled", "transaction_settlement_declined",
	"dispute_opened", "dispute_under_review", "dispute_disputed", "dispute_won", "dispute_lost",
	"dispute_accepted", "dispute_auto_accepted", "dispute_expired",
}

// disputeStatuses are the dispute's status after each dispute notification.
var disputeStatuses = map[string]string{
	"dispute_opened": "open", "dispute_under_review": "under_review", "dispute_disputed": "disputed",
	"dispute_won": "won", "dispute_lost": "lost", "dispute_accepted": "accepted",
	"dispute_auto_accepted": "auto_accepted", "dispute_expired": "expired",
}

// SendWebhook makes a notification of kind about the transaction with legacy id transactionID,
// changes the transaction as the event says (transaction_settled settles it,
// transaction_settlement_declined declines its settlement, dispute_* open or decide its
// dispute), and posts it to the webhook destination. The state changes even when the delivery
// fails, as at Braintree; the returned error then says why, and ResendWebhook tries again.
func (s *Server) SendWebhook(ctx context.Context, kind, transactionID string) (Notification, error) {
	s.mu.Lock()
	target := s.webhooks.Target()
	if target.URL == "" {
		s.mu.Unlock()
		return Notification{}, ErrNoWebhook
	}
	at := now()
	subject, err := s.subject(kind, transactionID, at)
	if err != nil {
		s.mu.Unlock()
		return Notification{}, err
	}
	signature, payload := Sign(target.Key.public, target.Key.private, notificationXML(kind, at, subject))
	n := Notification{ID: "ntf_" + newID(12), Kind: kind, Timestamp: at, Signature: signature, Payload: payload}
	if kind != "check" {
		n.TransactionID = transactionID
	}
	s.webhooks.Add(n.ID, n)
	s.mu.Unlock()
	return s.ResendWebhook(ctx, n.ID)
}

// ResendWebhook posts a notification again, byte for byte, as Braintree's retries do.
func (s *Server) ResendWebhook(ctx context.Context, id string) (Notification, error) {
	return s.webhooks.Send(ctx, id)
}

// Notifications returns copies of the notifications made so far, oldest first.
func (s *Server) Notifications() []Notification { return s.webhooks.Messages() }

// notificationXML is the <notification> document of a webhook: its kind, time and the XML of
// its subject.
func notificationXML(kind string, at time.Time, subject string) []byte {
	return fmt.Appendf(nil, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<notification>\n  <timestamp type=\"datetime\">%s</timestamp>\n  <kind>%s</kind>\n  <subject>\n%s\n  </subject>\n</notification>\n",
		at.Format(time.RFC3339), kind, subject)
}

// subject applies the notification's event to the transaction and returns the XML of the
// notification's subject; the caller holds s.mu.
func (s *Server) subject(kind, transactionID string, at time.Time) (string, error) {
	if kind == "check" {
		return `    <check type="boolean">true</check>`, nil
	}
	if !slices.Contains(WebhookKinds, kind) {
		return "", fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	tx := s.byLegacyID[transactionID]
	if tx == nil {
		return "", fmt.Errorf("%w: transaction %s", ErrNotFound, transactionID)
	}
	switch kind {
	case "transaction_settled":
		if err := s.settle(tx); err != nil {
			return "", err
		}
		return transactionXML(tx, ""), nil
	case "transaction_settlement_declined":
		switch tx.status {
		case statusSubmittedForSettlement, statusSettling, statusSettlementPending:
			tx.push(event{Status: statusSettlementDeclined, ProcessorCode: "4001", ProcessorText: "Settlement Declined"})
		case statusSettlementDeclined:
		default:
			return "", fmt.Errorf("%w: transaction %s is %s, not waiting for settlement", ErrInvalidState, tx.legacyID, tx.status)
		}
		return transactionXML(tx, "\n      <processor-settlement-response-code>4001</processor-settlement-response-code>"+
			"\n      <processor-settlement-response-text>Settlement Declined</processor-settlement-response-text>"), nil
	}
	switch tx.status {
	case statusSubmittedForSettlement, statusSettling, statusSettled, statusSettlementPending:
	default:
		return "", fmt.Errorf("%w: transaction %s is %s and cannot be disputed", ErrInvalidState, tx.legacyID, tx.status)
	}
	if tx.dispute == nil {
		tx.dispute = &dispute{id: s.newLegacyID(), reason: "fraud", amount: tx.amount, receivedAt: at}
	}
	d := tx.dispute
	d.status = disputeStatuses[kind]
	won := formatUnits(0, decimals(tx.amount))
	if d.status == "won" {
		won = d.amount
	}
	return fmt.Sprintf(`    <dispute>
      <id>%s</id>
      <amount>%s</amount>
      <amount-disputed>%s</amount-disputed>
      <amount-won>%s</amount-won>
      <currency-iso-code>%s</currency-iso-code>
      <kind>chargeback</kind>
      <status>%s</status>
      <reason>%s</reason>
      <received-date type="date">%s</received-date>
      <reply-by-date type="date">%s</reply-by-date>
      <transaction>
        <id>%s</id>
        <amount>%s</amount>
        <order-id>%s</order-id>
        <created-at type="datetime">%s</created-at>
      </transaction>
    </dispute>`, escape(d.id), escape(d.amount), escape(d.amount), escape(won), escape(tx.currency), escape(d.status),
		escape(d.reason), d.receivedAt.Format(time.DateOnly), d.receivedAt.AddDate(0, 0, 7).Format(time.DateOnly),
		escape(tx.legacyID), escape(tx.amount), escape(tx.orderID), tx.createdAt.Format(time.RFC3339)), nil
}

// transactionXML is a transaction as webhooks describe it; extra is added inside the element.
func transactionXML(tx *transaction, extra string) string {
	return fmt.Sprintf(`    <transaction>
      <id>%s</id>
      <status>%s</status>
      <type>sale</type>
      <currency-iso-code>%s</currency-iso-code>
      <amount>%s</amount>
      <order-id>%s</order-id>
      <merchant-account-id>%s</merchant-account-id>
      <created-at type="datetime">%s</created-at>
      <updated-at type="datetime">%s</updated-at>%s
    </transaction>`, escape(tx.legacyID), strings.ToLower(tx.status), escape(tx.currency), escape(tx.amount), escape(tx.orderID),
		escape(tx.merchantAccountID), tx.createdAt.Format(time.RFC3339), tx.history[0].At.Format(time.RFC3339), extra)
}

// escape makes text safe inside an XML element; order ids come from clients.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
