package kit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Delivery is one post of a webhook message, as the doubles record it for tests.
type Delivery struct {
	At  time.Time `json:"at"`
	URL string    `json:"url"`
	// Status is the receiver's HTTP status; 0 when no answer came.
	Status int `json:"status"`
	// Response is the start of the receiver's answer (at most 1 KiB).
	Response string `json:"response,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Post is one webhook post to make.
type Post struct {
	// At is when the post is made, recorded on the Delivery; a signature may cover it.
	At          time.Time
	URL         string
	ContentType string
	Body        []byte
	// Header, when set, adds the headers of this one post, such as a signature that covers the
	// post's own time or id: providers sign every delivery anew.
	Header func(http.Header)
}

// Deliverer posts a double's webhook messages.
type Deliverer struct {
	client *http.Client
	name   string
	noURL  error
}

// NewDeliverer returns a Deliverer posting with client (nil: a client with a 10-second timeout).
// name starts its error messages ("braintreemock"); noURL is the error for a post with no
// destination set.
func NewDeliverer(client *http.Client, name string, noURL error) *Deliverer {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Deliverer{client: client, name: name, noURL: noURL}
}

// Deliver makes the post once and returns its record, and an error when it did not reach the
// receiver or the receiver answered other than 2xx. A single attempt: the doubles resend on
// request (ResendWebhook), so that tests decide when a retry happens.
func (d *Deliverer) Deliver(ctx context.Context, p Post) (Delivery, error) {
	rec := Delivery{At: p.At, URL: p.URL}
	err := d.post(ctx, p, &rec)
	if err != nil {
		rec.Error = err.Error()
	}
	return rec, err
}

func (d *Deliverer) post(ctx context.Context, p Post, rec *Delivery) error {
	if p.URL == "" {
		return d.noURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("%s: webhook request: %w", d.name, err)
	}
	req.Header.Set("Content-Type", p.ContentType)
	if p.Header != nil {
		p.Header(req.Header)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: webhook delivery: %w", d.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	rec.Status, rec.Response = resp.StatusCode, string(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: the webhook receiver answered %d", d.name, resp.StatusCode)
	}
	return nil
}
