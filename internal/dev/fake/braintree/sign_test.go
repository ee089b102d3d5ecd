package braintree

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

// The vectors come from outside this repository, so that the signer is checked against
// Braintree's scheme rather than against the verifier it is meant to test.
func TestSignatureMatchesPublicVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, publicKey, privateKey, payload, want string
	}{{
		// braintree_ruby, braintree_python and braintree_php test WebhookNotification.verify
		// with this challenge: verify signs it with the same Digest.hexdigest that
		// WebhookTesting.sample_notification signs bt_payload with.
		name:      "braintree SDKs' verify challenge",
		publicKey: "integration_public_key", privateKey: "integration_private_key",
		payload: "20f9f8ed05f77439fe955c977e4c8a53",
		want:    "integration_public_key|d9b899556c966b3f06945ec21311865d35df3ce4",
	}, {
		// braintree-elixir's test/webhook_test.exs: a check notification it encodes with
		// Base.encode64, in one line, and the signature its parse returns for it.
		name:      "braintree-elixir's sample notification",
		publicKey: "public_key", privateKey: "private_key",
		payload: base64.StdEncoding.EncodeToString([]byte("<notification>\n  <timestamp type=\"datetime\">2021-06-24T23:41:58Z</timestamp>\n" +
			"  <kind>check</kind>\n  \n  <subject>\n    <check type=\"boolean\">true</check>\n\n  </subject>\n</notification>\n")),
		want: "public_key|4261b2771e7852348af5103d7f98b6148bb9ad1b",
	}} {
		if got := signPayload(tc.publicKey, tc.privateKey, tc.payload); got != tc.want {
			t.Errorf("%s: signPayload = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Braintree's servers and its Ruby SDK's sample notifications wrap bt_payload as Ruby's
// Base64.encode64 does; the first two vectors are that method's documented examples.
func TestPayloadIsWrappedAsRubyEncode64(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Now is the time for all good coders\nto learn Ruby": "Tm93IGlzIHRoZSB0aW1lIGZvciBhbGwgZ29vZCBjb2RlcnMKdG8gbGVhcm4g\nUnVieQ==\n",
		"Send reinforcements":                                "U2VuZCByZWluZm9yY2VtZW50cw==\n",
		strings.Repeat("aaa", 15):                            strings.Repeat("YWFh", 15) + "\n", // exactly one full line
		strings.Repeat("aaa", 16):                            strings.Repeat("YWFh", 15) + "\nYWFh\n",
	} {
		if got := encodePayload([]byte(in)); got != want {
			t.Errorf("encodePayload(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignedNotificationPassesTheVerifier(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tx := &transaction{legacyID: "tx_1", orderID: "order-7", status: statusSettled, amount: "62.00", currency: "EUR",
		merchantAccountID: "cartflow_eur", createdAt: at, history: []event{{Status: statusSettled, At: at}}}
	signature, payload := Sign("pub_key", "priv_key", notificationXML("transaction_settled", at, transactionXML(tx, "")))
	if !strings.HasPrefix(signature, "pub_key|") || strings.Count(payload, "\n") < 2 {
		t.Fatalf("sign = %q, %q; want the public key and a payload of several lines", signature, payload)
	}
	body := []byte(url.Values{"bt_signature": {signature}, "bt_payload": {payload}}.Encode())
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	clock := func() time.Time { return at.Add(time.Minute) }

	e, err := billing.NewBraintreeWebhookVerifier("pub_key", "priv_key", clock).Verify(context.Background(), header, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if e.Type != domain.EventPaymentSucceeded || e.ProviderType != "transaction_settled" || e.PaymentRef != "tx_1" ||
		e.OrderID != "order-7" || e.Amount != 6200 || e.Currency != "eur" {
		t.Errorf("event = %+v", e)
	}
	for name, v := range map[string]billing.WebhookVerifier{
		"another private key": billing.NewBraintreeWebhookVerifier("pub_key", "other_key", clock),
		"another public key":  billing.NewBraintreeWebhookVerifier("other_pub", "priv_key", clock),
	} {
		if _, err := v.Verify(context.Background(), header, body); !errors.Is(err, billing.ErrBadSignature) {
			t.Errorf("verifier with %s: %v, want ErrBadSignature", name, err)
		}
	}
}
