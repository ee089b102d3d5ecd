package stripe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

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

type webhookTarget struct{ url, secret string }

type webhookJob struct {
	delivery *WebhookDelivery
	target   webhookTarget
}

// webhookRetryDelays are the waits before each attempt. Stripe retries for days; a local layer
// tries three times within a few seconds, enough to ride over a BFF that is just restarting.
var webhookRetryDelays = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second}

// SetWebhook makes the proxy send Stripe's events to rawURL, signed with secret (whsec_…) the way
// Stripe signs them, like a webhook endpoint registered at Stripe. An empty rawURL stops sending.
// Events are sent asynchronously, with retries; WebhookDeliveries tells what became of them.
func (p *Proxy) SetWebhook(rawURL, secret string) error {
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("stripeproxy: invalid webhook URL %q", rawURL)
		}
		if secret == "" {
			// An empty key is one anybody can sign with.
			return errors.New("stripeproxy: a webhook needs a signing secret")
		}
	}
	if rawURL == "" {
		secret = ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.webhook = webhookTarget{url: rawURL, secret: secret}
	return nil
}

// WebhookDeliveries returns copies of the webhook deliveries, oldest first.
func (p *Proxy) WebhookDeliveries() []WebhookDelivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]WebhookDelivery, 0, len(p.deliveries))
	for _, d := range p.deliveries {
		c := *d
		c.Payload = bytes.Clone(d.Payload)
		out = append(out, c)
	}
	return out
}

// queueWebhook records an event about the PaymentIntent for the webhook, if one is set, and
// returns the job for deliver, which the caller starts once it has released p.mu.
func (p *Proxy) queueWebhook(eventType, piID string, object []byte) *webhookJob {
	if p.webhook.url == "" {
		return nil
	}
	id := newID("evt_")
	payload, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(),
		"data": map[string]any{"object": json.RawMessage(object)}, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": eventType,
	})
	if err != nil {
		p.log.Error("stripe webhook event not built", "type", eventType, "payment_intent", piID, "err", err)
		return nil
	}
	d := &WebhookDelivery{EventID: id, Type: eventType, PaymentIntent: piID, URL: p.webhook.url, Payload: payload}
	p.deliveries = append(p.deliveries, d)
	return &webhookJob{delivery: d, target: p.webhook}
}

// deliver sends the job's event until the receiver answers 2xx or the attempts run out, signing
// each attempt anew: Stripe's signature carries the time it was made, which receivers check.
func (p *Proxy) deliver(job *webhookJob) {
	d := job.delivery
	for _, delay := range webhookRetryDelays {
		time.Sleep(delay)
		status, err := p.postWebhook(job.target, d.Payload)
		p.mu.Lock()
		d.Attempts++
		d.Status, d.Error = status, ""
		if err != nil {
			d.Error = err.Error()
		} else if status < 200 || status > 299 {
			d.Error = fmt.Sprintf("the receiver answered %d", status)
		}
		d.Delivered = d.Error == ""
		d.Done = d.Delivered || d.Attempts == len(webhookRetryDelays)
		attempt, failure := d.Attempts, d.Error
		p.mu.Unlock()
		if failure == "" {
			p.log.Info("stripe webhook delivered", "event", d.EventID, "type", d.Type, "status", status, "attempt", attempt)
			return
		}
		p.log.Warn("stripe webhook not delivered", "event", d.EventID, "type", d.Type, "attempt", attempt, "err", failure)
	}
}

func (p *Proxy) postWebhook(t webhookTarget, payload []byte) (int, error) {
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: t.secret, Timestamp: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", signed.Header)
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	res, err := p.webhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	return res.StatusCode, nil
}

// serveSetWebhook is POST /__cartflow/webhook with {"url":"…","secret":"whsec_…"}; an empty url
// stops sending.
func (p *Proxy) serveSetWebhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		http.Error(w, "invalid webhook: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := p.SetWebhook(body.URL, body.Secret); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
