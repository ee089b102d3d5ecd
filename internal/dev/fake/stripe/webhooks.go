package stripe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// This file sends Stripe's webhook events for what happens outside any API request (a customer
// finishing 3-D Secure), so that a local stack hears of it the way it would from Stripe.

// WebhookDelivery is one event sent, or being sent, to the webhook URL, as recorded for tests.
type WebhookDelivery struct {
	EventID string `json:"event_id"`
	// Type is the Stripe event type, such as payment_intent.succeeded.
	Type          string `json:"type"`
	PaymentIntent string `json:"payment_intent"`
	URL           string `json:"url"`
	Attempts      int    `json:"attempts"`
	// Status is the HTTP status the last attempt got; 0 when it got none.
	Status    int  `json:"status"`
	Delivered bool `json:"delivered"`
	// Done says no attempt is left: the event was delivered, or given up on.
	Done bool `json:"done"`
	// Error is why the last attempt failed, if it did.
	Error string `json:"error,omitempty"`
	// Payload is the event JSON that was signed and sent.
	Payload json.RawMessage `json:"payload"`
}

// webhookRetryDelays are the waits before each attempt. Stripe retries for days; a local layer
// tries three times within a few seconds, enough to ride over a BFF that is just restarting.
var webhookRetryDelays = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second}

// newOutbox returns the outbox of the proxy's events, keyed with the endpoint's signing secret.
// An event goes to the endpoint set when it happened, as at Stripe, and every attempt is signed
// anew: Stripe's signature carries the time it was made, which receivers check.
func newOutbox(log *slog.Logger) *kit.Outbox[WebhookDelivery, string] {
	return kit.NewOutbox(kit.OutboxConfig[WebhookDelivery, string]{
		// Its own client: a webhook receiver must not share stripe-mock's connections or timeout.
		Name: "stripefake", Client: &http.Client{Timeout: 10 * time.Second}, Logger: log,
		Build: func(d WebhookDelivery, to kit.Target[string]) kit.Post {
			at := time.Now()
			h := http.Header{}
			h.Set("Stripe-Signature", SignatureHeader(d.Payload, to.Key, at))
			h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
			return kit.Post{At: at, URL: to.URL, ContentType: "application/json; charset=utf-8", Body: d.Payload, Header: h}
		},
		View: func(m kit.Message[WebhookDelivery]) WebhookDelivery {
			d := m.Event
			d.URL, d.Attempts, d.Done, d.Payload = m.URL, len(m.Deliveries), m.Done, bytes.Clone(d.Payload)
			if n := len(m.Deliveries); n > 0 {
				last := m.Deliveries[n-1]
				d.Status, d.Error, d.Delivered = last.Status, last.Error, last.Error == ""
			}
			return d
		},
		LogAttrs: func(d WebhookDelivery) []any { return []any{"event", d.EventID, "type", d.Type} },
		Retries:  webhookRetryDelays,
		Pinned:   true,
	})
}

// SetWebhook makes the proxy send Stripe's events to rawURL, signed with secret (whsec_…) the way
// Stripe signs them, like a webhook endpoint registered at Stripe. An empty rawURL stops sending.
// Events are sent asynchronously, with retries; WebhookDeliveries tells what became of them.
func (p *Proxy) SetWebhook(rawURL, secret string) error {
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("stripefake: invalid webhook URL %q", rawURL)
		}
		if secret == "" {
			// An empty key is one anybody can sign with.
			return errors.New("stripefake: a webhook needs a signing secret")
		}
	}
	if rawURL == "" {
		secret = ""
	}
	p.webhooks.SetTarget(rawURL, secret)
	return nil
}

// WebhookDeliveries returns copies of the webhook deliveries, oldest first.
func (p *Proxy) WebhookDeliveries() []WebhookDelivery { return p.webhooks.Messages() }

// queueWebhook sends an event about the PaymentIntent to the webhook, if one is set, in the
// background; the caller holds p.mu, so that the event is listed with the change it reports.
func (p *Proxy) queueWebhook(eventType, piID string, object []byte) {
	if p.webhooks.Target().URL == "" {
		return
	}
	id := newID("evt_")
	payload, err := EventPayload(id, eventType, object)
	if err != nil {
		p.log.Error("stripe webhook event not built", "type", eventType, "payment_intent", piID, "err", err)
		return
	}
	p.webhooks.Add(id, WebhookDelivery{EventID: id, Type: eventType, PaymentIntent: piID, Payload: payload})
	p.webhooks.Queue(id)
}

// EventPayload is the Stripe event with this id and type about object (a PaymentIntent's JSON, say), as
// Stripe posts it to a webhook endpoint; the layer's own events and tests that play Stripe's
// part build them alike.
func EventPayload(id, eventType string, object json.RawMessage) ([]byte, error) {
	return json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(),
		"data": map[string]any{"object": object}, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": eventType,
	})
}

// SignatureHeader is the Stripe-Signature header of a post of payload made at at, signed with the
// endpoint's secret (whsec_…) as Stripe signs it. The signature covers the time, which receivers
// check, so each post is signed anew.
func SignatureHeader(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// serveSetWebhook is POST /__cartflow/webhook with {"url":"…","secret":"whsec_…"}; an empty url
// stops sending.
func (p *Proxy) serveSetWebhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	if !readJSON(w, r, &body, "webhook") {
		return
	}
	if err := p.SetWebhook(body.URL, body.Secret); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
