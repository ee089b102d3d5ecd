package paypal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// PayPal posts each webhook event as JSON with PAYPAL-TRANSMISSION-ID, -TIME and -SIG, the
// certificate's URL and the algorithm in headers (developer.paypal.com/api/rest/webhooks). The
// signature covers "<transmission id>|<transmission time>|<webhook id>|<CRC32 of the body>", and
// a listener asks POST /v1/notifications/verify-webhook-signature whether it is PayPal's. Each
// delivery, redeliveries included, is a transmission of its own, with its own id, time and
// signature, of the same event (same id, same body); receivers must take it as one event.

// authAlgo is the algorithm PayPal names for its signatures.
const authAlgo = "SHA256withRSA"

// certURL is what deliveries name as the signing certificate. Nothing fetches it: the double
// verifies its own HMAC, and the listener only passes the URL on to the verify endpoint.
const certURL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-cartflow-paypalfake"

// newOutbox returns the outbox of the double's events. Each post is a transmission of its own,
// signed anew for the webhook id current at that post.
func newOutbox(cfg Config, secret string) *kit.Outbox[Event, string] {
	return kit.NewOutbox(kit.OutboxConfig[Event, string]{
		Name: "paypalfake", Client: cfg.HTTPClient, Logger: cfg.Logger, NoURL: ErrNoWebhook,
		NotFound: func(id string) error { return fmt.Errorf("%w: event %s", ErrNotFound, id) },
		Build: func(ev Event, to kit.Target[string]) kit.Post {
			at, transmission := time.Now().UTC(), newUUID()
			sent := at.Format(time.RFC3339)
			h := http.Header{}
			h.Set("User-Agent", "PayPal/AUHD-214.0-58873395")
			h.Set("PAYPAL-TRANSMISSION-ID", transmission)
			h.Set("PAYPAL-TRANSMISSION-TIME", sent)
			h.Set("PAYPAL-TRANSMISSION-SIG", Sign(secret, transmission, sent, to.Key, ev.Body))
			h.Set("PAYPAL-CERT-URL", certURL)
			h.Set("PAYPAL-AUTH-ALGO", authAlgo)
			return kit.Post{At: at, URL: to.URL, TransmissionID: transmission, ContentType: "application/json", Body: ev.Body, Header: h}
		},
		View: func(m kit.Message[Event]) Event { m.Event.Deliveries = m.Deliveries; return m.Event },
		LogAttrs: func(ev Event) []any {
			return []any{"event", ev.ID, "event_type", ev.EventType, "capture", ev.CaptureID}
		},
	})
}

// SetWebhook sets where events are posted and the id of that webhook listener, which the
// signatures cover and which the verify endpoint then accepts. An empty url registers the
// listener without sending it anything.
func (s *Server) SetWebhook(url, webhookID string) { s.webhooks.SetTarget(url, webhookID) }

// WebhookURL is where events are posted; empty before SetWebhook.
func (s *Server) WebhookURL() string { return s.webhooks.Target().URL }

// WebhookID is the webhook listener's id; empty before SetWebhook.
func (s *Server) WebhookID() string { return s.webhooks.Target().Key }

// Event is a webhook event the double made, and what became of its deliveries.
type Event struct {
	ID        string `json:"id"`
	EventType string `json:"event_type"`
	CaptureID string `json:"capture_id"`
	// ResourceID is the id of the event's resource: the capture, the refund or the dispute.
	ResourceID string `json:"resource_id"`
	// Body is the event as posted, the same for every delivery.
	Body       json.RawMessage `json:"body"`
	CreatedAt  time.Time       `json:"created_at"`
	Deliveries []Delivery      `json:"deliveries"`
}

// Delivery is one transmission of an event, with its own TransmissionID.
type Delivery = kit.Delivery

// Event types SendWebhook makes; they are the ones cartflow acts on.
const (
	EventCaptureCompleted = "PAYMENT.CAPTURE.COMPLETED"
	EventCaptureDenied    = "PAYMENT.CAPTURE.DENIED"
	EventCaptureDeclined  = "PAYMENT.CAPTURE.DECLINED"
	EventCaptureRefunded  = "PAYMENT.CAPTURE.REFUNDED"
	EventDisputeCreated   = "CUSTOMER.DISPUTE.CREATED"
	EventDisputeResolved  = "CUSTOMER.DISPUTE.RESOLVED"
)

// WebhookEventTypes lists the event types SendWebhook makes.
var WebhookEventTypes = []string{
	EventCaptureCompleted, EventCaptureDenied, EventCaptureDeclined, EventCaptureRefunded,
	EventDisputeCreated, EventDisputeResolved,
}

// SendWebhook makes an event of eventType about a capture, changes the capture as the event
// says, and posts the event to the webhook destination:
//
//	PAYMENT.CAPTURE.COMPLETED   a pending capture completes (a completed one is described as it is)
//	PAYMENT.CAPTURE.DENIED      a pending capture is declined (likewise DECLINED)
//	PAYMENT.CAPTURE.REFUNDED    the merchant refunds what remains of the capture at PayPal
//	CUSTOMER.DISPUTE.CREATED    the buyer opens a dispute about the capture (item not received)
//	CUSTOMER.DISPUTE.RESOLVED   the dispute is resolved in the seller's favour
//
// The state changes even when the delivery fails, as at PayPal; the returned error then says
// why, and ResendWebhook tries again.
func (s *Server) SendWebhook(ctx context.Context, eventType, captureID string) (Event, error) {
	s.mu.Lock()
	if s.webhooks.Target().URL == "" {
		s.mu.Unlock()
		return Event{}, ErrNoWebhook
	}
	if !slices.Contains(WebhookEventTypes, eventType) {
		s.mu.Unlock()
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownEventType, eventType)
	}
	c := s.captures[captureID]
	if c == nil {
		s.mu.Unlock()
		return Event{}, fmt.Errorf("%w: capture %s", ErrNotFound, captureID)
	}
	resourceType, resource, summary, err := s.apply(eventType, c)
	if err != nil {
		s.mu.Unlock()
		return Event{}, err
	}
	at := now()
	ev := Event{ID: "WH-" + newID(19) + "-" + newID(17), EventType: eventType, CaptureID: c.id,
		ResourceID: resourceID(resource), CreatedAt: at}
	ev.Body, _ = json.Marshal(map[string]any{
		"id": ev.ID, "event_version": "1.0", "create_time": stamp(at), "resource_type": resourceType,
		"resource_version": "2.0", "event_type": eventType, "summary": summary, "resource": resource,
		"links": []map[string]string{
			link(c.base+"/v1/notifications/webhooks-events/"+ev.ID, "self", http.MethodGet),
			link(c.base+"/v1/notifications/webhooks-events/"+ev.ID+"/resend", "resend", http.MethodPost),
		},
	})
	s.webhooks.Add(ev.ID, ev)
	s.mu.Unlock()
	return s.ResendWebhook(ctx, ev.ID)
}

func resourceID(resource map[string]any) string {
	if id, ok := resource["id"].(string); ok {
		return id
	}
	id, _ := resource["dispute_id"].(string)
	return id
}

// apply makes the change an event reports and returns its resource; the caller holds s.mu.
func (s *Server) apply(eventType string, c *capture) (resourceType string, resource map[string]any, summary string, err error) {
	amount := formatValue(c.amount, currencies[c.currency].paypal) + " " + c.currency
	switch eventType {
	case EventCaptureCompleted:
		switch c.status {
		case statusPending:
			s.completeCapture(c)
		case statusCompleted, statusPartiallyRefunded, statusRefunded:
		default:
			return "", nil, "", fmt.Errorf("%w: capture %s is %s", ErrInvalidState, c.id, c.status)
		}
		return "capture", c.json(c.base), "Payment completed for " + amount, nil
	case EventCaptureDenied, EventCaptureDeclined:
		switch c.status {
		case statusPending:
			c.status, c.reason, c.updatedAt = statusDeclined, "", now()
		case statusDeclined:
		default:
			return "", nil, "", fmt.Errorf("%w: capture %s is %s, not pending", ErrInvalidState, c.id, c.status)
		}
		return "capture", c.json(c.base), "A " + amount + " capture payment was denied", nil
	case EventCaptureRefunded:
		remaining := c.amount - c.refunded
		if (c.status != statusCompleted && c.status != statusPartiallyRefunded) || remaining <= 0 {
			return "", nil, "", fmt.Errorf("%w: capture %s is %s, with nothing to refund", ErrInvalidState, c.id, c.status)
		}
		r := s.newRefund(c, remaining, "", "")
		return "refund", r.json(c.base), "A " + formatValue(remaining, currencies[c.currency].paypal) + " " + c.currency +
			" capture payment was refunded", nil
	case EventDisputeCreated:
		switch {
		case c.status != statusCompleted && c.status != statusPartiallyRefunded && c.status != statusRefunded:
			return "", nil, "", fmt.Errorf("%w: capture %s is %s and cannot be disputed", ErrInvalidState, c.id, c.status)
		case c.dispute != nil:
			return "", nil, "", fmt.Errorf("%w: capture %s has a dispute already", ErrInvalidState, c.id)
		}
		at := now()
		c.dispute = &dispute{id: "PP-D-" + digits(8), status: statusOpen, reason: "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", createdAt: at, updatedAt: at}
		return "dispute", c.disputeJSON(), "A new dispute opened with Case # " + c.dispute.id, nil
	default: // EventDisputeResolved
		if c.dispute == nil || c.dispute.status != statusOpen {
			return "", nil, "", fmt.Errorf("%w: capture %s has no open dispute", ErrInvalidState, c.id)
		}
		c.dispute.status, c.dispute.outcome, c.dispute.updatedAt = statusResolved, "RESOLVED_SELLER_FAVOUR", now()
		return "dispute", c.disputeJSON(), "A dispute was resolved with case # " + c.dispute.id, nil
	}
}

// disputeJSON is the capture's dispute as Disputes v1 and webhook events describe it.
func (c *capture) disputeJSON() map[string]any {
	d := c.dispute
	out := map[string]any{
		"dispute_id": d.id, "create_time": stamp(d.createdAt), "update_time": stamp(d.updatedAt),
		"disputed_transactions": []map[string]any{{
			"seller_transaction_id": c.id, "create_time": stamp(c.createdAt), "transaction_status": c.status,
			"gross_amount": money(c.amount, c.currency), "custom": c.order.customID, "seller_protection_eligible": true,
		}},
		"reason": d.reason, "status": d.status, "dispute_amount": money(c.amount, c.currency),
		"dispute_life_cycle_stage": "INQUIRY", "dispute_channel": "INTERNAL",
		"links": []map[string]string{link(c.base+"/v1/customer/disputes/"+d.id, "self", http.MethodGet)},
	}
	if d.outcome != "" {
		out["dispute_outcome"] = map[string]any{"outcome_code": d.outcome}
	}
	return out
}

// digits returns n random decimal digits.
func digits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// ResendWebhook posts an event again, as PayPal's retries and its "resend" do: the same event
// in a new transmission, with its own id, time and signature.
func (s *Server) ResendWebhook(ctx context.Context, id string) (Event, error) {
	return s.webhooks.Send(ctx, id)
}

// Events returns copies of the events made so far, oldest first.
func (s *Server) Events() []Event { return s.webhooks.Messages() }

// Sign signs a webhook transmission as the double does: a base64 HMAC-SHA256 under secret of
// "<transmission id>|<transmission time>|<webhook id>|<CRC32 of the event>", PayPal's signed
// string. The event is taken in compact JSON with HTML characters escaped, the form
// encoding/json gives it, because listeners pass the event on to the verify endpoint
// re-encoded; any other change to it fails the check, as at PayPal.
func Sign(secret, transmissionID, transmissionTime, webhookID string, event []byte) string {
	msg := transmissionID + "|" + transmissionTime + "|" + webhookID + "|" + strconv.FormatUint(uint64(crc32.ChecksumIEEE(canonical(event))), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// canonical is event in compact JSON with HTML characters escaped, or unchanged when it is not JSON.
func canonical(event []byte) []byte {
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, event); err != nil {
		return event
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.Bytes()
}

// verifyFields are the fields of a verification request, all required.
var verifyFields = []string{"auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id", "webhook_event"}

// verify is POST /v1/notifications/verify-webhook-signature; the caller holds s.mu. It answers
// SUCCESS only for a transmission signed by the double for the registered webhook id, with the
// event unchanged; FAILURE for anything else that is well formed.
func (s *Server) verify(body map[string]json.RawMessage) answer {
	if a := unknownField(body, verifyFields...); a != nil {
		return *a
	}
	str := map[string]string{}
	for _, name := range verifyFields[:6] {
		var v string
		if err := json.Unmarshal(body[name], &v); err != nil || v == "" {
			return apiError(http.StatusBadRequest, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER", "Invalid request: "+name+" is required.")
		}
		str[name] = v
	}
	event := bytes.TrimSpace(body["webhook_event"])
	if len(event) == 0 || event[0] != '{' {
		return apiError(http.StatusBadRequest, "VALIDATION_ERROR", "INVALID_PARAMETER_SYNTAX", "Invalid request: webhook_event must be an object.")
	}
	status := "FAILURE"
	want := Sign(s.webhookSecret, str["transmission_id"], str["transmission_time"], str["webhook_id"], event)
	if id := s.webhooks.Target().Key; id != "" && str["webhook_id"] == id && str["auth_algo"] == authAlgo &&
		hmac.Equal([]byte(str["transmission_sig"]), []byte(want)) {
		status = "SUCCESS"
	}
	return jsonAnswer(http.StatusOK, map[string]string{"verification_status": status})
}
