package main

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/workflows"
)

var (
	errUnknownWebhook = &apiError{Status: http.StatusNotFound, Code: "unknown_provider", Message: "no webhook endpoint for this provider"}
	errBadSignature   = &apiError{Status: http.StatusBadRequest, Code: "invalid_signature", Message: "the webhook signature could not be verified"}
	errOrderNotFound  = &apiError{Status: http.StatusNotFound, Code: "order_not_found", Message: "no order has this id"}
	errNotWaiting     = &apiError{Status: http.StatusConflict, Code: "not_waiting_for_authentication",
		Message: "this checkout is not waiting for authentication"}
)

// receiveWebhook verifies a provider's webhook with that provider's own scheme and hands the
// event to a ProviderEvent workflow, whose ID is the provider's event id: the workflow stores
// the event once and applies it, and a redelivery joins the first delivery's workflow. The
// provider gets its 2xx as soon as the workflow has started. A request that cannot be
// verified gets a 400 and nothing is stored or started.
func (s *server) receiveWebhook(c *gin.Context) {
	provider := c.Param("provider")
	verifier, ok := s.webhooks[provider]
	if !ok {
		writeError(c, errUnknownWebhook)
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		if isBodyTooLarge(err) {
			writeError(c, errBodyTooLarge)
			return
		}
		writeError(c, badRequest("unreadable_body", "", "the request body could not be read"))
		return
	}
	event, err := verifier.Verify(c.Request.Context(), c.Request.Header, body)
	if errors.Is(err, billing.ErrBadSignature) {
		s.log.WarnContext(c.Request.Context(), "webhook refused", "provider", provider, "reason", err.Error())
		writeError(c, errBadSignature)
		return
	}
	if errors.Is(err, billing.ErrVerifyLimited) {
		// Deliveries beyond the budget of verification calls, most likely forged: PayPal
		// delivers a genuine one again after the 503.
		s.log.WarnContext(c.Request.Context(), "webhook verification rate limited", "provider", provider)
		writeError(c, errUnavailable)
		return
	}
	if err != nil {
		// The provider could not be asked to confirm the signature: a 5xx makes it deliver again.
		s.log.ErrorContext(c.Request.Context(), "webhook verification failed", "provider", provider, "error", err)
		writeError(c, errUnavailable)
		return
	}
	_, err = s.temporal.ExecuteWorkflow(c.Request.Context(), client.StartWorkflowOptions{
		ID:                       workflows.ProviderEventWorkflowID(provider, event.ID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.ProviderEventWorkflowType, domain.WebhookEvent{
		Provider: provider, ID: event.ID, Type: event.Type, ProviderType: event.ProviderType, PaymentRef: event.PaymentRef,
		OrderID: event.OrderID, Amount: event.Amount, Currency: event.Currency, Reason: event.Reason, Payload: body,
	})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &already) {
		s.log.ErrorContext(c.Request.Context(), "webhook not handed over", "provider", provider, "event_id", event.ID, "error", err)
		writeError(c, errUnavailable)
		return
	}
	c.JSON(http.StatusOK, gin.H{"received": true, "event_id": event.ID, "duplicate": err != nil})
}

// completeAuthentication is the storefront's report that the customer finished authenticating
// (3-D Secure). It only prompts the checkout to ask the provider, which alone decides; the
// answer is the checkout's state after that check.
func (s *server) completeAuthentication(c *gin.Context) {
	o, ok := s.checkoutParam(c)
	if !ok {
		return
	}
	id := o.CheckoutID
	if o.Status != domain.OrderRequiresAction {
		if o.Status.Final() {
			s.writeOrder(c, http.StatusOK, o, nil)
			return
		}
		writeError(c, errNotWaiting)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.CheckoutWait)
	defer cancel()
	handle, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: o.WorkflowID, UpdateName: workflows.UpdateAuthenticationCompleted,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var state workflows.CheckoutState
	if err == nil {
		err = handle.Get(ctx, &state)
	}
	if err != nil {
		if deadlineAware(ctx, err) == context.DeadlineExceeded {
			c.Header("Location", "/api/v1/checkouts/"+id)
			c.JSON(http.StatusAccepted, s.response(id, domain.OrderRequiresAction, o.ID, o.TotalAmount, o.Currency, domain.Failure{}))
			return
		}
		// The checkout may have just finished: the read model has its outcome.
		s.log.WarnContext(c.Request.Context(), "authentication report", "error", err)
		if o, rerr := s.store.CheckoutByID(c.Request.Context(), id); rerr == nil && o.Status.Final() {
			s.writeOrder(c, http.StatusOK, o, nil)
			return
		}
		writeError(c, errUnavailable)
		return
	}
	c.JSON(http.StatusOK, s.stateResponse(state))
}

// refundRequest is the body of POST /api/v1/orders/{id}/refunds.
type refundRequest struct {
	// Amount in minor units; absent refunds whatever has not been refunded yet.
	Amount *int64 `json:"amount"`
}

// createRefund starts a Refund workflow for the order, once per Idempotency-Key, and waits a
// bounded time for it: 201 with the refund, 409/422 when it was refused, 202 when the wait ran out.
func (s *server) createRefund(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if err := validIdempotencyKey(key); err != nil {
		writeError(c, err)
		return
	}
	var req refundRequest
	if err := decodeOptional(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	auditNote(c, "idempotency_key", key)
	if req.Amount != nil {
		auditNote(c, "amount", *req.Amount)
	}
	if req.Amount != nil && *req.Amount <= 0 {
		writeError(c, unprocessable("invalid_amount", "amount", "the amount must be a positive number of minor units"))
		return
	}
	o, ok := s.orderParam(c, "")
	if !ok {
		return
	}
	in := workflows.RefundRequest{OrderID: o.ID}
	if req.Amount != nil {
		in.Amount = *req.Amount
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.CheckoutWait)
	defer cancel()
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.RefundWorkflowID(o.ID, key), TaskQueue: workflows.TaskQueue,
		// The same key is the same refund, running or finished; a new refund needs a new key.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.RefundWorkflowType, in)
	var out workflows.RefundOutcome
	if err == nil {
		err = run.Get(ctx, &out)
	}
	switch {
	case err == nil && out.Status == workflows.RefundSucceeded:
		c.JSON(http.StatusCreated, gin.H{"refund": out})
	case err == nil:
		status := http.StatusConflict
		if out.FailureCode == "refund_exceeds_captured" {
			status = http.StatusUnprocessableEntity
		}
		writeError(c, &apiError{Status: status, Code: out.FailureCode, Message: out.FailureMessage, Field: refundField(out.FailureCode)})
	case deadlineAware(ctx, err) == context.DeadlineExceeded:
		c.JSON(http.StatusAccepted, gin.H{"refund": gin.H{"order_id": o.ID, "status": "pending"}})
	default:
		s.log.ErrorContext(c.Request.Context(), "refund", "error", err)
		writeError(c, errUnavailable)
	}
}

func refundField(code string) string {
	if code == "refund_exceeds_captured" {
		return "amount"
	}
	return ""
}

// actionFor asks a checkout waiting for authentication what the storefront must show; the read
// model does not keep the client secret. On failure the answer simply lacks it.
func (s *server) actionFor(ctx context.Context, workflowID string) *workflows.PaymentAction {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckoutWait)
	defer cancel()
	v, err := s.temporal.QueryWorkflow(ctx, workflowID, "", workflows.QueryStatus)
	var st workflows.CheckoutState
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		s.log.WarnContext(ctx, "query checkout for its action", "error", err)
		return nil
	}
	return st.Action
}
