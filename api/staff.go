package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
)

// staffStore is what the staff routes need of the store: the keys, the audit, and the reads
// support staff use.
type staffStore interface {
	staffkey.Store
	BeginStaffAudit(ctx context.Context, a store.StaffAction) (int64, error)
	FinishStaffAudit(ctx context.Context, id int64, outcome string, status int, detail map[string]any) error
	StaffAudit(ctx context.Context, f store.AuditFilter) ([]store.StaffAction, error)
	PaymentsForOrder(ctx context.Context, orderID string) ([]store.Payment, error)
	OrderEvents(ctx context.Context, orderID string) ([]store.OrderEvent, error)
}

// The actions the staff routes write to the audit.
const (
	actionRefundCreate = "refund.create"
	actionOrderRead    = "order.read"
	actionAuditRead    = "audit.read"
)

const (
	// staffKeyIDKey holds the authenticated staff key's id on the gin context.
	staffKeyIDKey = "staff_key_id"
	// auditDetailKey holds what a staff handler adds to its audit row (ids, amounts, codes;
	// never a secret or personal data).
	auditDetailKey = "staff_audit_detail"
	// auditWriteTimeout bounds the write of an action's outcome, which runs even when the client
	// has gone.
	auditWriteTimeout = 5 * time.Second
	// maxAuditTarget bounds the target recorded from the path, which the caller chose.
	maxAuditTarget = 128
)

var errStaffUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
	Message: "a valid staff key is required, as Authorization: Bearer cfsk_…"}

func errStaffForbidden(scope string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "forbidden", MissingScope: scope,
		Message: "this staff key lacks the scope " + scope}
}

// staff guards a staff route: the request needs `Authorization: Bearer <staff key>` with
// scope, and every request that gets past authentication is written to staff_audit as action,
// with the path's id as its target.
//
// An unknown, revoked or missing key is 401 and leaves no audit row (there is no staff member
// to name). A known key without the scope is 403 and is audited as forbidden.
//
// The audit row is written as attempted before the handler runs, and its outcome after: if the
// first write fails the request is refused with 503 before anything is done, so no action runs
// unaudited. If the second fails, the row stays attempted — the action is on record with its
// key, target and time, only its outcome is missing (and logged) — which is why the order is
// this way round rather than one write after the handler, which could lose a refund that ran.
func (s *server) staff(scope, action string) gin.HandlerFunc {
	checker := staffkey.NewChecker(s.store)
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		key, err := checker.Check(ctx, c.GetHeader("Authorization"), scope)
		entry := store.StaffAction{StaffKeyID: key.ID, Action: action, Target: auditTarget(c), RequestID: c.GetString(requestIDKey)}
		var scopeErr *staffkey.ScopeError
		switch {
		case errors.Is(err, staffkey.ErrUnauthenticated):
			c.Header("WWW-Authenticate", `Bearer realm="cartflow-staff"`)
			writeError(c, errStaffUnauthorized)
			return
		case errors.As(err, &scopeErr):
			entry.Outcome, entry.Status = store.AuditForbidden, http.StatusForbidden
			entry.Detail = map[string]any{"missing_scope": scope}
			if _, err := s.store.BeginStaffAudit(ctx, entry); err != nil {
				// Nothing runs either way; the refusal stays a 403, and the lost row is logged.
				s.log.ErrorContext(ctx, "staff audit not written", "error", err, "action", action, "staff_key_id", key.ID)
			}
			writeError(c, errStaffForbidden(scope))
			return
		case err != nil:
			s.log.WarnContext(ctx, "staff key not checked", "error", err)
			writeError(c, errUnavailable)
			return
		}
		auditID, err := s.store.BeginStaffAudit(ctx, entry)
		if err != nil {
			s.log.ErrorContext(ctx, "staff audit not written; action refused", "error", err, "action", action, "staff_key_id", key.ID)
			writeError(c, errUnavailable)
			return
		}
		c.Set(staffKeyIDKey, key.ID)
		if !s.limitStaff(c, key.ID) {
			s.finishAudit(c, auditID, http.StatusTooManyRequests)
			return
		}
		status := http.StatusInternalServerError // what a panic in the handler leaves
		defer func() { s.finishAudit(c, auditID, status) }()
		c.Next()
		status = c.Writer.Status()
	}
}

// finishAudit records how the staff action ended, from the status it answered.
func (s *server) finishAudit(c *gin.Context, id int64, status int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), auditWriteTimeout)
	defer cancel()
	detail, _ := c.Value(auditDetailKey).(map[string]any)
	if detail == nil {
		detail = map[string]any{}
	}
	if code := c.GetString(errorCodeKey); code != "" {
		detail["error_code"] = code
	}
	if c.Writer.Header().Get("Idempotent-Replayed") == "true" {
		detail["replayed"] = true
	}
	if err := s.store.FinishStaffAudit(ctx, id, auditOutcome(status), status, detail); err != nil {
		s.log.ErrorContext(ctx, "staff audit outcome not written", "error", err, "audit_id", id, "status", status)
	}
}

func auditOutcome(status int) string {
	switch {
	case status == http.StatusAccepted:
		return store.AuditPending
	case status < 300:
		return store.AuditSucceeded
	case status < 500:
		return store.AuditRefused
	}
	return store.AuditFailed
}

func auditTarget(c *gin.Context) string {
	t := c.Param("id")
	if len(t) > maxAuditTarget {
		t = t[:maxAuditTarget]
	}
	return t
}

// auditNote adds a fact to the staff action's audit row: an id, an amount, a code.
func auditNote(c *gin.Context, key string, value any) {
	d, _ := c.Value(auditDetailKey).(map[string]any)
	if d == nil {
		d = map[string]any{}
		c.Set(auditDetailKey, d)
	}
	d[key] = value
}

// staffOrder answers GET /api/v1/staff/orders/{id}: an order with its lines, its ledger rows
// and its provider events, for support.
func (s *server) staffOrder(c *gin.Context) {
	ctx := c.Request.Context()
	o, ok := s.orderParam(c, "")
	if !ok {
		return
	}
	payments, err := s.store.PaymentsForOrder(ctx, o.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	events, err := s.store.OrderEvents(ctx, o.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	out := gin.H{
		"id": o.ID, "checkout_id": o.CheckoutID, "workflow_id": o.WorkflowID, "status": o.Status,
		"email": o.Email, "name": o.Name, "user_id": o.UserID,
		"total_amount": o.TotalAmount, "currency": o.Currency, "refunded_amount": o.RefundedAmount,
		"provider": o.Provider, "provider_payment_ref": o.ProviderPaymentRef, "lines": o.Lines,
		"created_at": o.CreatedAt, "updated_at": o.UpdatedAt, "completed_at": o.CompletedAt,
	}
	if o.FailureCode != "" {
		out["failure"] = gin.H{"code": o.FailureCode, "decline_code": o.DeclineCode, "message": o.FailureMessage}
	}
	ledger := make([]gin.H, 0, len(payments))
	for _, p := range payments {
		ledger = append(ledger, gin.H{
			"kind": p.Kind, "provider": p.Provider, "idempotency_key": p.IdempotencyKey, "amount": p.Amount, "currency": p.Currency,
			"status": p.Status, "provider_ref": p.ProviderRef, "failure_code": p.FailureCode, "decline_code": p.DeclineCode,
			"attempts": p.Attempts,
		})
	}
	if events == nil {
		events = []store.OrderEvent{}
	}
	// Support reads hold a customer's details: no cache may keep them.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"order": out, "payments": ledger, "events": events})
}

const (
	defaultAuditPage = 50
	maxAuditPage     = 200
)

// staffAudit answers GET /api/v1/staff/audit: the audit rows, newest first, in pages
// (?before=<id of the last row seen>, ?limit=), optionally for one staff_key_id or target.
func (s *server) staffAudit(c *gin.Context) {
	f := store.AuditFilter{Limit: defaultAuditPage, StaffKeyID: c.Query("staff_key_id"), Target: c.Query("target")}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(c, badRequest("invalid_cursor", "before", "before must be the positive id of an audit row"))
			return
		}
		f.Before = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			writeError(c, badRequest("invalid_limit", "limit", "limit must be a number from 1 to 200"))
			return
		}
		f.Limit = n
	}
	entries, err := s.store.StaffAudit(c.Request.Context(), f)
	if err != nil {
		writeError(c, err)
		return
	}
	resp := gin.H{"entries": entries}
	if len(entries) == f.Limit {
		resp["next_before"] = entries[len(entries)-1].ID
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, resp)
}
