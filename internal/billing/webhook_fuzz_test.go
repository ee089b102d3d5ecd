package billing_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v76"

	"github.com/cartflow/cartflow/internal/billing"
	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/jsontext"
)

// The webhook fuzz targets feed each provider's verifier arbitrary bodies and signature headers,
// and arbitrary bodies signed the way the provider (here its double) signs them. The verifier
// must never panic; an unsigned request must be refused with ErrBadSignature; and an event it
// returns must be one the BFF can hand to Temporal and the store can keep: its provider, a
// non-empty id, a known type, text fields that are UTF-8 without NUL, no negative amount, and a
// body that PostgreSQL's jsonb accepts.

// knownEventTypes are the types a verifier may return.
var knownEventTypes = map[domain.EventType]bool{
	domain.EventPaymentSucceeded: true, domain.EventPaymentFailed: true, domain.EventRefunded: true,
	domain.EventDisputeOpened: true, domain.EventDisputeClosed: true, domain.EventOther: true,
}

// wantSaneEvent fails unless the verifier's answer for body is a refusal or an event fit to store.
// signed tells whether the request carried a genuine signature; without one, only ErrBadSignature will do.
func wantSaneEvent(t *testing.T, provider string, body []byte, ev domain.WebhookEvent, err error, signed bool) {
	t.Helper()
	if err != nil {
		// A forged delivery whose headers look like PayPal's can only be refuted by PayPal, and
		// the fuzzer sends them faster than PayPal's verify calls are budgeted: "deliver again
		// later" refuses it too.
		if !signed && !errors.Is(err, billing.ErrBadSignature) && !errors.Is(err, billing.ErrVerifyLimited) {
			t.Fatalf("unsigned request: error %v, want ErrBadSignature (or ErrVerifyLimited)", err)
		}
		return
	}
	if !signed {
		t.Fatalf("unsigned request accepted as %+v", ev)
	}
	if ev.Provider != provider || ev.ID == "" || !knownEventTypes[ev.Type] || ev.Amount < 0 {
		t.Fatalf("event %+v: want provider %s, an id, a known type and no negative amount", ev, provider)
	}
	for _, s := range []string{ev.ID, ev.ProviderType, ev.PaymentRef, ev.OrderID, ev.Currency, ev.Reason} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("event %+v has a field that is not text: %q", ev, s)
		}
	}
	// The store keeps the body as jsonb (a form body as a JSON string), which refuses NUL and
	// invalid UTF-8 wherever they are.
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 || (json.Valid(body) && jsontext.Check(body) != nil) {
		t.Fatalf("event %+v accepted from a body PostgreSQL cannot store: %q", ev, body)
	}
}

func FuzzStripeWebhook(f *testing.F) {
	for _, object := range []string{
		`{"id":"pi_1","object":"payment_intent","amount":2500,"currency":"usd","status":"succeeded","metadata":{"order_id":"ord-1"}}`,
		`{"id":"ch_1","object":"charge","amount":2500,"amount_refunded":1500,"currency":"usd","payment_intent":"pi_1","metadata":{}}`,
		`{"id":"pi_2","object":"payment_intent","amount":2500,"currency":"usd","metadata":{"order_id":"ord\u0000"}}`,
		"{\"id\":\"pi_3\",\"object\":\"payment_intent\",\"amount\":-5,\"currency\":\"usd\",\"description\":\"\xff\"}",
	} {
		f.Add(stripeEventJSON("evt_1", "payment_intent.succeeded", object, stripe.APIVersion), "t=1700000000,v1=00", true)
	}
	v := billing.NewStripeWebhookVerifier(stripeWebhookSecret)
	f.Fuzz(func(t *testing.T, body []byte, signature string, sign bool) {
		header := http.Header{"Stripe-Signature": {signature}}
		if sign {
			header = signedHeader(body, stripeWebhookSecret, time.Now())
		}
		ev, err := v.Verify(t.Context(), header, body)
		wantSaneEvent(t, billing.ProviderStripe, body, ev, err, sign)
	})
}

func FuzzPayPalWebhook(f *testing.F) {
	for _, body := range []string{ppCaptureCompleted, ppCaptureRefunded, ppDisputeResolved, ppOrderApproved,
		strings.Replace(ppCaptureCompleted, "order-7d1c", `order\u0000`, 1), strings.Replace(ppCaptureDenied, "1500", "-1500", 1)} {
		f.Add([]byte(body), "b2384410-f8d2-11ee-8fb2-4b2c86e3a3ac", "forged-signature", true)
	}
	double := paypalfake.New(paypalfake.Config{ClientID: ppClientID, Secret: ppSecret, WebhookSecret: ppWebhookSecret})
	double.SetWebhook("", ppWebhookID)
	srv := httptest.NewServer(double)
	f.Cleanup(srv.Close)
	gateway, err := billing.NewPayPal(billing.PayPalConfig{ClientID: ppClientID, Secret: ppSecret, APIURL: srv.URL,
		Timeout: 5 * time.Second, WebhookID: ppWebhookID})
	if err != nil {
		f.Fatal(err)
	}
	v := billing.NewPayPalWebhookVerifier(gateway, ppWebhookID)
	f.Fuzz(func(t *testing.T, body []byte, transmissionID, signature string, sign bool) {
		header := ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now())
		if !sign {
			header.Set("PAYPAL-TRANSMISSION-ID", transmissionID)
			header.Set("PAYPAL-TRANSMISSION-SIG", signature)
		}
		// A forged signature that happens to equal the genuine one is a signed request.
		signed := header.Get("PAYPAL-TRANSMISSION-SIG") == ppSignature(ppWebhookSecret, header.Get("PAYPAL-TRANSMISSION-ID"),
			header.Get("PAYPAL-TRANSMISSION-TIME"), ppWebhookID, body)
		ev, err := v.Verify(t.Context(), header, body)
		wantSaneEvent(t, billing.ProviderPayPal, body, ev, err, signed)
	})
}

func FuzzBraintreeWebhook(f *testing.F) {
	at := btWebhookNow.Add(-time.Minute)
	for _, n := range [][]byte{
		btNotificationXML("transaction_settled", at, btSettledSubject),
		btNotificationXML("dispute_lost", at, btDisputeSubject),
		btNotificationXML("check", at, `<check type="boolean">true</check>`),
	} {
		signature, payload := braintreefake.Sign(btPublicKey, btPrivateKey, n)
		f.Add(btForm(signature, payload), "application/x-www-form-urlencoded", n)
	}
	v := btWebhookVerifier()
	f.Fuzz(func(t *testing.T, body []byte, contentType string, notification []byte) {
		// An arbitrary form body is signed when it carries the seeds' genuine MAC, which the
		// fuzzer may keep while it changes the rest.
		form, _ := url.ParseQuery(string(body))
		mac, payload := strings.ToLower(form.Get("bt_signature")), form.Get("bt_payload")
		signed := strings.Contains(mac, btMACOf(payload)) || strings.Contains(mac, btMACOf(payload+"\n"))
		ev, err := v.Verify(t.Context(), http.Header{"Content-Type": {contentType}}, body)
		wantSaneEvent(t, billing.ProviderBraintree, body, ev, err, signed)

		signature, encoded := braintreefake.Sign(btPublicKey, btPrivateKey, notification)
		signedBody := btForm(signature, encoded)
		ev, err = v.Verify(t.Context(), btFormHeader(), signedBody)
		wantSaneEvent(t, billing.ProviderBraintree, signedBody, ev, err, true)
	})
}
