package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// apiError is an error the client can act on: a stable machine-readable code, a message, and
// the field at fault. Every error response is one of these, so the mapping to a status lives here.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// invalid marks a request refused for its input, before the endpoint did anything: its
	// Idempotency-Key is forgotten rather than bound to the refusal (see idempotent).
	invalid bool
}

// invalidRequestKey is set on the context when the answer is an invalid-input error.
const invalidRequestKey = "invalid_request"

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Field: field, Message: msg, invalid: true}
}

func unprocessable(code, field, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Code: code, Field: field, Message: msg, invalid: true}
}

var (
	errNotFound          = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such resource"}
	errCheckoutNotFound  = &apiError{Status: http.StatusNotFound, Code: "checkout_not_found", Message: "no checkout has this id"}
	errMethodNotAllowed  = &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "this method is not allowed here"}
	errBodyTooLarge      = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "the request body is too large", invalid: true}
	errUnavailable       = &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Message: "the service is temporarily unavailable; retry with the same Idempotency-Key"}
	errInternal          = &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "something went wrong on our side"}
	errIdempotencyReused = &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: "Idempotency-Key",
		Message: "this Idempotency-Key was already used for a different request; use a new key for a new request"}
)

// writeError answers with err as JSON. Anything that is not an apiError is logged with the
// request id and answered as a plain internal error, so internal text never reaches the client.
func writeError(c *gin.Context, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		slog.ErrorContext(c.Request.Context(), "request failed", "error", err, "request_id", c.GetString(requestIDKey),
			"route", c.FullPath())
		ae = errInternal
	}
	if ae.invalid {
		c.Set(invalidRequestKey, true)
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": ae})
}
