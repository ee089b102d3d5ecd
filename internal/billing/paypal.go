package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plutov/paypal/v4"

	"github.com/cartflow/cartflow/internal/money"
)

// PayPal charges approved PayPal orders and refunds their captures; the compiler holds it to that.
var _ Gateway = (*PayPal)(nil)

// PayPalConfig configures the PayPal gateway.
type PayPalConfig struct {
	// ClientID and Secret are the REST app's credentials; the secret is never logged.
	ClientID string
	Secret   string
	// APIURL is PayPal's REST API base URL, such as https://api-m.sandbox.paypal.com.
	APIURL string
	// Timeout bounds each HTTP call, the OAuth token request included.
	Timeout time.Duration
	// WebhookID is the id PayPal gave the webhook listener; NewPayPalWebhookVerifier's default.
	WebhookID string
	// Logger receives outcomes with PayPal's ids, never credentials or tokens; nil discards them.
	Logger *slog.Logger
}

// PayPal is the PayPal gateway, over plutov/paypal's client for OAuth, transport and errors.
type PayPal struct {
	clientID, secret, apiURL string
	timeout                  time.Duration
	webhookID                string
	log                      *slog.Logger

	mu sync.Mutex
	// api caches the OAuth access token. It is replaced, never mutated, when PayPal stops
	// accepting that token, because the library's token fields are not safe to reset while
	// other calls use the client.
	api *paypal.Client
}

// NewPayPal returns a PayPal gateway. The library's own request logging stays off: it would
// write the OAuth token and the client secret's Basic header.
func NewPayPal(cfg PayPalConfig) (*PayPal, error) {
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("paypal: the API URL %q is not an absolute http(s) URL", cfg.APIURL)
	}
	logger := orDiscard(cfg.Logger)
	p := &PayPal{
		clientID: cfg.ClientID, secret: cfg.Secret, apiURL: strings.TrimRight(cfg.APIURL, "/"),
		timeout: cfg.Timeout, webhookID: cfg.WebhookID, log: logger,
	}
	if p.api, err = p.newClient(); err != nil {
		return nil, err
	}
	return p, nil
}

// newClient builds a client without a token; its first call fetches one.
func (p *PayPal) newClient() (*paypal.Client, error) {
	c, err := paypal.NewClient(p.clientID, p.secret, p.apiURL)
	if err != nil {
		return nil, fmt.Errorf("paypal: %w", err)
	}
	c.SetHTTPClient(&http.Client{Timeout: p.timeout})
	// Answers with the full resource, so that a capture shows its amount and a refund its
	// amount. Set once here, before the client is shared: the library writes the flag without
	// a lock, which is why captures are not sent with its CaptureOrderWithPaypalRequestId.
	c.SetReturnRepresentation()
	return c, nil
}

// client is the current client, taken once per call: observe may replace it meanwhile.
func (p *PayPal) client() *paypal.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.api
}

// observe drops the cached token after PayPal refused it (401), so that the retry fetches a
// new one: tokens are revoked when credentials rotate, and the library only renews a token
// when it expires.
func (p *PayPal) observe(c *paypal.Client, err error) {
	var pe *paypal.ErrorResponse
	if !errors.As(err, &pe) || pe.Response == nil || pe.Response.StatusCode != http.StatusUnauthorized {
		return
	}
	fresh, nerr := p.newClient()
	if nerr != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.api == c {
		p.api = fresh
	}
}

// Charge captures the approved PayPal order in req.Token. It reads the order first, every time:
// so that an order bound to another checkout (custom_id) or with an amount the charge does not
// agree with is refused before any money moves (an order can be created in the buyer's browser,
// with any amount), and so that a capture this charge already made is returned instead of
// repeated. A capture is this charge's only when it is the one the ledger holds
// (req.PaymentRef) or PayPal says it was made under this charge's PayPal-Request-Id; a capture
// by anyone else (another checkout, the buyer's browser) is refused as payment_already_used.
//
// PayPal finds a capture through its order, which GET reads authoritatively: there is no search
// to lag behind, and no payment to record before the capture (req.Created is not called).
func (p *PayPal) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if err := paypalCheckRef(req.Token, "token"); err != nil {
		return ChargeResult{}, err
	}
	if req.IdempotencyKey == "" {
		return ChargeResult{}, &RejectedError{Code: "idempotency_key_required", Message: "the charge has no idempotency key"}
	}
	if req.OffSession || req.CustomerRef != "" {
		// An approved order is one payment the buyer agreed to; nothing here charges them later.
		return ChargeResult{}, &RejectedError{Code: "recurring_not_supported", Message: "PayPal payments cannot be charged without the buyer"}
	}
	if _, err := paypalValue(req.Amount, req.Currency); err != nil {
		return ChargeResult{}, &RejectedError{Code: "invalid_amount", Message: err.Error()}
	}

	order, err := p.getOrder(ctx, req.Token)
	if err != nil {
		return ChargeResult{}, paypalClassify(err, "order_not_found")
	}
	if err := paypalCheckBinding(order, req.CartRef); err != nil {
		p.log.WarnContext(ctx, "paypal order is bound to another cart", "paypal_order", order.ID)
		return ChargeResult{}, err
	}
	requestID := paypalRequestID(req.IdempotencyKey)
	captures := paypalOrderCaptures(order)
	if paypalTookMoney(captures) {
		return p.own(ctx, req, order.ID, captures, requestID)
	}
	if err := paypalCheckOrder(order, req); err != nil {
		return ChargeResult{}, err
	}
	// Only declined captures: on a first attempt they belong to an earlier checkout, after which
	// the buyer may have approved the order again with another funding source; on a retry the
	// decline may be this charge's own, and it is final.
	if res, done, err := p.settled(ctx, req, order.ID, captures, req.Resume); done {
		return res, err
	}

	captured, err := p.capture(ctx, req.Token, requestID)
	if paypalIssue(err) == "ORDER_ALREADY_CAPTURED" {
		// Captured since the order was read, and not under this charge's PayPal-Request-Id, for
		// which PayPal would have answered with that capture: someone else's payment.
		return ChargeResult{}, p.alreadyUsed(ctx, order.ID)
	}
	if err != nil {
		return ChargeResult{}, paypalClassify(err, "order_not_found")
	}
	res, done, err := p.settled(ctx, req, captured.ID, paypalCapturedCaptures(captured), true)
	if !done {
		// Outcome unknown: the retry reads the order.
		return ChargeResult{}, fmt.Errorf("paypal answered the capture of order %s (status %s) without a capture", captured.ID, captured.Status)
	}
	return res, err
}

// own decides a charge whose order already took money: the captures that are this charge's,
// with their current status from the order, settle it; when none is, the order paid for
// something else. The ledger's capture (req.PaymentRef) is this charge's without asking PayPal;
// otherwise the capture is sent again under this charge's PayPal-Request-Id, which PayPal
// answers with the capture it made for that id, and refuses with ORDER_ALREADY_CAPTURED when
// someone else captured the order.
func (p *PayPal) own(ctx context.Context, req ChargeRequest, orderID string, captures []paypal.CaptureAmount, requestID string) (ChargeResult, error) {
	mine := map[string]bool{}
	if req.PaymentRef != "" {
		mine[req.PaymentRef] = true
	}
	if !slices.ContainsFunc(captures, func(c paypal.CaptureAmount) bool { return mine[c.ID] }) {
		replay, err := p.capture(ctx, orderID, requestID)
		if paypalIssue(err) == "ORDER_ALREADY_CAPTURED" {
			return ChargeResult{}, p.alreadyUsed(ctx, orderID)
		}
		if err != nil {
			return ChargeResult{}, paypalClassify(err, "order_not_found")
		}
		for _, c := range paypalCapturedCaptures(replay) {
			mine[c.ID] = true
		}
	}
	ours := slices.DeleteFunc(slices.Clone(captures), func(c paypal.CaptureAmount) bool { return !mine[c.ID] })
	res, done, err := p.settled(ctx, req, orderID, ours, true)
	if !done {
		// PayPal named a capture for this request that the order does not show yet.
		return ChargeResult{}, fmt.Errorf("paypal order %s shows no capture of this charge yet", orderID)
	}
	return res, err
}

// alreadyUsed is the refusal of an order that someone else captured. The buyer paid for
// another checkout, or outside cartflow; the reconciliation finds a capture no order owns.
func (p *PayPal) alreadyUsed(ctx context.Context, orderID string) error {
	p.log.WarnContext(ctx, "paypal order was captured by another request", "paypal_order", orderID)
	return &RejectedError{Code: "payment_already_used", Message: paypalMessages["payment_already_used"]}
}

// settled decides a charge from captures that are its own, or, for declined ones, may be. It
// reports done=false when nothing was captured yet and the order may still be captured: there
// is no capture, or only declined ones while declinedFinal is false.
func (p *PayPal) settled(ctx context.Context, req ChargeRequest, orderID string, captures []paypal.CaptureAmount, declinedFinal bool) (ChargeResult, bool, error) {
	var pending, declined *paypal.CaptureAmount
	for i := range captures {
		c := &captures[i]
		switch c.Status {
		case "COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED":
			// Money moved; a refund since then is a separate matter for the ledger.
			if mismatch := paypalMismatch(c.Amount, req.Amount, req.Currency); mismatch != "" {
				// Only an order changed between reading and capturing it gets here. The buyer
				// paid, so ops must refund by hand: the capture id is in this log line.
				p.log.ErrorContext(ctx, "paypal captured an amount that differs from the charge",
					"paypal_order", orderID, "capture", c.ID, "mismatch", mismatch)
				return ChargeResult{}, true, &RejectedError{Code: "amount_mismatch", Message: "the PayPal payment does not match the order total"}
			}
			p.log.InfoContext(ctx, "paypal order captured", "paypal_order", orderID, "capture", c.ID, "status", c.Status)
			return ChargeResult{ProviderRef: c.ID}, true, nil
		case "PENDING":
			pending = c
		case "DECLINED", "FAILED":
			declined = c
		}
	}
	switch {
	case pending != nil:
		// PayPal holds the payment (an eCheck, a review); it completes or is declined later.
		return ChargeResult{}, true, fmt.Errorf("paypal capture %s of order %s is still processing", pending.ID, orderID)
	case declined != nil && declinedFinal:
		return ChargeResult{}, true, &DeclineError{Code: "instrument_declined", Message: paypalMessages["INSTRUMENT_DECLINED"]}
	}
	return ChargeResult{}, false, nil
}

// Refund refunds a capture: all that remains of it when req.Amount is zero, else req.Amount.
//
// A refund needs req.PaymentRef. The ChargeKey fallback that other gateways offer cannot work
// here: PayPal finds a capture only through its order, which the refund request does not name,
// and claiming NothingCharged without looking could leave a buyer's money unreturned.
func (p *PayPal) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if req.PaymentRef == "" {
		// The charge's outcome is unknown: its order, the storefront's token, says whether
		// anything was captured.
		if req.ChargeToken == "" {
			return RefundResult{}, &RejectedError{Code: "payment_ref_required", Message: "a PayPal refund needs the capture id or the order it captured"}
		}
		order, err := p.getOrder(ctx, req.ChargeToken)
		if err != nil {
			return RefundResult{}, paypalClassify(err, "order_not_found")
		}
		for _, c := range paypalOrderCaptures(order) {
			if c.Status == "COMPLETED" {
				req.PaymentRef = c.ID
			}
		}
		if req.PaymentRef == "" {
			return RefundResult{NothingCharged: true}, nil
		}
	}
	if err := paypalCheckRef(req.PaymentRef, "capture"); err != nil {
		return RefundResult{}, err
	}
	if req.IdempotencyKey == "" {
		return RefundResult{}, &RejectedError{Code: "idempotency_key_required", Message: "the refund has no idempotency key"}
	}
	var body paypal.RefundCaptureRequest
	if req.Amount > 0 {
		value, err := paypalValue(req.Amount, req.Currency)
		if err != nil {
			return RefundResult{}, &RejectedError{Code: "invalid_amount", Message: err.Error()}
		}
		body.Amount = &paypal.Money{Currency: strings.ToUpper(req.Currency), Value: value}
	}
	c := p.client()
	r, err := c.RefundCaptureWithPaypalRequestId(ctx, req.PaymentRef, body, paypalRequestID(req.IdempotencyKey))
	p.observe(c, err)
	if err != nil {
		return RefundResult{}, paypalClassify(err, "capture_not_found")
	}
	switch r.Status {
	case "FAILED", "CANCELLED":
		return RefundResult{}, &RejectedError{Code: "refund_" + strings.ToLower(r.Status), Message: "PayPal did not complete the refund"}
	}
	// PENDING counts as done: PayPal has taken the refund and returns the money on its own.
	amount := req.Amount
	if r.Amount != nil {
		got, err := paypalMinor(r.Amount.Value, r.Amount.Currency)
		switch {
		case err != nil:
			// The refund happened and a retry would get the same answer back: keep what was asked.
			p.log.WarnContext(ctx, "paypal refund amount unreadable", "refund", r.ID, "error", err)
		case req.Currency != "" && !strings.EqualFold(r.Amount.Currency, req.Currency):
			p.log.WarnContext(ctx, "paypal refunded in another currency", "refund", r.ID, "currency", r.Amount.Currency)
		default:
			amount = got
		}
	}
	p.log.InfoContext(ctx, "paypal capture refunded", "capture", req.PaymentRef, "refund", r.ID, "status", r.Status)
	return RefundResult{ProviderRef: r.ID, Amount: amount}, nil
}

// getOrder reads an order with its captures.
func (p *PayPal) getOrder(ctx context.Context, id string) (*paypal.Order, error) {
	c := p.client()
	order, err := c.GetOrder(ctx, id)
	p.observe(c, err)
	return order, err
}

// capture captures an order under a PayPal-Request-Id. The library's
// CaptureOrderWithPaypalRequestId is not used: it sets the client's return-representation flag
// on every call, a data race with every other call in flight.
func (p *PayPal) capture(ctx context.Context, orderID, requestID string) (*paypal.CaptureOrderResponse, error) {
	c := p.client()
	req, err := c.NewRequest(ctx, http.MethodPost, c.APIBase+"/v2/checkout/orders/"+orderID+"/capture", struct{}{})
	if err != nil {
		return nil, err
	}
	req.Header.Set("PayPal-Request-Id", requestID)
	res := &paypal.CaptureOrderResponse{}
	err = c.SendWithAuth(req, res)
	p.observe(c, err)
	return res, err
}

// paypalCapturedCaptures lists the captures in a capture's answer.
func paypalCapturedCaptures(r *paypal.CaptureOrderResponse) []paypal.CaptureAmount {
	var captures []paypal.CaptureAmount
	for _, pu := range r.PurchaseUnits {
		if pu.Payments != nil {
			captures = append(captures, pu.Payments.Captures...)
		}
	}
	return captures
}

// paypalTookMoney reports whether any capture took money or may still: completed (refunded
// since or not) or pending.
func paypalTookMoney(captures []paypal.CaptureAmount) bool {
	return slices.ContainsFunc(captures, func(c paypal.CaptureAmount) bool {
		switch c.Status {
		case "COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED", "PENDING":
			return true
		}
		return false
	})
}

// paypalCheckBinding refuses an order that does not carry cartRef as its custom_id, before
// anything is captured: it was created for another cart, or outside cartflow. An empty cartRef
// checks nothing.
func paypalCheckBinding(o *paypal.Order, cartRef string) error {
	if cartRef == "" {
		return nil
	}
	if len(o.PurchaseUnits) != 1 || o.PurchaseUnits[0].CustomID != cartRef {
		return &RejectedError{Code: "payment_already_used", Message: paypalMessages["payment_already_used"]}
	}
	return nil
}

// paypalOrderCaptures lists the captures of all of an order's purchase units.
func paypalOrderCaptures(o *paypal.Order) []paypal.CaptureAmount {
	var captures []paypal.CaptureAmount
	for _, pu := range o.PurchaseUnits {
		if pu.Payments != nil {
			captures = append(captures, pu.Payments.Captures...)
		}
	}
	return captures
}

// paypalCheckOrder refuses an order whose total is not the charge's, before it is captured.
func paypalCheckOrder(o *paypal.Order, req ChargeRequest) error {
	if len(o.PurchaseUnits) != 1 {
		// A checkout is one amount; an order split into several units is not one of ours.
		return &RejectedError{Code: "amount_mismatch", Message: "the PayPal order does not match the order total"}
	}
	if paypalMismatch(o.PurchaseUnits[0].Amount, req.Amount, req.Currency) != "" {
		return &RejectedError{Code: "amount_mismatch", Message: "the PayPal order does not match the order total"}
	}
	return nil
}

// paypalMismatch describes how a PayPal amount differs from minor units of currency; "" when equal.
func paypalMismatch(a *paypal.PurchaseUnitAmount, amount int64, currency string) string {
	if a == nil {
		return "no amount"
	}
	if !strings.EqualFold(a.Currency, currency) {
		return fmt.Sprintf("currency %s, want %s", a.Currency, strings.ToUpper(currency))
	}
	got, err := paypalMinor(a.Value, a.Currency)
	if err != nil {
		return err.Error()
	}
	if got != amount {
		return fmt.Sprintf("amount %d, want %d", got, amount)
	}
	return ""
}

// paypalRequestIDMax is the longest PayPal-Request-Id PayPal accepts.
const paypalRequestIDMax = 108

// paypalRequestID is the PayPal-Request-Id for an idempotency key: the key itself, or, when it
// is too long or not plain ASCII, a digest of it, which is as stable across retries.
func paypalRequestID(key string) string {
	plain := len(key) <= paypalRequestIDMax && !strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' })
	if plain {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "cartflow-" + hex.EncodeToString(sum[:])
}

// paypalCheckRef refuses an id that could not be PayPal's, before it is put into a URL path.
func paypalCheckRef(id, what string) error {
	ok := id != "" && len(id) <= 64 && !strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
	if !ok {
		return &RejectedError{Code: "invalid_" + what, Message: fmt.Sprintf("the PayPal %s is not valid", what)}
	}
	return nil
}

// paypalIssue is the reason PayPal gives for refusing a request: the first detail's issue
// (INSTRUMENT_DECLINED), else the error's name (RESOURCE_NOT_FOUND); "" for other errors.
func paypalIssue(err error) string {
	var pe *paypal.ErrorResponse
	if !errors.As(err, &pe) {
		return ""
	}
	for _, d := range pe.Details {
		if d.Issue != "" {
			return d.Issue
		}
	}
	return pe.Name
}

// paypalDeclines are the issues by which PayPal reports that the buyer's funding source
// refused the payment, following the Orders v2 capture errors: the buyer can pay with another
// funding source, but repeating this request cannot change the answer.
var paypalDeclines = map[string]bool{
	"INSTRUMENT_DECLINED":                     true,
	"TRANSACTION_REFUSED":                     true,
	"PAYER_CANNOT_PAY":                        true,
	"CARD_EXPIRED":                            true,
	"REDIRECT_PAYER_FOR_ALTERNATE_FUNDING":    true,
	"MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": true,
	"DECLINED_DUE_TO_RELATED_TXN":             true,
}

// paypalDeclineCodes puts PayPal's issues that have an equivalent into the decline codes that
// DeclineError.Hard knows.
var paypalDeclineCodes = map[string]string{"CARD_EXPIRED": "expired_card"}

// paypalMessages are texts for the customer or staff; PayPal's own messages are for developers.
var paypalMessages = map[string]string{
	"INSTRUMENT_DECLINED":                     "PayPal declined the payment method; please choose another one in PayPal",
	"TRANSACTION_REFUSED":                     "PayPal refused the payment; please choose another payment method",
	"PAYER_CANNOT_PAY":                        "PayPal cannot take this payment from your account; please choose another payment method",
	"CARD_EXPIRED":                            "the card in your PayPal account has expired; please choose another payment method",
	"REDIRECT_PAYER_FOR_ALTERNATE_FUNDING":    "PayPal declined the payment method; please choose another one in PayPal",
	"MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": "too many payment attempts were made with PayPal; please choose another payment method",
	"DECLINED_DUE_TO_RELATED_TXN":             "PayPal declined the payment; please choose another payment method",
	"ORDER_NOT_APPROVED":                      "the PayPal payment was not approved; please approve it in PayPal and try again",
	"PAYER_ACTION_REQUIRED":                   "PayPal needs you to complete a step before the payment can be taken; please try again in PayPal",
	"ORDER_EXPIRED":                           "the PayPal payment has expired; please start again",
	"DUPLICATE_INVOICE_ID":                    "this PayPal payment was already used for another purchase",
	"CAPTURE_FULLY_REFUNDED":                  "the PayPal payment has already been refunded in full",
	"REFUND_AMOUNT_EXCEEDED":                  "the refund is larger than what remains of the PayPal payment",
	"order_not_found":                         "the PayPal payment was not found; please start again",
	"payment_already_used":                    "this PayPal payment was already used for another purchase; please start again in PayPal",
	"capture_not_found":                       "the PayPal payment to refund was not found",
}

// paypalClassify maps a plutov/paypal error onto the gateway's error classes, as classifyStripe
// does for Stripe. notFound is the code for a 404: which resource the request named.
func paypalClassify(err error, notFound string) error {
	var pe *paypal.ErrorResponse
	if !errors.As(err, &pe) || pe.Response == nil {
		// A network error, a timeout, the context's end, or an answer that was not PayPal's JSON:
		// the request may have reached PayPal, so it is retried under the same PayPal-Request-Id.
		// The text names only the URL, which holds ids and no credentials.
		return fmt.Errorf("paypal unreachable, outcome unknown: %w", err)
	}
	status := pe.Response.StatusCode
	issue := paypalIssue(err)
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusConflict, status >= 500:
		// Rate limits, a concurrent request with the same id, and PayPal's own failures pass with time.
		return fmt.Errorf("paypal temporarily failed (status %d, %s, debug id %s)", status, issue, pe.DebugID)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		// Wrong or revoked credentials: retrying lets ops fix them without losing the checkout.
		return fmt.Errorf("paypal refused the credentials (status %d, debug id %s)", status, pe.DebugID)
	case paypalDeclines[issue]:
		return &DeclineError{Code: strings.ToLower(issue), DeclineCode: paypalDeclineCodes[issue], Message: paypalMessages[issue]}
	case status == http.StatusNotFound:
		return &RejectedError{Code: notFound, Message: paypalMessages[notFound]}
	}
	code := strings.ToLower(issue)
	if code == "" {
		code = "http_" + strconv.Itoa(status)
	}
	msg := paypalMessages[issue]
	if msg == "" {
		msg = "PayPal could not complete the payment"
	}
	return &RejectedError{Code: code, Message: msg}
}

// paypalWholeUnits are currencies that cartflow counts in hundredths but PayPal takes in whole
// units only, refusing any decimals (PayPal's currency codes reference).
var paypalWholeUnits = map[string]bool{"huf": true, "twd": true}

// paypalValue formats minor units as PayPal's decimal value, with integers only so that nothing
// is ever rounded: 2500 usd is "25.00", 2500 jpy is "2500", 1234 kwd is "1.234", 150000 huf is "1500".
func paypalValue(minor int64, currency string) (string, error) {
	if minor <= 0 {
		return "", fmt.Errorf("the amount must be positive, not %d", minor)
	}
	if len(currency) != 3 {
		return "", fmt.Errorf("the currency %q is not an ISO 4217 code", currency)
	}
	whole, frac := money.Split(uint64(minor), currency)
	if paypalWholeUnits[strings.ToLower(currency)] {
		if strings.Trim(frac, "0") != "" {
			return "", fmt.Errorf("PayPal takes %s in whole units only, not %d hundredths", strings.ToUpper(currency), minor)
		}
		return whole, nil
	}
	return money.Decimal(minor, currency)
}

// paypalMinor reads PayPal's decimal value ("25.00", "2500", "1.234") as minor units of
// currency, exactly; more decimals than the currency has are an error unless they are zeros.
func paypalMinor(value, currency string) (int64, error) {
	n, err := money.Parse(value, currency)
	if err != nil {
		return 0, fmt.Errorf("paypal amount: %w", err)
	}
	return n, nil
}
