package billing_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
	"github.com/cartflow/cartflow/internal/domain"
)

// btWebhookNow is the verifier's clock in these tests.
var btWebhookNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func btWebhookVerifier() billing.WebhookVerifier {
	return billing.NewBraintreeWebhookVerifier(btPublicKey, btPrivateKey, func() time.Time { return btWebhookNow })
}

// btNotificationXML is a notification as Braintree sends it, with the subject's XML.
func btNotificationXML(kind string, at time.Time, subject string) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<notification>
  <timestamp type="datetime">%s</timestamp>
  <kind>%s</kind>
  <subject>%s</subject>
</notification>
`, at.UTC().Format(time.RFC3339), kind, subject)
}

const btSettledSubject = `<transaction>
  <id>tx42</id>
  <status>settled</status>
  <type>sale</type>
  <currency-iso-code>USD</currency-iso-code>
  <amount>25.00</amount>
  <order-id>` + btOrderID + `/0123456789abcdef0123456789abcdef</order-id>
</transaction>`

const btDisputeSubject = `<dispute>
  <amount>250.00</amount>
  <amount-disputed>250.0</amount-disputed>
  <currency-iso-code>EUR</currency-iso-code>
  <kind>chargeback</kind>
  <status>open</status>
  <reason>fraud</reason>
  <id>dp7</id>
  <transaction>
    <id>tx42</id>
    <amount>250.00</amount>
    <order-id>` + btOrderID + `/0123456789abcdef0123456789abcdef</order-id>
  </transaction>
</dispute>`

// btForm is the form body Braintree posts.
func btForm(signature, payload string) []byte {
	v := url.Values{}
	if signature != "" {
		v.Set("bt_signature", signature)
	}
	if payload != "" {
		v.Set("bt_payload", payload)
	}
	return []byte(v.Encode())
}

func btFormHeader() http.Header {
	return http.Header{"Content-Type": []string{"application/x-www-form-urlencoded"}}
}

func TestBraintreeWebhookParsesEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind, subject string
		want          domain.WebhookEvent
	}{
		{"transaction_settled", btSettledSubject, domain.WebhookEvent{Type: domain.EventPaymentSucceeded,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 2500, Currency: "usd"}},
		{"transaction_settlement_declined", strings.Replace(btSettledSubject, "</id>",
			"</id>\n  <processor-settlement-response-code>4001</processor-settlement-response-code>", 1),
			domain.WebhookEvent{Type: domain.EventPaymentFailed, PaymentRef: "tx42", OrderID: btOrderID, Amount: 2500, Currency: "usd", Reason: "4001"}},
		{"dispute_opened", btDisputeSubject, domain.WebhookEvent{Type: domain.EventDisputeOpened,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 25000, Currency: "eur", Reason: "fraud"}},
		{"dispute_won", btDisputeSubject, domain.WebhookEvent{Type: domain.EventDisputeClosed,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 25000, Currency: "eur", Reason: "won"}},
		{"dispute_lost", btDisputeSubject, domain.WebhookEvent{Type: domain.EventDisputeClosed,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 25000, Currency: "eur", Reason: "lost"}},
		{"dispute_auto_accepted", btDisputeSubject, domain.WebhookEvent{Type: domain.EventDisputeClosed,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 25000, Currency: "eur", Reason: "accepted"}},
		{"dispute_under_review", btDisputeSubject, domain.WebhookEvent{Type: domain.EventOther,
			PaymentRef: "tx42", OrderID: btOrderID, Amount: 25000, Currency: "eur", Reason: "fraud"}},
		{"check", `<check type="boolean">true</check>`, domain.WebhookEvent{Type: domain.EventOther}},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, btNotificationXML(tc.kind, btWebhookNow.Add(-time.Minute), tc.subject))
			got, err := btWebhookVerifier().Verify(t.Context(), btFormHeader(), btForm(signature, payload))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(got.ID) != 64 || strings.Trim(got.ID, "0123456789abcdef") != "" {
				t.Errorf("ID = %q, want a hex SHA-256", got.ID)
			}
			want := tc.want
			want.Provider, want.ProviderType, want.ID = billing.ProviderBraintree, tc.kind, got.ID
			if !reflect.DeepEqual(got, want) {
				t.Errorf("event = %+v\nwant    %+v", got, want)
			}
		})
	}
}

// Braintree sends one notification again until it is acknowledged; every copy is the same event.
func TestBraintreeWebhookIDIsStablePerNotification(t *testing.T) {
	t.Parallel()
	v := btWebhookVerifier()
	xml := btNotificationXML("transaction_settled", btWebhookNow.Add(-2*time.Hour), btSettledSubject)
	signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, xml)
	first, err := v.Verify(t.Context(), btFormHeader(), btForm(signature, payload))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	again, err := v.Verify(t.Context(), btFormHeader(), btForm(signature, payload))
	if err != nil || again.ID != first.ID {
		t.Errorf("resent notification: ID %q (%v), want %q", again.ID, err, first.ID)
	}
	// The same notification without line breaks in its base64 is still the same event.
	flat := strings.ReplaceAll(payload, "\n", "")
	if unwrapped, err := v.Verify(t.Context(), btFormHeader(), btForm(btPublicKey+"|"+btMACOf(flat), flat)); err != nil || unwrapped.ID != first.ID {
		t.Errorf("unwrapped payload: ID %q (%v), want %q", unwrapped.ID, err, first.ID)
	}
	other := btNotificationXML("transaction_settled", btWebhookNow.Add(-time.Hour), btSettledSubject)
	signature, payload = braintreefake.Sign(btPublicKey, btPrivateKey, other)
	second, err := v.Verify(t.Context(), btFormHeader(), btForm(signature, payload))
	if err != nil || second.ID == first.ID {
		t.Errorf("another notification: ID %q (%v), want one different from %q", second.ID, err, first.ID)
	}
}

// btMACOf is Braintree's signature of an encoded payload, computed here independently of the
// package: hex HMAC-SHA1 keyed with the SHA-1 digest of the private key.
func btMACOf(encoded string) string {
	key := sha1.Sum([]byte(btPrivateKey))
	mac := hmac.New(sha1.New, key[:])
	mac.Write([]byte(encoded))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestBraintreeWebhookSignMatchesTheScheme(t *testing.T) {
	t.Parallel()
	xml := btNotificationXML("check", btWebhookNow, `<check type="boolean">true</check>`)
	signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, xml)
	if signature != btPublicKey+"|"+btMACOf(payload) {
		t.Errorf("signature %q is not public_key|HMAC-SHA1(SHA1(private_key), payload)", signature)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(payload, "\n"), "\n") {
		if len(line) > 60 {
			t.Errorf("payload line of %d characters, want base64 wrapped at 60", len(line))
		}
	}
	decoded, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || string(decoded) != string(xml) {
		t.Errorf("payload does not decode to the notification: %v", err)
	}
}

func TestBraintreeWebhookRejects(t *testing.T) {
	t.Parallel()
	xml := btNotificationXML("transaction_settled", btWebhookNow.Add(-time.Minute), btSettledSubject)
	signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, xml)
	otherSignature, _ := braintreefake.Sign(btPublicKey, "another-private-key", xml)
	otherKeyOnly, _ := braintreefake.Sign("another-public-key", btPrivateKey, xml)
	stale := func(at time.Time) (string, string) {
		return braintreefake.Sign(btPublicKey, btPrivateKey, btNotificationXML("transaction_settled", at, btSettledSubject))
	}
	staleSig, stalePayload := stale(btWebhookNow.Add(-26 * time.Hour))
	futureSig, futurePayload := stale(btWebhookNow.Add(10 * time.Minute))
	// Tampering: one base64 character of the payload changed, the signature kept.
	tampered := []byte(payload)
	if tampered[10] == 'A' {
		tampered[10] = 'B'
	} else {
		tampered[10] = 'A'
	}
	// Characters outside base64 are refused before the signature is checked, so the signature
	// here is right for the altered payload.
	illegal := strings.Replace(payload, "\n", "\r\n", 1)
	illegalSig := btPublicKey + "|" + btMACOf(illegal)
	notXML, notXMLPayload := braintreefake.Sign(btPublicKey, btPrivateKey, []byte("not a notification"))

	tests := []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"wrong secret", btFormHeader(), btForm(otherSignature, payload)},
		{"no pair for our public key", btFormHeader(), btForm(otherKeyOnly, payload)},
		{"tampered payload", btFormHeader(), btForm(signature, string(tampered))},
		{"stale timestamp", btFormHeader(), btForm(staleSig, stalePayload)},
		{"timestamp in the future", btFormHeader(), btForm(futureSig, futurePayload)},
		{"missing bt_signature", btFormHeader(), btForm("", payload)},
		{"missing bt_payload", btFormHeader(), btForm(signature, "")},
		{"illegal characters", btFormHeader(), btForm(illegalSig, illegal)},
		{"signature without a pair separator", btFormHeader(), btForm(strings.TrimPrefix(signature, btPublicKey+"|"), payload)},
		{"not a notification", btFormHeader(), btForm(notXML, notXMLPayload)},
		{"json content type", http.Header{"Content-Type": []string{"application/json"}}, btForm(signature, payload)},
		{"empty body", btFormHeader(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := btWebhookVerifier().Verify(t.Context(), tc.header, tc.body)
			if !errors.Is(err, billing.ErrBadSignature) {
				t.Fatalf("Verify error = %v, want ErrBadSignature", err)
			}
			if strings.Contains(err.Error(), btPrivateKey) {
				t.Errorf("error %q reveals the private key", err)
			}
		})
	}
	t.Run("illegal characters are named", func(t *testing.T) {
		t.Parallel()
		_, err := btWebhookVerifier().Verify(t.Context(), btFormHeader(), btForm(illegalSig, illegal))
		if err == nil || !strings.Contains(err.Error(), "illegal characters") {
			t.Errorf("Verify error = %v, want the illegal-characters check", err)
		}
	})
}

func TestBraintreeWebhookAcceptsAnyOfSeveralPairs(t *testing.T) {
	t.Parallel()
	xml := btNotificationXML("dispute_opened", btWebhookNow, btDisputeSubject)
	signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, xml)
	rotated, _ := braintreefake.Sign("old-public-key", "old-private-key", xml)
	got, err := btWebhookVerifier().Verify(t.Context(), http.Header{}, btForm(rotated+"&"+signature, payload))
	if err != nil || got.Type != domain.EventDisputeOpened {
		t.Fatalf("Verify with two pairs = %+v, %v", got, err)
	}
	// Braintree's SDKs also accept the MAC of the payload with a trailing newline.
	trimmed := strings.TrimSuffix(payload, "\n")
	if _, err := btWebhookVerifier().Verify(t.Context(), btFormHeader(), btForm(signature, trimmed)); err != nil {
		t.Errorf("payload signed with its trailing newline, sent without: %v", err)
	}
}

// A resend hours later, within Braintree's 24-hour retry window, is still accepted.
func TestBraintreeWebhookAcceptsResendsWithinADay(t *testing.T) {
	t.Parallel()
	signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey,
		btNotificationXML("transaction_settled", btWebhookNow.Add(-23*time.Hour), btSettledSubject))
	if _, err := btWebhookVerifier().Verify(t.Context(), btFormHeader(), btForm(signature, payload)); err != nil {
		t.Errorf("Verify of a 23-hour-old resend: %v", err)
	}
}
