// Package analytics sends product-funnel events to Mixpanel, batched, best-effort and
// deduplicated by Mixpanel's $insert_id.
//
// It speaks Mixpanel's documented HTTP ingestion API (POST /track, a JSON array of events
// carrying the project token) with net/http rather than the official Go SDK, because
// github.com/mixpanel/mixpanel-go does not resolve through the module proxy this project builds
// with. /track needs only the project token, which is not a secret, so no API secret or service
// account is held by the worker.
//
// Analytics must never fail or delay a purchase: Track only puts the event on a bounded queue
// (and drops it when the queue is full), and a background loop sends the batches, retries a
// failed one a few times with backoff, and then gives it up.
package analytics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultAPIURL        = "https://api.mixpanel.com"
	DefaultBatchSize     = 50
	DefaultFlushInterval = 2 * time.Second
	DefaultQueueSize     = 1000
	DefaultMaxAttempts   = 4
	DefaultRetryBackoff  = 500 * time.Millisecond
	// MaxBatchSize is the most events Mixpanel's /track accepts in one request.
	MaxBatchSize = 50
)

// recentInsertIDs is how many insert ids the client remembers, so that a retried activity on
// this worker does not even send its event twice; Mixpanel's deduplication covers the rest.
const recentInsertIDs = 4096

// Config configures a Client. An empty Token turns analytics off.
type Config struct {
	// Token is the Mixpanel project token, sent in every event as Mixpanel's /track requires.
	Token string
	// APIURL is the ingestion API's base URL; DefaultAPIURL when empty.
	APIURL string
	// BatchSize is the most events per request, at most MaxBatchSize.
	BatchSize int
	// FlushInterval is how long an incomplete batch waits before it is sent.
	FlushInterval time.Duration
	// QueueSize bounds the events waiting to be sent; Track drops events beyond it.
	QueueSize int
	// MaxAttempts is how many times a batch is sent before it is given up.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry of a batch; it doubles each time.
	RetryBackoff time.Duration
	// HTTPClient sends the requests; one with a 10 s timeout when nil, so a hung endpoint
	// holds a batch for bounded time.
	HTTPClient *http.Client
	// Logger reports dropped batches; slog.Default when nil.
	Logger *slog.Logger
}

// Event is one funnel event.
type Event struct {
	// Name is the event's name, such as checkout_started.
	Name string
	// DistinctID is the customer the event belongs to.
	DistinctID string
	// InsertID makes a resent event a duplicate that Mixpanel drops; see InsertID.
	InsertID string
	// Time is when the event happened; now when zero. A resent event must carry the same time,
	// because Mixpanel deduplicates on event name, distinct_id, time and $insert_id together.
	Time time.Time
	// Properties are the event's own properties. They never hold emails, names, tokens or card data.
	Properties map[string]any
}

// Stats counts what a Client did with the events it was given.
type Stats struct {
	// Sent is the events Mixpanel accepted.
	Sent int64
	// Dropped is the events refused by Track: queue full, duplicate insert id, or invalid.
	Dropped int64
	// Failed is the events in batches given up after their last attempt.
	Failed int64
}

// Client batches events and sends them to Mixpanel in the background. A nil *Client is valid
// and does nothing.
type Client struct {
	cfg      Config
	endpoint string
	log      *slog.Logger

	queue chan Event
	flush chan chan struct{}
	stop  chan struct{}
	done  chan struct{}
	// ctx is canceled when Close gives up waiting, to abort a send or a backoff.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	mu        sync.Mutex
	closed    bool
	seen      map[string]struct{}
	seenOrder []string

	sent, dropped, failed atomic.Int64
}

// New starts a client. With an empty Token it returns nil, a client that does nothing.
func New(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, nil
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("analytics: invalid API URL %q", cfg.APIURL)
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxBatchSize {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.APIURL, "/") + "/track?verbose=1",
		log:      log.With("component", "analytics"),
		queue:    make(chan Event, cfg.QueueSize),
		flush:    make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		seen:     make(map[string]struct{}, recentInsertIDs),
	}
	go c.run()
	return c, nil
}

// Enabled reports whether events are sent at all, so that callers can skip the work of
// building them.
func (c *Client) Enabled() bool { return c != nil }

// Track queues an event and returns at once. An event without a name, distinct id or insert
// id, one whose insert id was tracked recently, or one that finds the queue full is dropped
// and counted.
func (c *Client) Track(e Event) {
	if c == nil {
		return
	}
	if e.Name == "" || e.DistinctID == "" || e.InsertID == "" {
		c.dropped.Add(1)
		c.log.Warn("analytics event dropped: name, distinct id and insert id are required", "event", e.Name)
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.dropped.Add(1)
		return
	}
	if _, dup := c.seen[e.InsertID]; dup {
		c.dropped.Add(1)
		return
	}
	select {
	case c.queue <- e:
		c.remember(e.InsertID)
	default:
		c.dropped.Add(1)
	}
}

// remember records an insert id, forgetting the oldest beyond recentInsertIDs. c.mu is held.
func (c *Client) remember(id string) {
	if len(c.seenOrder) >= recentInsertIDs {
		delete(c.seen, c.seenOrder[0])
		c.seenOrder = c.seenOrder[1:]
	}
	c.seen[id] = struct{}{}
	c.seenOrder = append(c.seenOrder, id)
}

// Flush sends every event queued so far, and waits for it or for ctx.
func (c *Client) Flush(ctx context.Context) error {
	if c == nil {
		return nil
	}
	ack := make(chan struct{})
	select {
	case c.flush <- ack:
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is queued and stops the client. When ctx ends first, the sending is
// abandoned and ctx's error returned. Events tracked after Close are dropped.
func (c *Client) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
	})
	select {
	case <-c.done:
		c.cancel()
		return nil
	case <-ctx.Done():
		c.cancel()
		<-c.done
		return ctx.Err()
	}
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return Stats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load()}
}

// run collects events into batches and sends each when it is full or the flush interval ends.
func (c *Client) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.FlushInterval)
	defer ticker.Stop()
	batch := make([]Event, 0, c.cfg.BatchSize)
	send := func() {
		if len(batch) > 0 {
			c.send(batch)
			batch = make([]Event, 0, c.cfg.BatchSize)
		}
	}
	// drain sends everything already queued.
	drain := func() {
		for {
			select {
			case e := <-c.queue:
				if batch = append(batch, e); len(batch) == c.cfg.BatchSize {
					send()
				}
			default:
				send()
				return
			}
		}
	}
	for {
		select {
		case e := <-c.queue:
			if batch = append(batch, e); len(batch) == c.cfg.BatchSize {
				send()
			}
		case <-ticker.C:
			send()
		case ack := <-c.flush:
			drain()
			close(ack)
		case <-c.stop:
			drain()
			return
		}
	}
}

// send posts a batch, retrying with doubling backoff until it is accepted, refused for good,
// or out of attempts. It never returns an error: analytics is best-effort.
func (c *Client) send(batch []Event) {
	body, err := c.encode(batch)
	if err != nil {
		c.failed.Add(int64(len(batch)))
		c.log.Warn("analytics batch dropped: not encodable", "events", len(batch), "error", err)
		return
	}
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		retry, err := c.post(body)
		if err == nil {
			c.sent.Add(int64(len(batch)))
			return
		}
		if !retry || attempt >= c.cfg.MaxAttempts {
			c.failed.Add(int64(len(batch)))
			c.log.Warn("analytics batch dropped", "events", len(batch), "attempts", attempt, "error", err)
			return
		}
		select {
		case <-time.After(backoff):
		case <-c.ctx.Done():
			c.failed.Add(int64(len(batch)))
			c.log.Warn("analytics batch dropped at shutdown", "events", len(batch), "error", err)
			return
		}
		backoff *= 2
	}
}

// wireEvent is an event as Mixpanel's /track takes it.
type wireEvent struct {
	Event      string         `json:"event"`
	Properties map[string]any `json:"properties"`
}

func (c *Client) encode(batch []Event) ([]byte, error) {
	out := make([]wireEvent, len(batch))
	for i, e := range batch {
		props := make(map[string]any, len(e.Properties)+4)
		for k, v := range e.Properties {
			props[k] = v
		}
		// Set last, so that no property can override them.
		props["token"] = c.cfg.Token
		props["distinct_id"] = e.DistinctID
		props["time"] = e.Time.UnixMilli()
		props["$insert_id"] = e.InsertID
		out[i] = wireEvent{Event: e.Name, Properties: props}
	}
	return json.Marshal(out)
}

// trackAnswer is /track's verbose answer.
type trackAnswer struct {
	Status int     `json:"status"`
	Error  *string `json:"error"`
}

// post sends one request. retry says whether sending it again may succeed: a network error,
// 429 or 5xx may; any other refusal (a malformed event, a wrong token) never will.
func (c *Client) post(body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return c.ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return true, fmt.Errorf("mixpanel answered %s", resp.Status)
	}
	var ans trackAnswer
	if jerr := json.Unmarshal(raw, &ans); jerr != nil {
		// Without verbose, /track answers a bare 1 or 0.
		var n int
		if json.Unmarshal(raw, &n) != nil {
			return false, fmt.Errorf("mixpanel answered %s with an unreadable body", resp.Status)
		}
		ans.Status = n
	}
	if resp.StatusCode >= 300 || ans.Status != 1 {
		msg := "no reason given"
		if ans.Error != nil && *ans.Error != "" {
			msg = *ans.Error
		}
		return false, fmt.Errorf("mixpanel refused the batch (%s): %s", resp.Status, msg)
	}
	return false, nil
}

// InsertID derives an event's $insert_id from what names the event's occurrence (such as the
// workflow ID and the event name), so that an activity retried or re-run sends the same id and
// Mixpanel keeps one event. It fits Mixpanel's limit of 36 alphanumeric characters.
func InsertID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0}) // so that ("ab","c") and ("a","bc") differ
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// EmailID is the anonymous identifier of a customer known only by email: the hex SHA-256 of
// the standardized (trimmed, lower-cased) address, so that the address itself never reaches
// Mixpanel while every event of the same customer shares one id.
func EmailID(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}
