package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
)

// apiError is an error the client can act on: a stable machine-readable code, a message, and
// the field at fault. Every error response is one of these, so the mapping to a status lives here.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// MissingScope, on a 403, is the scope the staff key lacks.
	MissingScope string `json:"missing_scope,omitempty"`
	// invalid marks a request refused for its input, before the endpoint did anything: its
	// Idempotency-Key is forgotten rather than bound to the refusal (see idempotent).
	invalid bool
}

// invalidRequestKey is set on the context when the answer is an invalid-input error.
const invalidRequestKey = "invalid_request"

// errorCodeKey holds the code of the error a request was answered with, for the staff audit.
const errorCodeKey = "error_code"

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Field: field, Message: msg, invalid: true}
}

func unprocessable(code, field, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Code: code, Field: field, Message: msg, invalid: true}
}

var (
	errNotFound         = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such resource"}
	errCheckoutNotFound = &apiError{Status: http.StatusNotFound, Code: "checkout_not_found", Message: "no checkout has this id"}
	errMethodNotAllowed = &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "this method is not allowed here"}
	errBodyTooLarge     = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "the request body is too large", invalid: true}
	// errUnavailable answers every request that a dependency (PostgreSQL, Temporal, a provider
	// asked to verify a webhook) could not serve; writeError adds Retry-After.
	errUnavailable = &apiError{Status: http.StatusServiceUnavailable, Code: "service_unavailable",
		Message: "the service is temporarily unavailable; retry with the same Idempotency-Key"}
	errInternal          = &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "something went wrong on our side"}
	errIdempotencyReused = &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: "Idempotency-Key",
		Message: "this Idempotency-Key was already used for a different request; use a new key for a new request"}
)

// retryAfterSeconds is the Retry-After of a 503: about how long PostgreSQL takes to restart or
// the Temporal frontend to come back, short enough that a storefront retrying keeps its customer.
const retryAfterSeconds = 5

// writeError answers with err as JSON. A dependency that is down is a 503 with Retry-After;
// anything else that is not an apiError is logged with the request id and answered as a plain
// internal error, so internal text never reaches the client.
func writeError(c *gin.Context, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case dependencyDown(err):
		slog.WarnContext(c.Request.Context(), "dependency unavailable", "error", err, "request_id", c.GetString(requestIDKey),
			"route", c.FullPath())
		ae = errUnavailable
	default:
		slog.ErrorContext(c.Request.Context(), "request failed", "error", err, "request_id", c.GetString(requestIDKey),
			"route", c.FullPath())
		ae = errInternal
	}
	if ae.invalid {
		c.Set(invalidRequestKey, true)
	}
	c.Set(errorCodeKey, ae.Code)
	if ae.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": ae})
}

// dependencyDown reports whether err says that PostgreSQL or Temporal could not be reached or
// could not answer in time, as opposed to refusing the request: the same request may succeed
// once the dependency is back, so the client is told to retry rather than shown a 500.
func dependencyDown(err error) bool {
	var (
		connectErr  *pgconn.ConnectError
		pgErr       *pgconn.PgError
		netErr      net.Error
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &connectErr), pgconn.Timeout(err), pgconn.SafeToRetry(err):
		// Dialing failed, the pool's acquire or a query ran out of time, or the request never
		// left (a connection pgx had already found closed among them).
		return true
	case errors.As(err, &pgErr):
		return pgServerUnavailable(pgErr.Code)
	case errors.As(err, &unavailable), errors.As(err, &deadline), errors.As(err, &exhausted):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// A connection cut while the server shut down, or a deadline that ran out on the way.
		return true
	}
	return false
}

// pgServerUnavailable reports whether a SQLSTATE says the server could not serve the session:
// connection exceptions (class 08), shutdown or start-up (57P01-57P03), insufficient resources
// (class 53). Every other code refuses the statement, which a retry would not change.
func pgServerUnavailable(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") ||
		code == "57P01" || code == "57P02" || code == "57P03"
}
