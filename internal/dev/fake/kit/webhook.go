package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The doubles' webhooks differ in their wire format and signature and agree in everything
// else, which the Outbox does once: a message is made once and posted any number of times (a
// provider's retries and resends repeat the same event), every post is recorded for tests, and
// each post is built anew, since some providers sign the post rather than the event.

// Delivery is one post of a webhook message, as the doubles record it for tests.
type Delivery struct {
	At  time.Time `json:"at"`
	URL string    `json:"url"`
	// TransmissionID is the provider's own id of this one post (PayPal's
	// PAYPAL-TRANSMISSION-ID); empty, and left out of the JSON, for providers whose posts carry
	// none.
	TransmissionID string `json:"transmission_id,omitempty"`
	// Status is the receiver's HTTP status; 0 when no answer came.
	Status int `json:"status"`
	// Response is the start of the receiver's answer (at most 1 KiB).
	Response string `json:"response,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Post is one webhook post to make, as a double's OutboxConfig.Build makes it.
type Post struct {
	// At is when the post is made, recorded on the Delivery; a signature may cover it.
	At time.Time
	// URL is where the post goes; empty fails it with OutboxConfig.NoURL.
	URL string
	// TransmissionID is recorded on the Delivery, for providers that give each post an id.
	TransmissionID string
	ContentType    string
	Body           []byte
	// Header holds the post's own headers, such as its signature.
	Header http.Header
}

// Target is where a double's webhook messages go and the key that signs them, of the double's
// own type K: a secret, an API key pair, a listener id.
type Target[K any] struct {
	URL string
	Key K
}

// Message is one webhook message of an Outbox and what became of its posts, which
// OutboxConfig.View turns into what the double hands out.
type Message[M any] struct {
	ID string
	// Event is the double's description of the message, which its posts are built from.
	Event M
	// URL is the target's when the message was made: where a pinned outbox posts it.
	URL string
	// Deliveries are its posts, oldest first; never nil, so that the JSON lists none as [].
	Deliveries []Delivery
	// Done says that no post is under way or will be made by itself: the last one succeeded,
	// or it failed and only a resend will try again.
	Done bool
}

// OutboxConfig configures an Outbox for one double.
type OutboxConfig[M, K any] struct {
	// Name starts the outbox's error messages and log lines ("braintreefake").
	Name string
	// Client posts; nil uses a client with a 10-second timeout.
	Client *http.Client
	// Logger records every post; nil logs nothing.
	Logger *slog.Logger
	// NoURL is the error of a post while no destination is set; nil makes one from Name.
	NoURL error
	// NotFound is the error of a Send of an id the outbox does not hold; nil makes one from Name.
	NotFound func(id string) error
	// Build makes a post of a message to a target in the provider's wire format, signed as the
	// provider signs it. It is called for every post and must not call back into the outbox.
	Build func(m M, to Target[K]) Post
	// View is a message as the outbox hands it out: its event with what became of its posts
	// filled in. Nil hands out the bare event.
	View func(m Message[M]) M
	// LogAttrs are what the log line of a post says about its message.
	LogAttrs func(m M) []any
	// Retries are the waits before each of the attempts Queue makes, the first usually 0.
	// Empty, Queue makes one attempt at once.
	Retries []time.Duration
	// Pinned posts a message, its retries and resends included, to the target current when it
	// was made, as Stripe sends an event to the endpoints registered when it happened; otherwise
	// every post goes to the target current at that post, as a resend from a dashboard does.
	Pinned bool
}

// Outbox holds a double's webhook messages of its own type M, posts them to a Target whose key
// is of type K, and records every post. It locks itself and never calls the double while
// locked, so a double may call it while holding its own lock.
type Outbox[M, K any] struct {
	cfg    OutboxConfig[M, K]
	client *http.Client
	log    *slog.Logger

	mu       sync.Mutex
	target   Target[K]
	messages []*entry[M, K]
}

type entry[M, K any] struct {
	msg    Message[M]
	target Target[K] // when it was made, for a pinned outbox
}

// NewOutbox returns an empty Outbox with no target.
func NewOutbox[M, K any](cfg OutboxConfig[M, K]) *Outbox[M, K] {
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.NoURL == nil {
		cfg.NoURL = errors.New(cfg.Name + ": no webhook destination is set")
	}
	if cfg.NotFound == nil {
		cfg.NotFound = func(id string) error { return fmt.Errorf("%s: no webhook message %s", cfg.Name, id) }
	}
	if cfg.View == nil {
		cfg.View = func(m Message[M]) M { return m.Event }
	}
	if cfg.LogAttrs == nil {
		cfg.LogAttrs = func(M) []any { return nil }
	}
	return &Outbox[M, K]{cfg: cfg, client: client, log: Logger(cfg.Logger)}
}

// SetTarget sets where messages are posted and the key that signs them.
func (o *Outbox[M, K]) SetTarget(url string, key K) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.target = Target[K]{URL: url, Key: key}
}

// Target is where messages are posted; the zero Target before SetTarget.
func (o *Outbox[M, K]) Target() Target[K] {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.target
}

// Add records a message with no posts yet, for Send or Queue to post.
func (o *Outbox[M, K]) Add(id string, event M) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.messages = append(o.messages, &entry[M, K]{
		msg:    Message[M]{ID: id, Event: event, URL: o.target.URL, Deliveries: []Delivery{}},
		target: o.target,
	})
}

// Send posts the message once, now, and returns its View with the post recorded, and an error
// when the post did not reach the receiver or the receiver answered other than 2xx. Sending a
// message again is a resend of the same event, as a provider's retries are. An id the outbox
// does not hold returns the zero M.
func (o *Outbox[M, K]) Send(ctx context.Context, id string) (M, error) {
	e := o.find(id)
	if e == nil {
		var zero M
		return zero, o.cfg.NotFound(id)
	}
	return o.attempt(ctx, e, true)
}

// Queue posts the message in the background, waiting the configured Retries before each
// attempt, until the receiver takes it or the attempts run out; Done then says so. Queuing an
// id the outbox does not hold does nothing.
func (o *Outbox[M, K]) Queue(id string) {
	e := o.find(id)
	if e == nil {
		return
	}
	delays := o.cfg.Retries
	if len(delays) == 0 {
		delays = []time.Duration{0}
	}
	go func() {
		for i, delay := range delays {
			time.Sleep(delay)
			if _, err := o.attempt(context.Background(), e, i == len(delays)-1); err == nil {
				return
			}
		}
	}()
}

// Messages returns the View of every message, oldest first.
func (o *Outbox[M, K]) Messages() []M {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Map(o.messages, o.view)
}

// Clear forgets the messages; posts under way finish unrecorded.
func (o *Outbox[M, K]) Clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.messages = nil
}

func (o *Outbox[M, K]) find(id string) *entry[M, K] {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := slices.IndexFunc(o.messages, func(e *entry[M, K]) bool { return e.msg.ID == id })
	if i < 0 {
		return nil
	}
	return o.messages[i]
}

// view is the View of a copy of e; the caller holds o.mu.
func (o *Outbox[M, K]) view(e *entry[M, K]) M {
	m := e.msg
	m.Deliveries = slices.Clone(e.msg.Deliveries)
	return o.cfg.View(m)
}

// attempt makes one post of e and records it; last says that no retry follows a failure.
func (o *Outbox[M, K]) attempt(ctx context.Context, e *entry[M, K], last bool) (M, error) {
	o.mu.Lock()
	to, event := o.target, e.msg.Event
	if o.cfg.Pinned {
		to = e.target
	}
	o.mu.Unlock()
	p := o.cfg.Build(event, to)
	d := Delivery{At: p.At, URL: p.URL, TransmissionID: p.TransmissionID}
	err := o.post(ctx, p, &d)
	if err != nil {
		d.Error = err.Error()
	}
	o.mu.Lock()
	e.msg.Deliveries = append(e.msg.Deliveries, d)
	e.msg.Done = err == nil || last
	attempts, out := len(e.msg.Deliveries), o.view(e)
	o.mu.Unlock()
	attrs := append(o.cfg.LogAttrs(event), "status", d.Status, "attempt", attempts)
	if err != nil {
		o.log.Warn(o.cfg.Name+" webhook not delivered", append(attrs, "error", d.Error)...)
	} else {
		o.log.Info(o.cfg.Name+" webhook delivered", attrs...)
	}
	return out, err
}

func (o *Outbox[M, K]) post(ctx context.Context, p Post, d *Delivery) error {
	if p.URL == "" {
		return o.cfg.NoURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("%s: webhook request: %w", o.cfg.Name, err)
	}
	maps.Copy(req.Header, p.Header)
	req.Header.Set("Content-Type", p.ContentType)
	resp, err := o.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: webhook delivery: %w", o.cfg.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	d.Status, d.Response = resp.StatusCode, string(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: the webhook receiver answered %d", o.cfg.Name, resp.StatusCode)
	}
	return nil
}
