package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/store"
)

// Idempotency-Keys, with Stripe's semantics, on every mutating endpoint. The rule for a new
// endpoint: put s.idempotent on its route, after limitBody (and after auth, so that an
// unauthorized caller cannot take a key), and make its handler safe to run again for the same
// key (workflow IDs from the key), because an answer that is not final runs it again.
//
//   - A key belongs to its first request: the scope (method, route and path parameters) and the
//     fingerprint of the body. The same key with another body, or on another endpoint or
//     resource, gets 422 idempotency_key_reused, and nothing runs.
//   - The first final answer is stored in Postgres (idempotency_keys) and every repeat gets it
//     again byte for byte, with Idempotent-Replayed: true, however long ago the workflow behind
//     it ran (Temporal forgets closed workflows after its retention; the table keeps keys at
//     least 30 days).
//   - While a request runs, it holds the key for idempotencyLease; a repeat gets 409
//     request_in_progress with Retry-After. A BFF that dies mid-request frees the key when the
//     lease runs out.
//   - Final answers are the 2xx but 202, and the 4xx but 429. Unlike Stripe, which stores 500s
//     too, a 202 (still running) or a 5xx (a dependency down, or our bug) is not stored: the key
//     is released, and a repeat runs the handler again, which joins the workflow the key started.
//   - As with Stripe, a request refused for its input (a validation error, see apiError.invalid)
//     did nothing, so its key is forgotten and may be sent again with a corrected request.

// idempotencyKeys is the part of the store that keeps Idempotency-Keys.
type idempotencyKeys interface {
	ClaimIdempotencyKey(ctx context.Context, req store.IdempotencyRequest, lease time.Duration) (store.IdempotencyClaim, error)
	SaveIdempotentResponse(ctx context.Context, key string, resp store.IdempotentResponse) error
	ReleaseIdempotencyKey(ctx context.Context, key string, lockedUntil time.Time) error
	ForgetIdempotencyKey(ctx context.Context, key string, lockedUntil time.Time) error
}

var errRequestInProgress = &apiError{Status: http.StatusConflict, Code: "request_in_progress", Field: "Idempotency-Key",
	Message: "a request with this Idempotency-Key is still being processed; retry it shortly"}

const (
	// maxStoredResponse bounds the answer kept under a key; a larger one is answered but not
	// stored, and a repeat runs the handler again.
	maxStoredResponse = 1 << 20
	// keyWriteTimeout bounds the writes that settle a key after the handler, which run even when
	// the client has gone.
	keyWriteTimeout = 5 * time.Second
	// inProgressRetryAfter is what a repeat under a held key is told: the holder usually answers
	// within CheckoutWait, long before its lease ends.
	inProgressRetryAfter = "1"
)

// idempotencyLease is how long a request holds its key: longer than a handler can take (a
// checkout waits CheckoutWait for the outcome, then up to CheckoutWait more to describe the
// workflow), short enough that a key held by a BFF that died is free again soon.
func (s *server) idempotencyLease() time.Duration { return 2*s.cfg.CheckoutWait + 30*time.Second }

// notStoredHeaders are the response headers that describe one answer rather than the result.
var notStoredHeaders = []string{"X-Request-Id", "Idempotent-Replayed", "Retry-After", "Date", "Content-Length"}

// idempotent is the middleware of every mutating endpoint: it requires an Idempotency-Key and
// runs the rest of the chain at most once per key, replaying the stored answer to repeats.
func (s *server) idempotent(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if err := validIdempotencyKey(key); err != nil {
		writeError(c, err)
		return
	}
	raw, err := readBody(c.Request.Body)
	if err != nil {
		writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	scope := idempotencyScope(c)
	claim, err := s.store.ClaimIdempotencyKey(ctx, store.IdempotencyRequest{
		Key: key, Scope: scope, Fingerprint: requestFingerprint(scope, raw),
	}, s.idempotencyLease())
	if err != nil {
		s.log.WarnContext(ctx, "idempotency key not checked", "error", err, "route", c.FullPath())
		writeError(c, errUnavailable)
		return
	}
	switch claim.Outcome {
	case store.IdempotencyMismatch:
		writeError(c, errIdempotencyReused)
		return
	case store.IdempotencyInProgress:
		c.Header("Retry-After", inProgressRetryAfter)
		writeError(c, errRequestInProgress)
		return
	case store.IdempotencyReplay:
		replayResponse(c, claim.Response)
		return
	}

	c.Request.Body = io.NopCloser(bytes.NewReader(raw))
	w := &capturingWriter{ResponseWriter: c.Writer}
	c.Writer = w
	settled := false
	defer func() {
		// A panic leaves no answer to store; recoverJSON answers 500 further out.
		if !settled {
			s.settleKey(c, key, claim.LockedUntil, nil)
		}
	}()
	c.Next()
	settled = true
	s.settleKey(c, key, claim.LockedUntil, w)
}

// settleKey stores the handler's answer under key when it is final, forgets the key when the
// request was refused for its input, and releases it otherwise (w is nil after a panic).
func (s *server) settleKey(c *gin.Context, key string, lockedUntil time.Time, w *capturingWriter) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), keyWriteTimeout)
	defer cancel()
	var err error
	switch {
	case w != nil && c.GetBool(invalidRequestKey):
		err = s.store.ForgetIdempotencyKey(ctx, key, lockedUntil)
	case w != nil && finalStatus(w.Status()) && !w.overflow:
		err = s.store.SaveIdempotentResponse(ctx, key, store.IdempotentResponse{
			Status: w.Status(), Header: storedHeader(w.Header()), Body: w.body.Bytes(),
		})
	default:
		err = s.store.ReleaseIdempotencyKey(ctx, key, lockedUntil)
	}
	if err != nil {
		// The key stays held until its lease runs out; then a repeat runs the handler again.
		s.log.WarnContext(ctx, "idempotency key not settled", "error", err, "route", c.FullPath())
	}
}

// finalStatus reports whether an answer is the request's result for good, to be replayed to
// every repeat: 202 is still running, 429 and 5xx say nothing about the request itself.
func finalStatus(status int) bool {
	switch {
	case status == http.StatusAccepted:
		return false
	case status >= 200 && status < 300:
		return true
	case status == http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

// idempotencyScope is the endpoint and the resource a request acts on: the method, the route
// and its path parameters, so that one key cannot name two endpoints or two resources.
func idempotencyScope(c *gin.Context) string {
	var b strings.Builder
	b.WriteString(c.Request.Method + " " + c.FullPath())
	for _, p := range c.Params {
		b.WriteString(" " + p.Key + "=" + p.Value)
	}
	// A customer's key is theirs: another customer's request under it is another request.
	if id := c.GetString(customerIDKey); id != "" {
		b.WriteString(" customer=" + id)
	}
	return b.String()
}

// requestFingerprint identifies a request within its scope: a SHA-256 over the scope and the
// body, canonical when it is JSON, so that white space and the order of object keys do not
// make a repeat look like another request.
func requestFingerprint(scope string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(canonicalBody(body))
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalBody is a JSON body re-encoded with sorted keys and no white space, numbers as they
// were written; any other body is itself. Invalid UTF-8 is kept as sent, because decoding would
// replace it and make two different bodies one.
func canonicalBody(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if !utf8.Valid(trimmed) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return body
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return canonical
}

// replayResponse answers with a stored answer, byte for byte.
func replayResponse(c *gin.Context, resp store.IdempotentResponse) {
	for k, v := range resp.Header {
		c.Writer.Header()[k] = v
	}
	c.Header("Idempotent-Replayed", "true")
	c.Writer.WriteHeader(resp.Status)
	_, _ = c.Writer.Write(resp.Body)
	c.Abort()
}

// storedHeader is the part of a response's header that belongs to its result.
func storedHeader(h http.Header) map[string][]string {
	out := h.Clone()
	for _, k := range notStoredHeaders {
		delete(out, k)
	}
	return out
}

// capturingWriter keeps a copy of what the handler writes, up to maxStoredResponse.
type capturingWriter struct {
	gin.ResponseWriter
	body     bytes.Buffer
	overflow bool
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	w.capture(b)
	return w.ResponseWriter.Write(b)
}

func (w *capturingWriter) WriteString(s string) (int, error) {
	w.capture([]byte(s))
	return w.ResponseWriter.WriteString(s)
}

func (w *capturingWriter) capture(b []byte) {
	if w.overflow || w.body.Len()+len(b) > maxStoredResponse {
		w.overflow = true
		return
	}
	w.body.Write(b)
}
