package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/plutov/paypal/v4"
)

// PayPal signs each webhook delivery with its certificate over the transmission id, the
// transmission time, the webhook id and a CRC32 of the body, and documents one way for a
// listener to check it without handling certificates: POST /v1/notifications/verify-webhook-signature.
// That check does not look at the time, so a captured delivery would pass again; the verifier
// refuses transmissions more than paypalWebhookMaxSkew away from now. PayPal documents the
// transmission id and time as those of the HTTP transmission, so a redelivery after an outage
// carries its own time and still passes.
const paypalWebhookMaxSkew = 5 * time.Minute

// paypalWebhookHeaders are the headers PayPal sends with every webhook delivery, all needed to verify it.
var paypalWebhookHeaders = []string{
	"PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG",
	"PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO",
}

// NewPayPalWebhookVerifier returns the verifier of PayPal webhooks sent to the listener
// webhookID (the gateway's configured WebhookID when empty), which asks PayPal through p.
func NewPayPalWebhookVerifier(p *PayPal, webhookID string) WebhookVerifier {
	if webhookID == "" {
		webhookID = p.webhookID
	}
	return &paypalWebhookVerifier{p: p, webhookID: webhookID, now: time.Now,
		cache: newVerifyCache(paypalVerifyCacheSize, paypalVerifyCacheTTL, paypalVerifyRate, paypalVerifyBurst)}
}

type paypalWebhookVerifier struct {
	p         *PayPal
	webhookID string
	now       func() time.Time
	// cache remembers PayPal's answers and bounds the calls (paypal_verify_cache.go).
	cache *verifyCache
}

// Verify checks one webhook delivery: its headers and transmission time here, its signature
// by asking PayPal. A request that fails a check gives ErrBadSignature; a failure to ask
// PayPal gives a plain error, so that the BFF answers 5xx and PayPal delivers again.
func (v *paypalWebhookVerifier) Verify(ctx context.Context, header http.Header, body []byte) (domain.WebhookEvent, error) {
	for _, h := range paypalWebhookHeaders {
		if header.Get(h) == "" {
			return domain.WebhookEvent{}, fmt.Errorf("%w: the %s header is missing", ErrBadSignature, h)
		}
	}
	if err := paypalPrecheck(header); err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	sent := header.Get("PAYPAL-TRANSMISSION-TIME")
	at, err := time.Parse(time.RFC3339, sent)
	if err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the transmission time %q is not a time", ErrBadSignature, sent)
	}
	if now := v.now(); at.Before(now.Add(-paypalWebhookMaxSkew)) || at.After(now.Add(paypalWebhookMaxSkew)) {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the transmission time %s is stale", ErrBadSignature, at.UTC().Format(time.RFC3339))
	}
	var ev paypalEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.EventType == "" {
		// Not worth asking PayPal about: no event of PayPal's looks like this.
		return domain.WebhookEvent{}, fmt.Errorf("%w: the body is not a PayPal event", ErrBadSignature)
	}
	// Checked before PayPal is asked, which it need not be about an event nothing could keep.
	event, err := storable(body, ev.event())
	if err != nil {
		return domain.WebhookEvent{}, err
	}
	if v.webhookID == "" {
		return domain.WebhookEvent{}, errors.New("paypal webhook id is not configured (PAYPAL_WEBHOOK_ID)")
	}

	// The same delivery again (a forger's loop, a proxy's retry) gets PayPal's first answer;
	// a new one is asked about within the rate limit.
	o := v.cache.do(v.now(), paypalVerifyKey(header, v.webhookID, body), func() (verifyOutcome, bool) {
		err := v.ask(ctx, header, body)
		// PayPal's answer is remembered, SUCCESS or not; a failure to get one is not.
		return verifyOutcome{event: event, err: err}, err == nil || errors.Is(err, ErrBadSignature)
	})
	if o.err != nil {
		return domain.WebhookEvent{}, o.err
	}
	return o.event, nil
}

// ask asks PayPal whether the delivery is its own: nil for SUCCESS, ErrBadSignature for a
// refusal, a plain error when PayPal could not answer.
func (v *paypalWebhookVerifier) ask(ctx context.Context, header http.Header, body []byte) error {
	// The library reads the headers and the body from a request; it sends the body unchanged
	// apart from insignificant white space.
	req := &http.Request{Header: header, Body: io.NopCloser(bytes.NewReader(body))}
	c := v.p.client()
	res, err := c.VerifyWebhookSignature(ctx, req, v.webhookID)
	v.p.observe(c, err)
	if err != nil {
		var pe *paypal.ErrorResponse
		if errors.As(err, &pe) && pe.Response != nil && pe.Response.StatusCode >= 400 && pe.Response.StatusCode < 500 &&
			pe.Response.StatusCode != http.StatusUnauthorized && pe.Response.StatusCode != http.StatusForbidden &&
			pe.Response.StatusCode != http.StatusTooManyRequests {
			// PayPal's validation refused the headers' values, as it does for a forged signature.
			return fmt.Errorf("%w: paypal refused to verify it (status %d, %s)", ErrBadSignature, pe.Response.StatusCode, paypalIssue(err))
		}
		return fmt.Errorf("paypal webhook verification failed: %w", paypalClassify(err, "webhook_not_found"))
	}
	if res.VerificationStatus != "SUCCESS" {
		return fmt.Errorf("%w: paypal answered %q", ErrBadSignature, res.VerificationStatus)
	}
	return nil
}

// paypalEvent is the part of a PayPal webhook event that cartflow reads.
type paypalEvent struct {
	ID        string          `json:"id"`
	EventType string          `json:"event_type"`
	Resource  json.RawMessage `json:"resource"`
}

// paypalResource holds the fields of the resources cartflow's events carry: a capture, a
// refund or a dispute.
type paypalResource struct {
	ID            string        `json:"id"`
	CustomID      string        `json:"custom_id"`
	Amount        *paypal.Money `json:"amount"`
	Links         []paypal.Link `json:"links"`
	StatusDetails *struct {
		Reason string `json:"reason"`
	} `json:"status_details"`

	Reason               string        `json:"reason"`
	DisputeAmount        *paypal.Money `json:"dispute_amount"`
	DisputedTransactions []struct {
		SellerTransactionID string `json:"seller_transaction_id"`
	} `json:"disputed_transactions"`
	DisputeOutcome *struct {
		OutcomeCode string `json:"outcome_code"`
	} `json:"dispute_outcome"`
	// SellerPayableBreakdown, on a refund, has the capture's refunded total so far.
	SellerPayableBreakdown *struct {
		TotalRefundedAmount *paypal.Money `json:"total_refunded_amount"`
	} `json:"seller_payable_breakdown"`
}

// paypalWebhookTypes maps the event types that cartflow acts on.
var paypalWebhookTypes = map[string]domain.EventType{
	"PAYMENT.CAPTURE.COMPLETED": domain.EventPaymentSucceeded,
	"PAYMENT.CAPTURE.DENIED":    domain.EventPaymentFailed,
	"PAYMENT.CAPTURE.DECLINED":  domain.EventPaymentFailed,
	"PAYMENT.CAPTURE.REFUNDED":  domain.EventRefunded,
	"CUSTOMER.DISPUTE.CREATED":  domain.EventDisputeOpened,
	"CUSTOMER.DISPUTE.RESOLVED": domain.EventDisputeClosed,
}

// event turns a verified PayPal event into a WebhookEvent. The resource is read only for the
// event types cartflow acts on: other resources may use the same field names for other shapes.
func (e paypalEvent) event() domain.WebhookEvent {
	out := domain.WebhookEvent{Provider: ProviderPayPal, ID: e.ID, Type: paypalWebhookTypes[e.EventType], ProviderType: e.EventType}
	if out.Type == "" {
		out.Type = domain.EventOther
		return out
	}
	var r paypalResource
	// A signed event whose resource does not read is still kept, with what it gives.
	_ = json.Unmarshal(e.Resource, &r)
	out.OrderID = r.CustomID
	money := r.Amount
	switch out.Type {
	case domain.EventPaymentSucceeded, domain.EventPaymentFailed:
		out.PaymentRef = r.ID
		if r.StatusDetails != nil {
			out.Reason = strings.ToLower(r.StatusDetails.Reason)
		}
	case domain.EventRefunded:
		// The resource is the refund; the capture it returns money from is its "up" link. The
		// event reports the capture's refunded total, as Stripe's does, so that a late or repeated
		// delivery can never count a refund twice.
		out.PaymentRef = paypalLinkedCapture(r.Links)
		if b := r.SellerPayableBreakdown; b != nil && b.TotalRefundedAmount != nil {
			money = b.TotalRefundedAmount
		}
	case domain.EventDisputeOpened, domain.EventDisputeClosed:
		if len(r.DisputedTransactions) > 0 {
			out.PaymentRef = r.DisputedTransactions[0].SellerTransactionID
		}
		money = r.DisputeAmount
		out.Reason = strings.ToLower(r.Reason)
		if r.DisputeOutcome != nil && r.DisputeOutcome.OutcomeCode != "" {
			out.Reason = strings.ToLower(r.DisputeOutcome.OutcomeCode)
		}
	}
	if money != nil {
		// Likewise an amount that does not read is left out rather than refusing the event.
		if n, err := paypalMinor(money.Value, money.Currency); err == nil {
			out.Amount, out.Currency = n, strings.ToLower(money.Currency)
		}
	}
	return out
}

// paypalLinkedCapture is the capture id in a refund's "up" link, .../v2/payments/captures/{id}.
func paypalLinkedCapture(links []paypal.Link) string {
	for _, l := range links {
		if l.Rel != "up" {
			continue
		}
		u, err := url.Parse(l.Href)
		if err != nil {
			continue
		}
		dir, id := path.Split(strings.TrimRight(u.Path, "/"))
		if path.Base(dir) == "captures" && id != "" {
			return id
		}
	}
	return ""
}
