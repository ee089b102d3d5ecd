package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// Subscriptions are read and changed under /api/v1/me/subscriptions/{id} only, by the customer
// who owns them (s.customer, then customerSubscription, in me.go). The answers never carry the
// customer's email or the provider's customer and payment method references.

// subscriptionIDPattern is a UUID as PostgreSQL prints it. Anything else cannot be a
// subscription and is answered without a query.
var subscriptionIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// memoChangeRequest is the memo field holding a change's request fingerprint, so that a key sent
// again with another change is told apart from a repeat of the same one.
const memoChangeRequest = "change_request"

var (
	errSubscriptionNotFound = &apiError{Status: http.StatusNotFound, Code: "subscription_not_found", Message: "no subscription has this id"}
	errChangeKeyReused      = &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: "Idempotency-Key",
		Message: "this Idempotency-Key was already used for a different change of this subscription; use a new key for a new change"}
	// errChangeFailed is a change whose workflow failed for good. The same key would only replay
	// that failure, hence the advice to use a new one.
	errChangeFailed = &apiError{Status: http.StatusInternalServerError, Code: "change_failed",
		Message: "the change could not be completed; read the subscription to see where it stands, and use a new Idempotency-Key to try again"}
)

// subscriptionView is a subscription as its buyer sees it. Every field is always present;
// absent times are null.
type subscriptionView struct {
	ID                 string                    `json:"id"`
	Status             domain.SubscriptionStatus `json:"status"`
	SKU                string                    `json:"sku"`
	PlanName           string                    `json:"plan_name"`
	PriceAmount        int64                     `json:"price_amount"`
	Currency           string                    `json:"currency"`
	BillingInterval    string                    `json:"billing_interval"`
	CurrentPeriodStart time.Time                 `json:"current_period_start"`
	CurrentPeriodEnd   time.Time                 `json:"current_period_end"`
	TrialEnd           *time.Time                `json:"trial_end"`
	CancelAtPeriodEnd  bool                      `json:"cancel_at_period_end"`
	CanceledAt         *time.Time                `json:"canceled_at"`
	DunningAttempts    int                       `json:"dunning_attempts"`
	History            []subscriptionEventView   `json:"history"`
}

// subscriptionEventView is one state change; from is null for the first one.
type subscriptionEventView struct {
	From   *domain.SubscriptionStatus `json:"from"`
	To     domain.SubscriptionStatus  `json:"to"`
	Reason string                     `json:"reason"`
	At     time.Time                  `json:"at"`
}

// changeView is the change a request made; status is the subscription's status right after it.
type changeView struct {
	Action string                    `json:"action"`
	Status domain.SubscriptionStatus `json:"status"`
}

// utcPtr shows an optional time in UTC, whatever the time zone of the database session.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// readSubscription reads a subscription with its history from PostgreSQL.
func (s *server) readSubscription(ctx context.Context, id string) (subscriptionView, error) {
	sub, err := s.store.SubscriptionByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return subscriptionView{}, errSubscriptionNotFound
	}
	if err != nil {
		return subscriptionView{}, err
	}
	return s.subscriptionViewOf(ctx, sub)
}

// subscriptionViewOf completes a subscription just read with its history.
func (s *server) subscriptionViewOf(ctx context.Context, sub store.Subscription) (subscriptionView, error) {
	events, err := s.store.SubscriptionHistory(ctx, sub.ID)
	if err != nil {
		return subscriptionView{}, err
	}
	v := subscriptionView{
		ID: sub.ID, Status: sub.Status, SKU: sub.SKU, PlanName: sub.PlanName, PriceAmount: sub.PriceAmount,
		Currency: sub.Currency, BillingInterval: sub.BillingInterval, CurrentPeriodStart: sub.CurrentPeriodStart.UTC(),
		CurrentPeriodEnd: sub.CurrentPeriodEnd.UTC(), TrialEnd: utcPtr(sub.TrialEnd), CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
		CanceledAt: utcPtr(sub.CanceledAt), DunningAttempts: sub.DunningAttempts,
		History: make([]subscriptionEventView, 0, len(events)),
	}
	for _, e := range events {
		ev := subscriptionEventView{To: e.To, Reason: e.Reason, At: e.At.UTC()}
		if e.From != "" {
			ev.From = &e.From
		}
		v.History = append(v.History, ev)
	}
	return v, nil
}

// subscriptionParam returns the subscription id in the path, in canonical (lower case) form so
// that one subscription always makes the same workflow IDs; ok is false if it is no UUID.
func subscriptionParam(c *gin.Context) (id string, ok bool) {
	id = strings.ToLower(c.Param("id"))
	return id, subscriptionIDPattern.MatchString(id)
}

// getSubscription serves one of the customer's subscriptions, with its history, from
// PostgreSQL, never from Temporal.
func (s *server) getSubscription(c *gin.Context) {
	id, ok := subscriptionParam(c)
	if !ok {
		writeError(c, errSubscriptionNotFound)
		return
	}
	sub, ok := s.customerSubscription(c, id)
	if !ok {
		return
	}
	v, err := s.subscriptionViewOf(c.Request.Context(), sub)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"subscription": v})
}

// changeTarget reads what every change request starts with: the subscription id and the
// Idempotency-Key. ok is false when it has answered with an error.
func changeTarget(c *gin.Context) (id, key string, ok bool) {
	id, ok = subscriptionParam(c)
	if !ok {
		writeError(c, errSubscriptionNotFound)
		return "", "", false
	}
	key = c.GetHeader("Idempotency-Key")
	if err := validIdempotencyKey(key); err != nil {
		writeError(c, err)
		return "", "", false
	}
	return id, key, true
}

// cancelRequest is the body of POST /api/v1/subscriptions/{id}/cancel. AtPeriodEnd is a pointer
// so that a body without it is refused rather than read as "cancel now".
type cancelRequest struct {
	AtPeriodEnd *bool `json:"at_period_end"`
}

// cancelSubscription cancels a subscription now or at the end of its current period.
func (s *server) cancelSubscription(c *gin.Context) {
	id, key, ok := changeTarget(c)
	if !ok {
		return
	}
	var req cancelRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.AtPeriodEnd == nil {
		writeError(c, unprocessable("missing_field", "at_period_end", "at_period_end is required: true cancels at the end of the current period, false cancels now"))
		return
	}
	action := workflows.ChangeCancelNow
	if *req.AtPeriodEnd {
		action = workflows.ChangeCancelAtPeriodEnd
	}
	s.changeSubscription(c, key, workflows.SubscriptionChangeInput{SubscriptionID: id, Action: action})
}

// resumeSubscription withdraws a cancellation at the end of the period, before the period ends.
func (s *server) resumeSubscription(c *gin.Context) {
	id, key, ok := changeTarget(c)
	if !ok {
		return
	}
	if err := decodeNothing(c.Request.Body); err != nil {
		writeError(c, err)
		return
	}
	s.changeSubscription(c, key, workflows.SubscriptionChangeInput{SubscriptionID: id, Action: workflows.ChangeResume})
}

// decodeNothing accepts no body, or a JSON object without fields, for a request whose path and
// headers say everything; anything else is refused as a checkout body would be.
func decodeNothing(body io.Reader) error {
	var none struct{}
	return decodeOptional(body, &none)
}

// decodeOptional decodes a JSON body strictly into v, and accepts an empty body, leaving v as it is.
func decodeOptional(body io.Reader, v any) error {
	raw, err := readBody(body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return decodeJSON(raw, v)
}

// paymentMethodRequest is the body of PUT /api/v1/subscriptions/{id}/payment-method.
type paymentMethodRequest struct {
	Provider string `json:"provider"`
	Token    string `json:"token"`
}

// changePaymentMethod saves a new payment method for the subscription's renewals; a renewal in
// dunning retries with it at once.
func (s *server) changePaymentMethod(c *gin.Context) {
	id, key, ok := changeTarget(c)
	if !ok {
		return
	}
	var req paymentMethodRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	provider, aerr := validPayment("", req.Provider, req.Token)
	if aerr == nil {
		req.Provider = provider
	}
	if aerr != nil {
		writeError(c, aerr)
		return
	}
	s.changeSubscription(c, key, workflows.SubscriptionChangeInput{
		SubscriptionID: id, Action: workflows.ChangePaymentMethod,
		Payment: workflows.Payment{Provider: req.Provider, Token: req.Token},
	})
}

// changeSubscription makes a validated change of an existing subscription through the
// SubscriptionChange workflow, which also reaches a running renewal. It answers 200 with the
// subscription as it is afterwards, the refusal if the workflow refused the change, or 202 with
// the status URL when the outcome does not come within CheckoutWait.
func (s *server) changeSubscription(c *gin.Context, key string, in workflows.SubscriptionChangeInput) {
	ctx := c.Request.Context()
	// An unknown subscription, or another customer's, starts no workflow. Ownership is checked
	// here, after the request is validated, so that a refused body costs no read.
	sub, ok := s.customerSubscription(c, in.SubscriptionID)
	if !ok {
		return
	}
	if in.Action == workflows.ChangePaymentMethod &&
		!s.guardCardChange(c, in.SubscriptionID, sub.Email, workflows.SubscriptionChangeWorkflowID(in.SubscriptionID, key)) {
		return
	}

	res, pending, err := s.runChange(ctx, key, in)
	var ae *apiError
	switch {
	case pending:
		statusURL := "/api/v1/me/subscriptions/" + in.SubscriptionID
		c.Header("Location", statusURL)
		c.JSON(http.StatusAccepted, gin.H{"status_url": statusURL})
		return
	case errors.As(err, &ae):
		writeError(c, ae)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "subscription change", "error", err, "action", in.Action)
		writeError(c, errUnavailable)
		return
	case res.FailureCode != "":
		writeError(c, refusal(res))
		return
	}
	v, err := s.readSubscription(ctx, in.SubscriptionID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"subscription": v, "change": changeView{Action: in.Action, Status: res.Status}})
}

// runChange starts the change's workflow, or joins the one this key started before, and waits
// at most CheckoutWait for its result. pending reports that the workflow is running but its
// result did not come in time.
func (s *server) runChange(ctx context.Context, key string, in workflows.SubscriptionChangeInput) (res workflows.SubscriptionChangeResult, pending bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckoutWait)
	defer cancel()
	id := workflows.SubscriptionChangeWorkflowID(in.SubscriptionID, key)
	fingerprint := changeFingerprint(in)
	if err := s.checkChangeKey(ctx, id, fingerprint); err != nil {
		return res, false, deadlineAware(ctx, err)
	}
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workflows.TaskQueue,
		// A repeat while the change runs joins it.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A finished change is never run again for the same key: a late repeat gets its result.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{memoChangeRequest: fingerprint},
	}, workflows.SubscriptionChangeWorkflowType, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		run, err = s.temporal.GetWorkflow(ctx, id, started.RunId), nil
	}
	if err != nil {
		// Whether the workflow started is not known; a retry with the same key is safe either way.
		return res, false, deadlineAware(ctx, err)
	}
	err = run.Get(ctx, &res)
	var failed *temporal.WorkflowExecutionError
	switch {
	case err == nil:
		return res, false, nil
	case errors.Is(deadlineAware(ctx, err), context.DeadlineExceeded):
		return res, true, nil
	case errors.As(err, &failed):
		s.log.ErrorContext(ctx, "subscription change workflow failed", "workflow_id", id, "error", err)
		return res, false, errChangeFailed
	}
	return res, false, err
}

// checkChangeKey refuses a key that already named a different change of this subscription, which
// the conflict policy alone would silently answer with the other change's result.
func (s *server) checkChangeKey(ctx context.Context, workflowID, fingerprint string) error {
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var seen string
	if p, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[memoChangeRequest]; ok {
		_ = s.payloads().FromPayload(p, &seen)
	}
	if seen != fingerprint {
		return errChangeKeyReused
	}
	return nil
}

// changeFingerprint identifies a change request. It is a hash, so the token never sits in the
// workflow's memo.
func changeFingerprint(in workflows.SubscriptionChangeInput) string {
	canonical, _ := json.Marshal(in)
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// refusal maps a change the workflow refused to its answer: 404 for a subscription that is gone,
// 409 for one whose state does not allow the change, and 402 for a payment method that the
// provider refused. The workflow's messages are written for the customer.
func refusal(res workflows.SubscriptionChangeResult) error {
	switch res.FailureCode {
	case "subscription_not_found":
		return errSubscriptionNotFound
	case "subscription_state", "subscription_canceled", "period_moved":
		return &apiError{Status: http.StatusConflict, Code: res.FailureCode,
			Message: cmp.Or(res.FailureMessage, "the subscription cannot make this change now")}
	case "invalid_action":
		// The BFF sent an action the workflow does not know: a bug on our side, not the client's.
		return fmt.Errorf("subscription change refused the action: %s", res.FailureMessage)
	}
	return &apiError{Status: http.StatusPaymentRequired, Code: res.FailureCode,
		Message: cmp.Or(res.FailureMessage, "the payment method was refused")}
}
