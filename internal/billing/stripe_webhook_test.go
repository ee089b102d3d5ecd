package billing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

const stripeWebhookSecret = "whsec_billingtests"

// stripeEventJSON is a Stripe event of type typ around the object's JSON, rendered for version.
func stripeEventJSON(id, typ, object, version string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"created":%d,"data":{"object":%s},`+
		`"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":%q}`,
		id, version, time.Now().Unix(), object, typ)
}

// signedHeader is a request header carrying Stripe's signature of payload, made at the time given.
func signedHeader(payload []byte, secret string, at time.Time) http.Header {
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at})
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Stripe-Signature", signed.Header)
	return h
}

func TestStripeWebhookParsesEvents(t *testing.T) {
	t.Parallel()
	v := billing.NewStripeWebhookVerifier(stripeWebhookSecret)
	tests := []struct {
		typ, object string
		want        domain.WebhookEvent
	}{
		{
			typ: "payment_intent.succeeded",
			object: `{"id":"pi_1","object":"payment_intent","amount":2500,"amount_received":2500,"currency":"usd",` +
				`"status":"succeeded","metadata":{"order_id":"ord-1","cartflow_idempotency_key":"k"}}`,
			want: domain.WebhookEvent{Type: domain.EventPaymentSucceeded, PaymentRef: "pi_1", OrderID: "ord-1", Amount: 2500, Currency: "usd"},
		},
		{
			typ: "payment_intent.payment_failed",
			object: `{"id":"pi_2","object":"payment_intent","amount":1800,"currency":"eur","status":"requires_payment_method",` +
				`"metadata":{"order_id":"ord-2"},"last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}`,
			want: domain.WebhookEvent{Type: domain.EventPaymentFailed, PaymentRef: "pi_2", OrderID: "ord-2", Amount: 1800, Currency: "eur",
				Reason: "insufficient_funds"},
		},
		{
			// A failed 3-D Secure challenge has a code and no decline code.
			typ: "payment_intent.payment_failed",
			object: `{"id":"pi_3","object":"payment_intent","amount":900,"currency":"usd","status":"requires_payment_method",` +
				`"metadata":{},"last_payment_error":{"type":"invalid_request_error","code":"payment_intent_authentication_failure"}}`,
			want: domain.WebhookEvent{Type: domain.EventPaymentFailed, PaymentRef: "pi_3", Amount: 900, Currency: "usd",
				Reason: "payment_intent_authentication_failure"},
		},
		{
			// amount_refunded is the total refunded so far, here after a second partial refund.
			typ: "charge.refunded",
			object: `{"id":"ch_1","object":"charge","amount":2500,"amount_refunded":1500,"currency":"usd","refunded":false,` +
				`"payment_intent":"pi_1","metadata":{"order_id":"ord-1"}}`,
			want: domain.WebhookEvent{Type: domain.EventRefunded, PaymentRef: "pi_1", OrderID: "ord-1", Amount: 1500, Currency: "usd"},
		},
		{
			typ: "charge.dispute.created",
			object: `{"id":"dp_1","object":"dispute","amount":2500,"currency":"usd","charge":"ch_1","payment_intent":"pi_1",` +
				`"reason":"fraudulent","status":"needs_response"}`,
			want: domain.WebhookEvent{Type: domain.EventDisputeOpened, PaymentRef: "pi_1", Amount: 2500, Currency: "usd", Reason: "fraudulent"},
		},
		{
			typ: "charge.dispute.closed",
			object: `{"id":"dp_1","object":"dispute","amount":2500,"currency":"usd","charge":"ch_1","payment_intent":"pi_1",` +
				`"reason":"fraudulent","status":"lost"}`,
			want: domain.WebhookEvent{Type: domain.EventDisputeClosed, PaymentRef: "pi_1", Amount: 2500, Currency: "usd", Reason: "lost"},
		},
		{
			typ:    "customer.created",
			object: `{"id":"cus_1","object":"customer","email":"ada@example.com"}`,
			want:   domain.WebhookEvent{Type: domain.EventOther},
		},
	}
	for i, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("evt_parse%d", i)
			body := stripeEventJSON(id, tc.typ, tc.object, stripe.APIVersion)
			got, err := v.Verify(context.Background(), signedHeader(body, stripeWebhookSecret, time.Now()), body)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Provider, want.ID, want.ProviderType = billing.ProviderStripe, id, tc.typ
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestStripeWebhookRejects(t *testing.T) {
	t.Parallel()
	v := billing.NewStripeWebhookVerifier(stripeWebhookSecret)
	body := stripeEventJSON("evt_reject", "payment_intent.succeeded",
		`{"id":"pi_1","object":"payment_intent","amount":2500,"currency":"usd","status":"succeeded","metadata":{}}`, stripe.APIVersion)
	tampered := []byte(strings.Replace(string(body), `"amount":2500`, `"amount":1`, 1))
	notEvent := []byte(`not json`)
	tests := []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"wrong secret", signedHeader(body, "whsec_someoneelse", time.Now()), body},
		{"tampered body", signedHeader(body, stripeWebhookSecret, time.Now()), tampered},
		{"stale timestamp", signedHeader(body, stripeWebhookSecret, time.Now().Add(-webhook.DefaultTolerance-time.Minute)), body},
		{"missing header", http.Header{"Content-Type": {"application/json"}}, body},
		{"malformed header", http.Header{"Stripe-Signature": {"garbage"}}, body},
		{"header without a v1 signature", http.Header{"Stripe-Signature": {fmt.Sprintf("t=%d,v0=abcd", time.Now().Unix())}}, body},
		{"signed body that is not an event", signedHeader(notEvent, stripeWebhookSecret, time.Now()), notEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(context.Background(), tc.header, tc.body)
			if !errors.Is(err, billing.ErrBadSignature) || !reflect.DeepEqual(got, domain.WebhookEvent{}) {
				t.Fatalf("got %+v, %v; want ErrBadSignature", got, err)
			}
		})
	}

	// Just inside the tolerance the same event passes, so the stale case fails for its age alone.
	if _, err := v.Verify(context.Background(), signedHeader(body, stripeWebhookSecret, time.Now().Add(-webhook.DefaultTolerance+time.Minute)), body); err != nil {
		t.Fatalf("an event signed four minutes ago: %v", err)
	}

	t.Run("no secret configured", func(t *testing.T) {
		t.Parallel()
		_, err := billing.NewStripeWebhookVerifier("").Verify(context.Background(), signedHeader(body, "", time.Now()), body)
		if !errors.Is(err, billing.ErrBadSignature) {
			t.Fatalf("got %v, want ErrBadSignature: an empty secret signs nothing", err)
		}
	})
	t.Run("other API version", func(t *testing.T) {
		t.Parallel()
		old := stripeEventJSON("evt_old", "payment_intent.succeeded", `{"id":"pi_1","object":"payment_intent"}`, "2020-08-27")
		_, err := v.Verify(context.Background(), signedHeader(old, stripeWebhookSecret, time.Now()), old)
		// Genuine but unreadable until the endpoint is pinned: retried, not refused.
		if err == nil || errors.Is(err, billing.ErrBadSignature) || !strings.Contains(err.Error(), stripe.APIVersion) {
			t.Fatalf("got %v, want a plain error naming %s", err, stripe.APIVersion)
		}
	})
}
