package billing_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
)

// ppDelivery is the header of a webhook delivery of body, sent at and signed with secret for webhookID.
func ppDelivery(secret, webhookID string, body []byte, at time.Time) http.Header {
	id, sent := "b2384410-f8d2-11ee-8fb2-4b2c86e3a3ac", at.UTC().Format(time.RFC3339)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("PAYPAL-TRANSMISSION-ID", id)
	h.Set("PAYPAL-TRANSMISSION-TIME", sent)
	h.Set("PAYPAL-TRANSMISSION-SIG", ppSignature(secret, id, sent, webhookID, body))
	h.Set("PAYPAL-CERT-URL", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")
	h.Set("PAYPAL-AUTH-ALGO", "SHA256withRSA")
	return h
}

// Events as PayPal sends them (Webhooks event names reference), trimmed of fields cartflow ignores.
const (
	ppCaptureCompleted = `{
  "id": "WH-58D329510W468432D-8HN650336L201105X",
  "event_version": "1.0",
  "create_time": "2019-02-14T21:50:07.940Z",
  "resource_type": "capture",
  "resource_version": "2.0",
  "event_type": "PAYMENT.CAPTURE.COMPLETED",
  "summary": "Payment completed for $ 62.00 USD",
  "resource": {
    "id": "42311647XV020574X",
    "amount": {"currency_code": "USD", "value": "62.00"},
    "final_capture": true,
    "custom_id": "order-7d1c",
    "status": "COMPLETED",
    "links": [
      {"href": "https://api.paypal.com/v2/payments/captures/42311647XV020574X", "rel": "self", "method": "GET"},
      {"href": "https://api.paypal.com/v2/checkout/orders/5O190127TN364715T", "rel": "up", "method": "GET"}
    ]
  }
}`
	ppCaptureDenied = `{
  "id": "WH-4SW78779LY2325805-07E03580SX1414828",
  "event_type": "PAYMENT.CAPTURE.DENIED",
  "resource_type": "capture",
  "resource": {
    "id": "7NW873794T343360M",
    "amount": {"currency_code": "JPY", "value": "1500"},
    "status": "DECLINED",
    "status_details": {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
  }
}`
	ppCaptureRefunded = `{
  "id": "WH-1GE84257G0350133W-6RW800890C634293G",
  "event_type": "PAYMENT.CAPTURE.REFUNDED",
  "resource_type": "refund",
  "resource": {
    "id": "1Y107995YT783435V",
    "amount": {"currency_code": "USD", "value": "10.00"},
    "seller_payable_breakdown": {"total_refunded_amount": {"currency_code": "USD", "value": "30.00"}},
    "custom_id": "order-7d1c",
    "status": "COMPLETED",
    "links": [
      {"href": "https://api.paypal.com/v2/payments/refunds/1Y107995YT783435V", "rel": "self", "method": "GET"},
      {"href": "https://api.paypal.com/v2/payments/captures/42311647XV020574X", "rel": "up", "method": "GET"}
    ]
  }
}`
	ppDisputeCreated = `{
  "id": "WH-4M0448861G563140B-9EX36365822141321",
  "event_type": "CUSTOMER.DISPUTE.CREATED",
  "resource_type": "dispute",
  "resource": {
    "dispute_id": "PP-000-042-663-135",
    "disputed_transactions": [{"seller_transaction_id": "42311647XV020574X", "seller_protection_eligible": true}],
    "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
    "status": "OPEN",
    "dispute_amount": {"currency_code": "USD", "value": "62.00"},
    "dispute_life_cycle_stage": "INQUIRY"
  }
}`
	ppDisputeResolved = `{
  "id": "WH-7MX83915LG104813U-1FA20349YR0405522",
  "event_type": "CUSTOMER.DISPUTE.RESOLVED",
  "resource_type": "dispute",
  "resource": {
    "dispute_id": "PP-000-042-663-135",
    "disputed_transactions": [{"seller_transaction_id": "42311647XV020574X"}],
    "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
    "status": "RESOLVED",
    "dispute_amount": {"currency_code": "USD", "value": "62.00"},
    "dispute_outcome": {"outcome_code": "RESOLVED_SELLER_FAVOUR"}
  }
}`
	ppOrderApproved = `{
  "id": "WH-COC11055RA711503B-4YM959094A144403T",
  "event_type": "CHECKOUT.ORDER.APPROVED",
  "resource_type": "checkout-order",
  "resource": {"id": "5O190127TN364715T", "status": "APPROVED", "amount": "not PayPal Money", "reason": {"code": 1}}
}`
)

func TestPayPalWebhookParsesEvents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body string
		want domain.WebhookEvent
	}{
		{ppCaptureCompleted, domain.WebhookEvent{
			ID: "WH-58D329510W468432D-8HN650336L201105X", Type: domain.EventPaymentSucceeded, ProviderType: "PAYMENT.CAPTURE.COMPLETED",
			PaymentRef: "42311647XV020574X", OrderID: "order-7d1c", Amount: 6200, Currency: "usd",
		}},
		{ppCaptureDenied, domain.WebhookEvent{
			ID: "WH-4SW78779LY2325805-07E03580SX1414828", Type: domain.EventPaymentFailed, ProviderType: "PAYMENT.CAPTURE.DENIED",
			PaymentRef: "7NW873794T343360M", Amount: 1500, Currency: "jpy", Reason: "declined_by_risk_fraud_filters",
		}},
		{ppCaptureRefunded, domain.WebhookEvent{
			ID: "WH-1GE84257G0350133W-6RW800890C634293G", Type: domain.EventRefunded, ProviderType: "PAYMENT.CAPTURE.REFUNDED",
			// The capture's refunded total (this 10.00 refund after an earlier 20.00), not this refund alone.
			PaymentRef: "42311647XV020574X", OrderID: "order-7d1c", Amount: 3000, Currency: "usd",
		}},
		{ppDisputeCreated, domain.WebhookEvent{
			ID: "WH-4M0448861G563140B-9EX36365822141321", Type: domain.EventDisputeOpened, ProviderType: "CUSTOMER.DISPUTE.CREATED",
			PaymentRef: "42311647XV020574X", Amount: 6200, Currency: "usd", Reason: "merchandise_or_service_not_received",
		}},
		{ppDisputeResolved, domain.WebhookEvent{
			ID: "WH-7MX83915LG104813U-1FA20349YR0405522", Type: domain.EventDisputeClosed, ProviderType: "CUSTOMER.DISPUTE.RESOLVED",
			PaymentRef: "42311647XV020574X", Amount: 6200, Currency: "usd", Reason: "resolved_seller_favour",
		}},
		{ppOrderApproved, domain.WebhookEvent{
			ID: "WH-COC11055RA711503B-4YM959094A144403T", Type: domain.EventOther, ProviderType: "CHECKOUT.ORDER.APPROVED",
		}},
	}
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
	for _, tc := range cases {
		t.Run(tc.want.ProviderType, func(t *testing.T) {
			t.Parallel()
			body := []byte(tc.body)
			got, err := v.Verify(context.Background(), ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now()), body)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Provider = billing.ProviderPayPal
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("event\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPayPalWebhookUsesTheGatewaysWebhookID(t *testing.T) {
	t.Parallel()
	d := newPPDouble(t)
	v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), "")
	body := []byte(ppCaptureCompleted)
	if _, err := v.Verify(context.Background(), ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now()), body); err != nil {
		t.Fatal(err)
	}
}

func TestPayPalWebhookRejects(t *testing.T) {
	t.Parallel()
	body := []byte(ppCaptureCompleted)
	tampered := []byte(strings.Replace(ppCaptureCompleted, `"value": "62.00"`, `"value": "6200.00"`, 1))
	now := time.Now()
	cases := []struct {
		name      string
		webhookID string // the verifier's
		header    http.Header
		body      []byte
		asked     bool // whether PayPal is asked
	}{
		{name: "wrong secret", header: ppDelivery("another-key", ppWebhookID, body, now), body: body, asked: true},
		{name: "another listener's delivery", header: ppDelivery(ppWebhookSecret, "8PT597110X687430L", body, now), body: body, asked: true},
		{name: "verifier of another listener", webhookID: "8PT597110X687430L", header: ppDelivery(ppWebhookSecret, ppWebhookID, body, now), body: body, asked: true},
		{name: "tampered body", header: ppDelivery(ppWebhookSecret, ppWebhookID, body, now), body: tampered, asked: true},
		// Correctly signed, so PayPal would say SUCCESS: a replay that only the time gives away.
		{name: "stale", header: ppDelivery(ppWebhookSecret, ppWebhookID, body, now.Add(-10*time.Minute)), body: body},
		{name: "from the future", header: ppDelivery(ppWebhookSecret, ppWebhookID, body, now.Add(10*time.Minute)), body: body},
		{name: "not a time", header: func() http.Header {
			h := ppDelivery(ppWebhookSecret, ppWebhookID, body, now)
			h.Set("PAYPAL-TRANSMISSION-TIME", "yesterday")
			return h
		}(), body: body},
		{name: "not JSON", header: ppDelivery(ppWebhookSecret, ppWebhookID, []byte("id=1"), now), body: []byte("id=1")},
		{name: "not an event", header: ppDelivery(ppWebhookSecret, ppWebhookID, []byte(`{}`), now), body: []byte(`{}`)},
	}
	for _, name := range []string{"PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO"} {
		h := ppDelivery(ppWebhookSecret, ppWebhookID, body, now)
		h.Del(name)
		cases = append(cases, struct {
			name      string
			webhookID string
			header    http.Header
			body      []byte
			asked     bool
		}{name: "missing " + name, header: h, body: body})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			webhookID := tc.webhookID
			if webhookID == "" {
				webhookID = ppWebhookID
			}
			v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), webhookID)
			got, err := v.Verify(context.Background(), tc.header, tc.body)
			if !errors.Is(err, billing.ErrBadSignature) {
				t.Fatalf("Verify = %+v, %v; want ErrBadSignature", got, err)
			}
			if _, _, _, _, calls, _ := d.stats(); (calls == 1) != tc.asked || calls > 1 {
				t.Errorf("PayPal was asked %d times; want asked=%v", calls, tc.asked)
			}
		})
	}
}

func TestPayPalWebhookVerificationFailures(t *testing.T) {
	t.Parallel()
	body := []byte(ppCaptureCompleted)
	cases := []struct {
		status int
		bad    bool // ErrBadSignature, else a plain error so that PayPal delivers again
	}{
		{status: http.StatusInternalServerError},
		{status: http.StatusServiceUnavailable},
		{status: http.StatusTooManyRequests},
		{status: http.StatusUnauthorized},
		// PayPal's validation refuses header values no signature of its has, such as a forged one.
		{status: http.StatusBadRequest, bad: true},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			d := newPPDouble(t)
			d.mu.Lock()
			d.verifyStatus = tc.status
			d.mu.Unlock()
			v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
			_, err := v.Verify(context.Background(), ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now()), body)
			if err == nil || errors.Is(err, billing.ErrBadSignature) != tc.bad {
				t.Errorf("Verify error = %v; want bad signature %v", err, tc.bad)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		d := newPPDouble(t)
		v := billing.NewPayPalWebhookVerifier(d.gateway(t, 5*time.Second), ppWebhookID)
		d.srv.Close()
		_, err := v.Verify(context.Background(), ppDelivery(ppWebhookSecret, ppWebhookID, body, time.Now()), body)
		if err == nil || errors.Is(err, billing.ErrBadSignature) {
			t.Errorf("Verify error = %v; want a plain error", err)
		}
	})
}
