package billing

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"github.com/cartflow/cartflow/internal/domain"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Braintree's webhook scheme (developer.paypal.com/braintree/docs/guides/webhooks/parse, and the
// parse method of Braintree's server SDKs): the POST body is form-encoded with bt_signature and
// bt_payload. bt_payload is the base64 of an XML <notification>; bt_signature is one or more
// "public_key|hex(HMAC-SHA1(key=SHA1(private_key), bt_payload))" pairs joined by "&", one per
// API key that may verify it.

// Braintree resends a notification every hour for up to 24 hours until it is acknowledged, and
// the resent payload keeps the timestamp it was made with. A notification is therefore accepted
// for 25 hours, so that one missed during an outage still arrives; what stops a replay is not
// the window but the event id, the same for every copy, which the store records once.
const (
	braintreeWebhookMaxAge  = 25 * time.Hour
	braintreeWebhookMaxSkew = 5 * time.Minute
)

// NewBraintreeWebhookVerifier returns the verifier of Braintree webhooks signed for the API key
// pair; now is the clock that the notification's timestamp is checked against (time.Now when nil).
func NewBraintreeWebhookVerifier(publicKey, privateKey string, now func() time.Time) WebhookVerifier {
	if now == nil {
		now = time.Now
	}
	return &braintreeWebhookVerifier{publicKey: publicKey, key: braintreeWebhookKey(privateKey), now: now}
}

type braintreeWebhookVerifier struct {
	publicKey string
	key       []byte
	now       func() time.Time
}

// braintreeWebhookKey is the HMAC key: Braintree signs with the SHA-1 digest of the private key.
func braintreeWebhookKey(privateKey string) []byte {
	sum := sha1.Sum([]byte(privateKey))
	return sum[:]
}

func braintreeWebhookMAC(key []byte, payload string) string {
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(payload))
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks the signature, the payload and its timestamp of one webhook request, and
// parses it. The header only matters for its Content-Type; body is the raw form body.
func (v *braintreeWebhookVerifier) Verify(_ context.Context, header http.Header, body []byte) (domain.WebhookEvent, error) {
	if ct := header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
			return domain.WebhookEvent{}, fmt.Errorf("%w: braintree webhooks are form-encoded, not %q", ErrBadSignature, ct)
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the body is not a form", ErrBadSignature)
	}
	signature, payload := form.Get("bt_signature"), form.Get("bt_payload")
	if signature == "" {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_signature is missing", ErrBadSignature)
	}
	if payload == "" {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_payload is missing", ErrBadSignature)
	}
	// The SDKs' first check: anything but base64 and line breaks means the payload was altered.
	if strings.ContainsFunc(payload, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=' || r == '\n')
	}) {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_payload contains illegal characters", ErrBadSignature)
	}
	if !v.signed(signature, payload) {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_signature does not match bt_payload", ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_payload is not base64", ErrBadSignature)
	}
	var n btNotification
	if err := xml.Unmarshal(raw, &n); err != nil || n.Kind == "" {
		return domain.WebhookEvent{}, fmt.Errorf("%w: bt_payload is not a Braintree notification", ErrBadSignature)
	}
	at, err := time.Parse(time.RFC3339, strings.TrimSpace(n.Timestamp))
	if err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the notification's timestamp %q is not a time", ErrBadSignature, n.Timestamp)
	}
	now := v.now()
	if at.Before(now.Add(-braintreeWebhookMaxAge)) || at.After(now.Add(braintreeWebhookMaxSkew)) {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the notification's timestamp %s is stale", ErrBadSignature, at.UTC().Format(time.RFC3339))
	}
	return storable(body, braintreeEvent(n, payload))
}

// signed reports whether one of the signature's pairs for this public key signs payload. Like
// Braintree's SDKs it also accepts a signature of the payload with a trailing newline, which
// some of Braintree's senders add after signing; the MACs are compared in constant time.
func (v *braintreeWebhookVerifier) signed(signature, payload string) bool {
	ok := false
	for pair := range strings.SplitSeq(signature, "&") {
		publicKey, mac, found := strings.Cut(pair, "|")
		if !found || publicKey != v.publicKey {
			continue
		}
		got := []byte(strings.ToLower(mac))
		for _, p := range []string{payload, payload + "\n"} {
			if hmac.Equal(got, []byte(braintreeWebhookMAC(v.key, p))) {
				ok = true
			}
		}
	}
	return ok
}

// btNotification is the part of a Braintree notification that cartflow reads.
type btNotification struct {
	XMLName   xml.Name `xml:"notification"`
	Kind      string   `xml:"kind"`
	Timestamp string   `xml:"timestamp"`
	Subject   struct {
		Transaction *btXMLTransaction `xml:"transaction"`
		Dispute     *struct {
			ID             string           `xml:"id"`
			Amount         string           `xml:"amount"`
			AmountDisputed string           `xml:"amount-disputed"`
			Currency       string           `xml:"currency-iso-code"`
			Reason         string           `xml:"reason"`
			Transaction    btXMLTransaction `xml:"transaction"`
		} `xml:"dispute"`
	} `xml:"subject"`
}

type btXMLTransaction struct {
	ID       string `xml:"id"`
	Amount   string `xml:"amount"`
	Currency string `xml:"currency-iso-code"`
	OrderID  string `xml:"order-id"`
	// SettlementCode is the processor's reason for a settlement_declined transaction.
	SettlementCode string `xml:"processor-settlement-response-code"`
}

// braintreeWebhookTypes maps the notification kinds that cartflow acts on. Braintree sends no
// notification for refunds of card transactions, so none maps to domain.EventRefunded.
var braintreeWebhookTypes = map[string]domain.EventType{
	"transaction_settled":             domain.EventPaymentSucceeded,
	"transaction_settlement_declined": domain.EventPaymentFailed,
	"dispute_opened":                  domain.EventDisputeOpened,
	"dispute_won":                     domain.EventDisputeClosed,
	"dispute_lost":                    domain.EventDisputeClosed,
	"dispute_accepted":                domain.EventDisputeClosed,
	"dispute_auto_accepted":           domain.EventDisputeClosed,
	"dispute_expired":                 domain.EventDisputeClosed,
}

// braintreeEvent turns a verified notification into a WebhookEvent.
func braintreeEvent(n btNotification, payload string) domain.WebhookEvent {
	e := domain.WebhookEvent{
		Provider: ProviderBraintree,
		// Braintree notifications carry no id of their own. The payload is the identity instead:
		// every resend of one notification carries the same payload, so it becomes the same event,
		// while two notifications differ at least in kind, subject or timestamp. Line breaks are
		// left out so that the id does not depend on how the base64 was wrapped.
		ID:           braintreeEventID(payload),
		Type:         braintreeWebhookTypes[n.Kind],
		ProviderType: n.Kind,
	}
	if e.Type == "" {
		e.Type = domain.EventOther
	}
	var amount, currency string
	switch {
	case n.Subject.Dispute != nil:
		d := n.Subject.Dispute
		e.PaymentRef = d.Transaction.ID
		e.OrderID = braintreeOrderPart(d.Transaction.OrderID)
		amount, currency = d.AmountDisputed, d.Currency
		if amount == "" {
			amount = d.Amount
		}
		if e.Type == domain.EventDisputeClosed {
			// The store records a closed dispute's outcome from Reason.
			e.Reason = strings.TrimPrefix(strings.TrimPrefix(n.Kind, "dispute_"), "auto_")
		} else {
			e.Reason = d.Reason
		}
	case n.Subject.Transaction != nil:
		t := n.Subject.Transaction
		e.PaymentRef = t.ID
		e.OrderID = braintreeOrderPart(t.OrderID)
		amount, currency = t.Amount, t.Currency
		e.Reason = t.SettlementCode
	}
	// An amount this code cannot read is left out rather than refusing an authentic event,
	// which Braintree would resend for a day; the stored payload still holds it.
	if minor, err := braintreeParseAmount(amount, currency); err == nil && currency != "" {
		e.Amount, e.Currency = minor, strings.ToLower(currency)
	}
	return e
}

func braintreeEventID(payload string) string {
	sum := sha256.Sum256([]byte(strings.ReplaceAll(payload, "\n", "")))
	return hex.EncodeToString(sum[:])
}
