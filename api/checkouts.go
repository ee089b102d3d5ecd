package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"log/slog"
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
	"github.com/cartflow/cartflow/internal/logging"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// checkoutIDPattern is the shape of newCheckoutID's output; anything else cannot exist.
var checkoutIDPattern = regexp.MustCompile(`^chk_[a-z2-7]{26}$`)

// newCheckoutID returns an unguessable public checkout identifier (128 random bits).
func newCheckoutID() string { return newRandomID("chk_") }

// newRandomID is prefix and 128 random bits as 26 lower-case base32 characters.
func newRandomID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// checkoutResponse is a checkout as the storefront sees it.
type checkoutResponse struct {
	CheckoutID  string          `json:"checkout_id"`
	Status      string          `json:"status"`
	OrderID     string          `json:"order_id,omitempty"`
	Amount      int64           `json:"amount"`
	Currency    string          `json:"currency,omitempty"`
	Failure     *domain.Failure `json:"failure,omitempty"`
	RedirectURL string          `json:"redirect_url,omitempty"`
	StatusURL   string          `json:"status_url"`
	Items       []checkoutLine  `json:"items,omitempty"`
	// Action is what the storefront needs to let the customer authenticate (3-D Secure) while
	// Status is requires_action. Only the answers to the POSTs carry it: the public read
	// (GET /checkouts/{id}) holds nothing that authorizes anything.
	Action *workflows.PaymentAction `json:"action,omitempty"`
}

type checkoutLine struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	UnitAmount int64  `json:"unit_amount"`
	LineAmount int64  `json:"line_amount"`
}

func (s *server) response(checkoutID string, status domain.OrderStatus, orderID string, amount int64, currency string, failure domain.Failure) checkoutResponse {
	r := checkoutResponse{
		CheckoutID: checkoutID, Status: string(status), OrderID: orderID, Amount: amount, Currency: currency,
		StatusURL: "/api/v1/checkouts/" + checkoutID,
	}
	if failure.Code != "" {
		r.Failure = &failure
	}
	if status == domain.OrderCompleted {
		r.RedirectURL = strings.TrimRight(s.cfg.StorefrontURL, "/") + "/orders/" + checkoutID + "/confirmation"
	}
	return r
}

// orderResponse is a checkout as the read model has it; withAction adds what the customer must
// do to authenticate, for the answer to the customer's own POST.
func (s *server) orderResponse(ctx context.Context, o store.Order, withAction bool) checkoutResponse {
	r := s.response(o.CheckoutID, o.Status, o.ID, o.TotalAmount, o.Currency,
		domain.Failure{Code: o.FailureCode, DeclineCode: o.DeclineCode, Message: o.FailureMessage})
	if lines := linesOf(o); len(lines) > 0 {
		r.Items = lines
	}
	if withAction && o.Status == domain.OrderRequiresAction {
		r.Action = s.actionFor(ctx, o.WorkflowID)
	}
	return r
}

// linesOf is an order's lines as the API shows them.
func linesOf(o store.Order) []checkoutLine {
	out := make([]checkoutLine, 0, len(o.Lines))
	for _, l := range o.Lines {
		out = append(out, checkoutLine{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity, UnitAmount: l.UnitAmount, LineAmount: l.LineAmount})
	}
	return out
}

func (s *server) stateResponse(st workflows.CheckoutState) checkoutResponse {
	r := s.response(st.CheckoutID, st.Status, st.OrderID, st.Amount, st.Currency,
		domain.Failure{Code: st.FailureCode, DeclineCode: st.DeclineCode, Message: st.FailureMessage})
	r.Action = st.Action
	return r
}

// writeOrder answers with the checkout the read model has and the given headers. The answer to
// a POST (the customer's own checkout or authentication report) carries the 3-D Secure action;
// the public GET never does.
func (s *server) writeOrder(c *gin.Context, status int, o store.Order, header http.Header) {
	r := s.orderResponse(c.Request.Context(), o, c.Request.Method == http.MethodPost)
	for k, v := range header {
		c.Header(k, v[0])
	}
	c.JSON(status, r)
}

// replayed marks an answer served again from the read model.
var replayed = http.Header{"Idempotent-Replayed": {"true"}}

// createCheckout validates the request, then starts the Checkout workflow with Update-With-Start
// and waits a bounded time for the payment outcome: 201 with the outcome, or 202 with the
// status URL. The workflow ID comes from the Idempotency-Key, so a repeated request joins the
// checkout it repeats instead of starting another.
func (s *server) createCheckout(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if err := validIdempotencyKey(key); err != nil {
		writeError(c, err)
		return
	}
	// From here on, the request's log lines (the access log too) name the checkout's workflow.
	ctx := logging.ContextWith(c.Request.Context(), slog.String("workflow_id", workflows.CheckoutWorkflowID(key)))
	c.Request = c.Request.WithContext(ctx)
	req, err := decodeCheckout(c.Request.Body)
	if err != nil {
		writeError(c, err)
		return
	}
	customer, aerr := req.validate()
	if aerr != nil {
		writeError(c, aerr)
		return
	}
	lines := req.lines()
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	catalog, err := s.store.ProductsBySKU(ctx, skus)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, _, _, perr := store.PriceCart(lines, catalog); perr != nil {
		writeError(c, pricingError(perr))
		return
	}
	hash := req.hash(customer)

	// A checkout that already finished is answered from the read model, without Temporal.
	if o, err := s.store.CheckoutByIdempotencyKey(ctx, key); err == nil {
		if o.RequestHash != hash {
			writeError(c, errIdempotencyReused)
			return
		}
		if o.Status.Final() {
			s.writeOrder(c, http.StatusCreated, o, replayed)
			return
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		writeError(c, err)
		return
	}

	// Per email, and the card-testing defence, once the email is known and before anything
	// starts: a refused request leaves the Temporal cluster and the providers untouched.
	if !s.limit(c, bucketCheckoutEmail, customer.Email) ||
		!s.refuseDeclinedSource(c, workflows.CheckoutWorkflowID(key), customer.Email) {
		return
	}

	in := req.purchaseInput(newCheckoutID(), key, hash)
	in.AuthenticationTimeout = s.cfg.AuthenticationTimeout
	state, err := s.startAndAwait(ctx, in, s.searchEmail(customer.Email))
	switch {
	case err == nil:
		c.JSON(http.StatusCreated, s.stateResponse(state))
	case isKeyReused(err):
		writeError(c, errIdempotencyReused)
	case errors.Is(err, context.DeadlineExceeded):
		s.answerPending(c, key)
	default:
		s.answerFromReadModel(c, key, hash, err)
	}
}

// searchEmail is the customer's email as the CustomerEmail search attribute holds it: its
// SHA-256 (hex) by default, so that the Temporal cluster holds no email addresses, or the address
// itself when SEARCH_EMAIL_MODE is plain. Ops hash an address the same way to search for it.
func (s *server) searchEmail(email string) string {
	if s.cfg.SearchEmailMode == "plain" {
		return email
	}
	sum := sha256.Sum256([]byte(email))
	return hex.EncodeToString(sum[:])
}

// startAndAwait sends Update-With-Start and waits, at most CheckoutWait, for the payment outcome.
func (s *server) startAndAwait(ctx context.Context, in workflows.CheckoutInput, searchEmail string) (workflows.CheckoutState, error) {
	var state workflows.CheckoutState
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckoutWait)
	defer cancel()
	start := s.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.CheckoutWorkflowID(in.IdempotencyKey),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A finished checkout's ID is never reused: a late duplicate must not buy again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		Memo:                  map[string]any{workflows.MemoCheckoutID: in.CheckoutID},
		// What ops search checkouts by in the Temporal UI; the workflow adds the order and amount.
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchCustomerEmail.ValueSet(searchEmail),
			workflows.SearchCheckoutStatus.ValueSet(string(domain.OrderPending)),
		),
	}, workflows.CheckoutWorkflowType, in)
	handle, err := s.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateAwaitOutcome,
			Args:         []any{workflows.AwaitOutcomeRequest{RequestHash: in.RequestHash}},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	if err != nil {
		return state, deadlineAware(ctx, err)
	}
	return state, deadlineAware(ctx, handle.Get(ctx, &state))
}

// deadlineAware reports the wait running out as context.DeadlineExceeded, whichever way the
// client library wrapped it. The Temporal server ends a long poll a little before the caller's
// deadline, so the call can fail with the server's timeout while ctx still has milliseconds
// left: that is the same wait running out, not a failed start.
func deadlineAware(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var pollTimedOut *client.WorkflowUpdateServiceTimeoutOrCanceledError
	var serverTimedOut *serviceerror.DeadlineExceeded
	if ctx.Err() != nil || errors.As(err, &pollTimedOut) || errors.As(err, &serverTimedOut) {
		return context.DeadlineExceeded
	}
	return err
}

func isKeyReused(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeIdempotencyKeyReused
}

// answerPending answers 202 when the wait ran out, if the checkout's workflow is known to exist.
func (s *server) answerPending(c *gin.Context, key string) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.CheckoutWait)
	defer cancel()
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.CheckoutWorkflowID(key), "")
	if err != nil {
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			s.log.WarnContext(ctx, "describe checkout workflow", "error", err)
		}
		writeError(c, errUnavailable)
		return
	}
	var checkoutID string
	if p, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[workflows.MemoCheckoutID]; ok {
		_ = s.payloads().FromPayload(p, &checkoutID)
	}
	if checkoutID == "" {
		writeError(c, errUnavailable)
		return
	}
	// The workflow may not have written the order yet, and until it does the status URL would
	// answer 404: note the checkout, so that the status read answers pending meanwhile. The 202
	// goes out even when the note cannot be written: the order follows, and the status URL
	// answers with it then.
	noteCtx, cancelNote := context.WithTimeout(context.WithoutCancel(ctx), acceptedNoteTimeout)
	defer cancelNote()
	if err := s.store.RecordAcceptedCheckout(noteCtx, checkoutID, key); err != nil {
		s.log.WarnContext(ctx, "accepted checkout not noted", "error", err)
	}
	c.Header("Location", "/api/v1/checkouts/"+checkoutID)
	c.JSON(http.StatusAccepted, s.pendingResponse(checkoutID))
}

// acceptedNoteTimeout bounds the write behind a 202, which must not hold the answer up for long
// when PostgreSQL is down (that is one way the 202 comes about).
const acceptedNoteTimeout = time.Second

// pendingResponse is a checkout known to be running whose order is not written yet.
func (s *server) pendingResponse(checkoutID string) checkoutResponse {
	return s.response(checkoutID, domain.OrderPending, "", 0, "", domain.Failure{})
}

// answerFromReadModel answers a request whose workflow could not take the update, most often
// because the checkout finished between the read-model check and the call.
func (s *server) answerFromReadModel(c *gin.Context, key, hash string, cause error) {
	o, err := s.store.CheckoutByIdempotencyKey(c.Request.Context(), key)
	switch {
	case err == nil && o.RequestHash != hash:
		writeError(c, errIdempotencyReused)
	case err == nil && !o.Status.Final():
		// Known but unfinished: the storefront polls, as after any 202.
		s.writeOrder(c, http.StatusAccepted, o, http.Header{"Location": {"/api/v1/checkouts/" + o.CheckoutID}})
	case err == nil:
		s.writeOrder(c, http.StatusCreated, o, replayed)
	case !errors.Is(err, store.ErrNotFound):
		// The read model is down too: Temporal alone may still know the checkout, and a 202
		// lets the storefront poll instead of sending the customer to pay again.
		s.log.WarnContext(c.Request.Context(), "start checkout", "error", cause, "read_model_error", err)
		s.answerPending(c, key)
	default:
		s.log.ErrorContext(c.Request.Context(), "start checkout", "error", cause)
		writeError(c, errUnavailable)
	}
}

// getCheckout serves a checkout's status from the PostgreSQL read model, never from Temporal. A
// checkout answered 202 before its workflow wrote the order is pending, as the 202 said, until
// the order exists.
func (s *server) getCheckout(c *gin.Context) {
	ctx, id := c.Request.Context(), c.Param("id")
	o, err := s.checkoutByID(ctx, id)
	if errors.Is(err, errCheckoutNotFound) && checkoutIDPattern.MatchString(id) {
		accepted, aerr := s.store.IsAcceptedCheckout(ctx, id)
		if aerr == nil && accepted {
			c.JSON(http.StatusOK, s.pendingResponse(id))
			return
		}
		if aerr != nil {
			err = aerr
		}
	}
	if err != nil {
		writeError(c, err)
		return
	}
	s.writeOrder(c, http.StatusOK, o, nil)
}

// checkoutParam reads the checkout named by the :id parameter from the read model; it answers
// the error itself (404 for an id that cannot exist or does not) and reports false.
func (s *server) checkoutParam(c *gin.Context) (store.Order, bool) {
	o, err := s.checkoutByID(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return store.Order{}, false
	}
	return o, true
}

// checkoutByID reads a checkout's order from the read model: errCheckoutNotFound for an id that
// cannot exist (without asking the database) or that does not.
func (s *server) checkoutByID(ctx context.Context, id string) (store.Order, error) {
	if !checkoutIDPattern.MatchString(id) {
		return store.Order{}, errCheckoutNotFound
	}
	o, err := s.store.CheckoutByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		err = errCheckoutNotFound
	}
	return o, err
}
