package billing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/money"
)

// Braintree's GraphQL endpoints (developer.paypal.com/braintree/graphql/guides/making_api_calls).
const (
	// BraintreeSandboxURL is Braintree's sandbox GraphQL endpoint, where no money moves.
	BraintreeSandboxURL = "https://payments.sandbox.braintree-api.com/graphql"
	// BraintreeProductionURL is Braintree's live GraphQL endpoint.
	BraintreeProductionURL = "https://payments.braintree-api.com/graphql"
	// BraintreeDefaultVersion is the Braintree-Version header sent when the configuration names
	// none: Braintree pins API behaviour to the date an integration was written against.
	BraintreeDefaultVersion = "2026-11-01"
)

// Braintree is a plain Gateway: it keeps no payment methods for renewals and has no
// customer-authentication step of its own. It lists its captured transactions for the
// reconciliation.
var (
	_ Gateway    = (*Braintree)(nil)
	_ Reconciler = (*Braintree)(nil)
)

// BraintreeConfig configures the Braintree gateway.
type BraintreeConfig struct {
	// APIURL is the GraphQL endpoint; BraintreeSandboxURL when empty, a local double in tests.
	APIURL string
	// PublicKey and PrivateKey are the API key pair; they only ever travel in the Authorization header.
	PublicKey, PrivateKey string
	// MerchantAccountID picks the merchant account, and with it the currency, that charges
	// settle in; empty means the account's default merchant account.
	MerchantAccountID string
	// Version is the Braintree-Version header (YYYY-MM-DD); BraintreeDefaultVersion when empty.
	Version string
	// Timeout bounds each HTTP call. Braintree recommends 60 seconds because it waits for the
	// card processor; a shorter one only makes more outcomes unknown, which the lookup resolves.
	Timeout time.Duration
	// Logger records outcomes and transaction ids, never keys or payment-method nonces.
	Logger *slog.Logger
}

// Braintree is the Braintree gateway. It speaks Braintree's GraphQL API directly over net/http
// because Braintree publishes no Go SDK: the community braintree-go module is unmaintained since
// 2018 and only covers the older XML API, whose replacement the GraphQL API is.
type Braintree struct {
	url             string
	authorization   string
	version         string
	merchantAccount string
	http            *http.Client
	log             *slog.Logger
}

// NewBraintree returns a Braintree gateway. It retries nothing itself: Temporal retries the
// activity, and a retried charge looks its transaction up before charging.
func NewBraintree(cfg BraintreeConfig) *Braintree {
	logger := orDiscard(cfg.Logger)
	url := cfg.APIURL
	if url == "" {
		url = BraintreeSandboxURL
	}
	version := cfg.Version
	if version == "" {
		version = BraintreeDefaultVersion
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return &Braintree{
		url:             url,
		authorization:   "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.PublicKey+":"+cfg.PrivateKey)),
		version:         version,
		merchantAccount: cfg.MerchantAccountID,
		http:            &http.Client{Timeout: timeout},
		log:             logger,
	}
}

// Idempotency. Braintree documents At-Most-Once Processing for GraphQL, an apiRequestKey input
// field (developer.paypal.com/braintree/graphql/integration_guides/idempotency), but that guide is
// marked as limited to a select audience, the field is missing from the published schema
// (github.com/braintree/graphql-api schema.graphql), and a duplicate that arrives while the
// first request still runs is answered with a VALIDATION error the guide gives no code for, which
// could not be told apart from a real refusal. So it is not sent. Instead a charge is made in two
// steps and the ledger, not Braintree's search, says whether one exists: the transaction is
// authorized, recorded in the ledger (ChargeRequest.Created) and only then captured, and a
// retry that the ledger hands the transaction (ChargeRequest.PaymentRef) reads it by id, which
// Braintree answers at once, and completes it. Every charge also carries an orderId derived
// from its idempotency key, which a charge searches for before it authorizes; but Braintree's
// search is eventually consistent, so a hit is used and a miss proves nothing. What makes a
// miss safe is that money only moves at the capture, and a capture only follows a recorded
// authorization: an authorization whose id was never recorded (the search missed it and a
// second one was made with a reusable payment method, say) is never captured, and expires or
// is voided without having taken the customer's money. A storefront nonce is single-use, so a
// retry that misses an authorization made with it cannot authorize again: Braintree refuses the
// consumed nonce, which a resumed charge treats as "look again later", never as a refusal.

// braintreeOrderIDMax is the longest orderId that Braintree accepts for every payment method:
// 255 characters, but 127 for PayPal transactions, where it becomes the PayPal invoice number.
const braintreeOrderIDMax = 127

// braintreeKeyDigest is the part of an orderId that identifies one idempotency key: 128 bits of
// its SHA-256 in hex, short enough to fit next to the order id whatever the key's length.
func braintreeKeyDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// braintreeOrderRef is the orderId a charge or refund is sent with: cartflow's order id, so that
// ops can find the order in the Control Panel and webhooks echo it, then "/" and the key digest,
// so that the transaction of exactly this key can be found again.
func braintreeOrderRef(orderID, key string) string {
	digest := braintreeKeyDigest(key)
	if orderID == "" || len(orderID)+1+len(digest) > braintreeOrderIDMax {
		return digest
	}
	return orderID + "/" + digest
}

// braintreeRefMatches reports whether orderID was made by braintreeOrderRef for key.
func braintreeRefMatches(orderID, key string) bool {
	digest := braintreeKeyDigest(key)
	return orderID == digest || strings.HasSuffix(orderID, "/"+digest)
}

// braintreeOrderPart is cartflow's order id inside an orderId made by braintreeOrderRef; any
// other orderId is returned as it is.
func braintreeOrderPart(orderID string) string {
	i := strings.LastIndexByte(orderID, '/')
	if braintreeIsDigest(orderID[i+1:]) {
		if i < 0 {
			return ""
		}
		return orderID[:i]
	}
	return orderID
}

func braintreeIsDigest(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Charge charges a payment-method nonce from the storefront (or the id of a vaulted payment
// method) in two steps, Braintree's analogue of creating a payment unconfirmed, storing its id
// and then confirming it: authorizePaymentMethod reserves the money, req.Created records the
// transaction in the ledger, and captureTransaction then takes it. With req.PaymentRef, the
// transaction an earlier attempt recorded, it reads that one by id and completes it instead.
// Without, it looks the key's transaction up by orderId first and completes one it finds. The
// result's ProviderRef is the transaction's legacy id: the id Braintree's webhooks and Control
// Panel use, unlike the GraphQL global id.
func (b *Braintree) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.OffSession {
		// Nothing is saved with Braintree for renewals: Braintree is not a RecurringGateway.
		return ChargeResult{}, &RejectedError{Code: "off_session_unsupported", Message: "Braintree cannot charge a customer who is not present"}
	}
	if req.Token == "" {
		return ChargeResult{}, &RejectedError{Code: "payment_method_missing", Message: "no payment method was given"}
	}
	amount, err := braintreeAmount(req.Amount, req.Currency)
	if err != nil {
		return ChargeResult{}, &RejectedError{Code: "invalid_amount", Message: err.Error()}
	}
	ref := braintreeOrderRef(req.OrderID, req.IdempotencyKey)
	if req.PaymentRef != "" {
		// The ledger's transaction, read by id: authoritative, unlike the search.
		tx, err := b.transactionByLegacyID(ctx, req.PaymentRef)
		if err != nil {
			return ChargeResult{}, err
		}
		if tx == nil {
			return ChargeResult{}, &RejectedError{Code: "payment_not_found", Message: "the payment to complete does not exist"}
		}
		b.log.InfoContext(ctx, "braintree charge resumed from the ledger", "transaction", tx.LegacyID, "status", tx.Status)
		return b.complete(ctx, tx, req, ref, true)
	}
	// A hit is an earlier attempt's transaction; a miss, since the search lags, proves nothing.
	tx, err := b.findCharge(ctx, req.IdempotencyKey)
	if err != nil {
		return ChargeResult{}, err
	}
	if tx != nil {
		b.log.InfoContext(ctx, "braintree charge resumed from lookup", "transaction", tx.LegacyID, "status", tx.Status)
		return b.complete(ctx, tx, req, ref, false)
	}

	transaction := map[string]any{"amount": amount, "orderId": ref}
	if b.merchantAccount != "" {
		transaction["merchantAccountId"] = b.merchantAccount
	}
	var data struct {
		AuthorizePaymentMethod *struct {
			Transaction *btTransaction `json:"transaction"`
		} `json:"authorizePaymentMethod"`
	}
	errs, err := b.do(ctx, btAuthorizeMutation, map[string]any{
		"input": map[string]any{"paymentMethodId": req.Token, "transaction": transaction},
	}, &data)
	if err != nil {
		return ChargeResult{}, err
	}
	if a := data.AuthorizePaymentMethod; a != nil && a.Transaction != nil && a.Transaction.ID != "" {
		b.log.InfoContext(ctx, "braintree authorization answered", "transaction", a.Transaction.LegacyID, "status", a.Transaction.Status)
		return b.complete(ctx, a.Transaction, req, ref, false)
	}
	if len(errs) == 0 {
		return ChargeResult{}, errors.New("braintree answered the authorization without a transaction or an error, outcome unknown")
	}
	if req.Resume && btHasCode(errs, btNonceConsumed...) {
		// An earlier attempt consumed the nonce, so it reached Braintree and made a transaction
		// that the search above did not return yet. Look once more, else retry the lookup later;
		// authorizing is impossible anyway, the nonce being single-use.
		tx, err := b.findCharge(ctx, req.IdempotencyKey)
		if err != nil {
			return ChargeResult{}, err
		}
		if tx != nil {
			return b.complete(ctx, tx, req, ref, false)
		}
		return ChargeResult{}, errors.New("braintree: an earlier attempt consumed the payment method but its transaction is not searchable yet, outcome unknown")
	}
	return ChargeResult{}, braintreeError(errs)
}

// complete finishes a transaction made for this charge: an authorization is recorded through
// req.Created, unless the ledger handed it over already (recorded), and then captured; any
// other status is reported as it is. An authorization that cannot be recorded is not captured,
// so the money it holds is never taken without the ledger knowing the transaction.
func (b *Braintree) complete(ctx context.Context, tx *btTransaction, req ChargeRequest, ref string, recorded bool) (ChargeResult, error) {
	if tx.Status != btAuthorized || tx.mismatch(req.Amount, req.Currency) != "" {
		return b.chargeOutcome(ctx, tx, req, ref)
	}
	if !recorded && req.Created != nil {
		if err := req.Created(ctx, tx.LegacyID); err != nil {
			// Not wrapped: whatever the ledger's error, the charge's outcome is unknown and retried.
			return ChargeResult{}, fmt.Errorf("braintree transaction %s is authorized but could not be recorded, so it was not captured: %v", tx.LegacyID, err)
		}
	}
	captured, err := b.capture(ctx, tx)
	if err != nil {
		return ChargeResult{}, err
	}
	return b.chargeOutcome(ctx, captured, req, ref)
}

// capture submits an authorized transaction for settlement, for the authorized amount, which
// chargeOutcome has checked is the one asked for. A transaction that is no longer authorized
// (captured by an attempt whose answer was lost, voided, expired) is read again by id, and its
// status is the outcome.
func (b *Braintree) capture(ctx context.Context, tx *btTransaction) (*btTransaction, error) {
	var data struct {
		CaptureTransaction *struct {
			Transaction *btTransaction `json:"transaction"`
		} `json:"captureTransaction"`
	}
	errs, err := b.do(ctx, btCaptureMutation, map[string]any{"input": map[string]any{"transactionId": tx.ID}}, &data)
	if err != nil {
		return nil, err
	}
	if c := data.CaptureTransaction; c != nil && c.Transaction != nil && c.Transaction.ID != "" {
		b.log.InfoContext(ctx, "braintree capture answered", "transaction", c.Transaction.LegacyID, "status", c.Transaction.Status)
		return c.Transaction, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("braintree answered the capture without a transaction or an error, outcome unknown")
	}
	if !btHasCode(errs, btCannotCapture) {
		return nil, braintreeError(errs)
	}
	now, err := b.transactionByLegacyID(ctx, tx.LegacyID)
	if err != nil {
		return nil, err
	}
	switch {
	case now == nil:
		return nil, fmt.Errorf("braintree refused to capture transaction %s and no longer finds it, outcome unknown", tx.LegacyID)
	case now.Status == btAuthorized:
		return nil, fmt.Errorf("braintree refused to capture transaction %s, which is still authorized, outcome unknown", tx.LegacyID)
	}
	return now, nil
}

// btCannotCapture is the validation code of a capture of a transaction that is not authorized.
const btCannotCapture = "91507"

// btNonceConsumed are the validation codes for a single-use payment method used a second time:
// 91564 from the transaction API, 93107 from GraphQL's payment-method checks.
var btNonceConsumed = []string{"91564", "93107"}

// Refund returns money for a charge found by its legacy id or by the charge's idempotency key.
// Without a legacy id it searches by the key, and a search that finds nothing is taken for
// "nothing charged" although the search lags: that is sound because a charge given a
// ChargeRequest.Created captures only a transaction the ledger recorded first, so a charge that
// took money always hands its legacy id to its refund, and a refund without one can only meet
// an authorization that was never captured. (A charge made without Created has no such record,
// and its refund relies on the search alone.) Such an authorization, found or not, holds no taken
// money: one that is found is voided, so that nothing captures it later, and counts as nothing
// charged; one the search misses expires by itself.
// A payment that has not settled yet cannot be refunded, only voided, and only in full
// (developer.paypal.com/braintree/graphql/guides/transactions, "Refunding a Transaction"): a full
// refund of such a payment voids it with reverseTransaction, a partial one waits for settlement.
// Every refund is sent with an orderId derived from req.IdempotencyKey and the payment's refunds
// are read first, so a retry never refunds twice.
func (b *Braintree) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	var tx *btTransaction
	var err error
	if req.PaymentRef != "" {
		tx, err = b.transactionByLegacyID(ctx, req.PaymentRef)
		if err != nil {
			return RefundResult{}, err
		}
		if tx == nil {
			return RefundResult{}, &RejectedError{Code: "payment_not_found", Message: "the payment to refund does not exist"}
		}
	} else {
		if tx, err = b.findCharge(ctx, req.ChargeKey); err != nil {
			return RefundResult{}, err
		}
	}
	if tx == nil || !(tx.took() || tx.Status == btVoided) {
		return RefundResult{NothingCharged: true}, nil
	}
	if tx.Status == btAuthorized || tx.Status == btVoided && tx.event(btSubmittedForSettlement) == nil {
		// Authorized and never captured: no money was taken. Voided so that it stays that way;
		// one voided already (by an earlier attempt of this refund) needs nothing more.
		if tx.Status == btAuthorized {
			if _, err := b.reverseTransaction(ctx, tx); err != nil {
				return RefundResult{}, err
			}
		}
		b.log.InfoContext(ctx, "braintree authorization never captured; nothing to refund", "transaction", tx.LegacyID)
		return RefundResult{NothingCharged: true}, nil
	}
	currency := req.Currency
	if tx.Amount != nil && tx.Amount.CurrencyCode != "" {
		if currency != "" && !strings.EqualFold(currency, tx.Amount.CurrencyCode) {
			return RefundResult{}, &RejectedError{Code: "currency_mismatch", Message: "the refund's currency is not the payment's"}
		}
		currency = tx.Amount.CurrencyCode
	}
	total, err := tx.Amount.minor(currency)
	if err != nil {
		return RefundResult{}, err
	}

	var refunded int64
	var last *btRefund
	for i := range tx.Refunds {
		r := &tx.Refunds[i]
		if !r.returns() {
			continue
		}
		amount, err := r.Amount.minor(currency)
		if err != nil {
			return RefundResult{}, err
		}
		if braintreeRefMatches(r.OrderID, req.IdempotencyKey) {
			// This key's refund already exists: an earlier attempt whose answer was lost.
			return RefundResult{ProviderRef: r.LegacyID, Amount: amount}, nil
		}
		refunded += amount
		last = r
	}
	if tx.Status == btVoided {
		// Voided, by an earlier attempt of this refund or by hand: nothing was ever taken.
		return RefundResult{ProviderRef: tx.LegacyID, Amount: total}, nil
	}
	remaining := total - refunded
	if remaining <= 0 && last != nil && (req.Amount == 0 || req.Amount == total) {
		// A full refund of a payment returned in full already, by hand or by an earlier
		// reversal, which cannot carry this key's orderId: the refund is done.
		b.log.InfoContext(ctx, "braintree payment already fully refunded", "transaction", tx.LegacyID, "refund", last.LegacyID)
		return RefundResult{ProviderRef: last.LegacyID, Amount: refunded}, nil
	}
	amount := req.Amount
	if amount == 0 {
		amount = remaining
	}
	if amount <= 0 || amount > remaining {
		return RefundResult{}, &RejectedError{Code: "refund_exceeds_payment", Message: "the refund is larger than what remains of the payment"}
	}

	if tx.Status == btSubmittedForSettlement {
		return b.reverse(ctx, tx, amount, total, currency)
	}
	value, err := braintreeAmount(amount, currency)
	if err != nil {
		return RefundResult{}, &RejectedError{Code: "invalid_amount", Message: err.Error()}
	}
	var data struct {
		RefundTransaction *struct {
			Refund *btRefund `json:"refund"`
		} `json:"refundTransaction"`
	}
	errs, err := b.do(ctx, btRefundMutation, map[string]any{"input": map[string]any{
		"transactionId": tx.ID,
		"refund":        map[string]any{"amount": value, "orderId": braintreeOrderRef(braintreeOrderPart(tx.OrderID), req.IdempotencyKey)},
	}}, &data)
	if err != nil {
		return RefundResult{}, err
	}
	if r := data.RefundTransaction; r != nil && r.Refund != nil && r.Refund.ID != "" {
		if !r.Refund.returns() {
			return RefundResult{}, &RejectedError{Code: "refund_failed", Message: "the provider did not complete the refund"}
		}
		got, err := r.Refund.Amount.minor(currency)
		if err != nil {
			return RefundResult{}, err
		}
		b.log.InfoContext(ctx, "braintree refund created", "transaction", tx.LegacyID, "refund", r.Refund.LegacyID, "status", r.Refund.Status)
		return RefundResult{ProviderRef: r.Refund.LegacyID, Amount: got}, nil
	}
	if btHasCode(errs, "91506") {
		// The lookup saw a settled payment but Braintree says it is not: settle-state moved
		// under us, or a status that Braintree does not count as settled. Void it instead.
		return b.reverse(ctx, tx, amount, total, currency)
	}
	if len(errs) == 0 {
		return RefundResult{}, errors.New("braintree answered the refund without a refund or an error, outcome unknown")
	}
	return RefundResult{}, braintreeError(errs)
}

// reverse returns a payment that has not settled, which can only be voided, and so only in
// full. A partial refund is retried until settlement (Braintree settles daily) makes it
// refundable.
func (b *Braintree) reverse(ctx context.Context, tx *btTransaction, amount, total int64, currency string) (RefundResult, error) {
	if amount != total {
		return RefundResult{}, fmt.Errorf("braintree payment %s has not settled yet; a partial refund waits for settlement", tx.LegacyID)
	}
	rev, err := b.reverseTransaction(ctx, tx)
	if err != nil {
		return RefundResult{}, err
	}
	if rev.TypeName == "Refund" {
		// It settled in the meantime, so Braintree refunded it in full instead.
		got, err := rev.Amount.minor(currency)
		if err != nil {
			return RefundResult{}, err
		}
		return RefundResult{ProviderRef: rev.LegacyID, Amount: got}, nil
	}
	return RefundResult{ProviderRef: tx.LegacyID, Amount: total}, nil
}

// btReversal is what reverseTransaction made: the voided Transaction, or a Refund of all of it
// when the transaction had settled.
type btReversal struct {
	TypeName string        `json:"__typename"`
	ID       string        `json:"id"`
	LegacyID string        `json:"legacyId"`
	Status   string        `json:"status"`
	Amount   *btMoneyValue `json:"amount"`
}

// reverseTransaction voids a transaction, or refunds it in full if it settled meanwhile.
func (b *Braintree) reverseTransaction(ctx context.Context, tx *btTransaction) (*btReversal, error) {
	var data struct {
		ReverseTransaction *struct {
			Reversal *btReversal `json:"reversal"`
		} `json:"reverseTransaction"`
	}
	errs, err := b.do(ctx, btReverseMutation, map[string]any{"input": map[string]any{"transactionId": tx.ID}}, &data)
	if err != nil {
		return nil, err
	}
	r := data.ReverseTransaction
	if r == nil || r.Reversal == nil || r.Reversal.ID == "" {
		if len(errs) == 0 {
			return nil, errors.New("braintree answered the reversal without a result or an error, outcome unknown")
		}
		return nil, braintreeError(errs)
	}
	rev := r.Reversal
	b.log.InfoContext(ctx, "braintree payment reversed", "transaction", tx.LegacyID, "reversal", rev.TypeName, "id", rev.LegacyID, "status", rev.Status)
	if rev.TypeName != "Refund" && rev.Status != btVoided {
		return nil, &RejectedError{Code: "void_failed", Message: "the provider did not void the payment"}
	}
	return rev, nil
}

// Braintree's PaymentStatus values that the gateway acts on.
const (
	btAuthorized             = "AUTHORIZED"
	btAuthorizing            = "AUTHORIZING"
	btSubmittedForSettlement = "SUBMITTED_FOR_SETTLEMENT"
	btSettling               = "SETTLING"
	btSettled                = "SETTLED"
	btSettlementPending      = "SETTLEMENT_PENDING"
	btSettlementConfirmed    = "SETTLEMENT_CONFIRMED"
	btProcessorDeclined      = "PROCESSOR_DECLINED"
	btGatewayRejected        = "GATEWAY_REJECTED"
	btFailed                 = "FAILED"
	btSettlementDeclined     = "SETTLEMENT_DECLINED"
	btVoided                 = "VOIDED"
	btAuthorizationExpired   = "AUTHORIZATION_EXPIRED"
)

// chargeOutcome turns a transaction's status into a result or a classified error. A transaction
// whose amount or currency is not the one asked for (a merchant account in another currency) is
// voided and refused, so that the customer is never charged a wrong sum.
func (b *Braintree) chargeOutcome(ctx context.Context, tx *btTransaction, req ChargeRequest, ref string) (ChargeResult, error) {
	if mismatch := tx.mismatch(req.Amount, req.Currency); mismatch != "" {
		if tx.took() {
			b.log.ErrorContext(ctx, "braintree charged another amount or currency than asked; voiding it", "transaction", tx.LegacyID, "mismatch", mismatch)
			if _, err := b.reverseTransaction(ctx, tx); err != nil {
				return ChargeResult{}, fmt.Errorf("void braintree transaction %s charged in the wrong amount or currency: %w", tx.LegacyID, err)
			}
		}
		if tx.took() || tx.Status == btVoided {
			return ChargeResult{}, &RejectedError{Code: mismatch, Message: "the payment provider is not set up for this currency"}
		}
	}
	switch tx.Status {
	case btSubmittedForSettlement, btSettling, btSettled, btSettlementPending, btSettlementConfirmed:
		return ChargeResult{ProviderRef: tx.LegacyID}, nil
	case btAuthorized:
		// complete captures an authorization; one still here was not captured, and is retried.
		return ChargeResult{}, fmt.Errorf("braintree transaction %s is authorized but not captured", tx.LegacyID)
	case btAuthorizing:
		return ChargeResult{}, fmt.Errorf("braintree transaction %s is still authorizing", tx.LegacyID)
	case btProcessorDeclined:
		ev := tx.event(btProcessorDeclined)
		var code, message string
		if ev != nil && ev.ProcessorResponse != nil {
			code, message = ev.ProcessorResponse.LegacyCode, ev.ProcessorResponse.Message
		}
		var declineType string
		if ev != nil {
			declineType = ev.DeclineType
		}
		b.log.InfoContext(ctx, "braintree processor declined", "transaction", tx.LegacyID, "processor_code", code,
			"processor_message", message, "decline_type", declineType)
		reason := btProcessorReasons[code]
		return ChargeResult{}, &DeclineError{Code: "processor_declined", DeclineCode: reason, Message: btDeclineMessage(reason)}
	case btGatewayRejected:
		ev := tx.event(btGatewayRejected)
		var reason string
		if ev != nil {
			reason = ev.GatewayRejectionReason
			if d := ev.DuplicateOf; reason == "DUPLICATE" && d != nil && braintreeRefMatches(d.OrderID, req.IdempotencyKey) && d.took() {
				// Braintree's duplicate check caught a second charge of this very key: the first
				// one stands, and is completed (captured, if it is only authorized).
				b.log.InfoContext(ctx, "braintree duplicate of this charge", "transaction", d.LegacyID, "status", d.Status)
				first, err := b.transactionByLegacyID(ctx, d.LegacyID)
				if err != nil {
					return ChargeResult{}, err
				}
				if first != nil {
					return b.complete(ctx, first, req, ref, false)
				}
			}
		}
		declineCode := btGatewayReasons[reason]
		if declineCode == "" {
			declineCode = strings.ToLower(reason)
		}
		return ChargeResult{}, &DeclineError{Code: "gateway_rejected", DeclineCode: declineCode, Message: btDeclineMessage(declineCode)}
	case btFailed:
		// Braintree could not reach the card processor; the transaction is final and no money
		// moved. Like a processing error it is a soft decline: a later attempt may pass.
		return ChargeResult{}, &DeclineError{Code: "failed", DeclineCode: "processing_error", Message: "the payment could not be processed, please try again"}
	case btSettlementDeclined:
		return ChargeResult{}, &DeclineError{Code: "settlement_declined", Message: btDeclineMessage("")}
	case btVoided:
		return ChargeResult{}, &RejectedError{Code: "payment_canceled", Message: "the payment was canceled"}
	case btAuthorizationExpired:
		return ChargeResult{}, &RejectedError{Code: "authorization_expired", Message: "the payment's authorization expired"}
	}
	return ChargeResult{}, &RejectedError{Code: "payment_incomplete", Message: fmt.Sprintf("the payment ended in status %s", tx.Status)}
}

// btProcessorReasons maps Braintree's processor response codes
// (developer.paypal.com/braintree/docs/reference/general/processor-responses/authorization-responses)
// onto the decline codes that DeclineError.Hard knows, for the codes whose meaning is settled.
// Any other code stays without a decline code: a soft decline.
var btProcessorReasons = map[string]string{
	"2000": "do_not_honor",
	"2001": "insufficient_funds",
	"2002": "card_velocity_exceeded", // limit exceeded
	"2003": "card_velocity_exceeded", // cardholder's activity limit exceeded
	"2004": "expired_card",
	"2005": "invalid_number",
	"2007": "invalid_account", // no account
	"2008": "invalid_number",  // card account length error
	"2010": "incorrect_cvc",
	"2012": "lost_card",   // possible lost card
	"2013": "stolen_card", // possible stolen card
	"2014": "fraudulent",  // fraud suspected
	"2015": "transaction_not_allowed",
	"2038": "generic_decline",
	"2044": "call_issuer",
	"2046": "generic_decline",
	"2047": "pickup_card",
	"2053": "stolen_card", // card reported as lost or stolen
	"2057": "restricted_card",
	"2099": "authentication_required",
}

// btGatewayReasons maps a GatewayRejectionReason, a refusal by the merchant's own Braintree
// risk settings rather than the bank, onto decline codes.
var btGatewayReasons = map[string]string{
	"FRAUD":                  "fraudulent",
	"RISK_THRESHOLD":         "fraudulent",
	"PAYMENT_METHOD_BLOCKED": "merchant_blacklist",
	"CVV":                    "incorrect_cvc",
	"AVS":                    "incorrect_address",
	"AVS_AND_CVV":            "incorrect_cvc",
	"THREE_D_SECURE":         "authentication_required",
	"DUPLICATE":              "duplicate_transaction",
	"EXCESSIVE_RETRY":        "try_again_later",
}

// btDeclineMessage is what the customer is told. Like Braintree advises, it stays generic for
// fraud, lost and stolen cards, and only names what the customer can fix.
func btDeclineMessage(reason string) string {
	switch reason {
	case "insufficient_funds":
		return "the card has insufficient funds"
	case "expired_card":
		return "the card has expired"
	case "invalid_number":
		return "the card number is incorrect"
	case "incorrect_cvc":
		return "the card's security code is incorrect"
	case "incorrect_address":
		return "the billing address does not match the card"
	case "authentication_required":
		return "the card requires authentication, which this checkout does not support"
	}
	return "the card was declined"
}

// findCharge looks up the charge made under an idempotency key through its orderId; nil when
// the search finds none, which, the search being eventually consistent, does not mean there is
// none. Braintree may retry a declined charge by itself, and a retry with a reusable payment
// method may authorize again, so one key can have several transactions: a captured one wins,
// then an authorized one, then one still authorizing, then the others.
func (b *Braintree) findCharge(ctx context.Context, key string) (*btTransaction, error) {
	var data struct {
		Transactions *struct {
			Edges []struct {
				Node *btTransaction `json:"node"`
			} `json:"edges"`
		} `json:"transactions"`
	}
	errs, err := b.do(ctx, btFindChargeQuery, map[string]any{
		"input": map[string]any{"orderId": map[string]any{"endsWith": braintreeKeyDigest(key)}},
	}, &data)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, braintreeError(errs)
	}
	if data.Transactions == nil {
		return nil, nil
	}
	var found *btTransaction
	rank := func(tx *btTransaction) int {
		switch {
		case tx.captured():
			return 3
		case tx.Status == btAuthorized:
			return 2
		case tx.Status == btAuthorizing:
			return 1
		}
		return 0
	}
	for _, e := range data.Transactions.Edges {
		tx := e.Node
		// endsWith is a text search: keep only exact matches of this key's orderId.
		if tx == nil || !braintreeRefMatches(tx.OrderID, key) {
			continue
		}
		if found == nil || rank(tx) > rank(found) {
			found = tx
		}
	}
	return found, nil
}

// SucceededPayments lists the transactions created at or after since that were captured, oldest
// first, refunded since or not: captured money, not authorizations, which take none. It pages
// through Braintree's search, which lags behind writes, so a capture of the last moments may be
// missing until a later run; the reconciliation looks back far enough for that.
func (b *Braintree) SucceededPayments(ctx context.Context, since time.Time) ([]ProviderPayment, error) {
	input := map[string]any{
		"createdAt": map[string]any{"greaterThanOrEqualTo": since.UTC().Format(time.RFC3339Nano)},
		"status":    map[string]any{"in": btCapturedStatuses},
	}
	var out []ProviderPayment
	var after any
	for {
		var data struct {
			Transactions *struct {
				Edges []struct {
					Node *btTransaction `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool   `json:"hasNextPage"`
					EndCursor   string `json:"endCursor"`
				} `json:"pageInfo"`
			} `json:"transactions"`
		}
		errs, err := b.do(ctx, btSucceededPaymentsQuery, map[string]any{"input": input, "after": after}, &data)
		if err != nil {
			return nil, err
		}
		if len(errs) > 0 {
			return nil, braintreeError(errs)
		}
		if data.Transactions == nil {
			break
		}
		for _, e := range data.Transactions.Edges {
			if e.Node == nil || !e.Node.captured() {
				continue
			}
			p, err := e.Node.payment()
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		page := data.Transactions.PageInfo
		if !page.HasNextPage {
			break
		}
		if page.EndCursor == "" || page.EndCursor == after {
			return nil, errors.New("braintree's transaction search pages without moving on")
		}
		after = page.EndCursor
	}
	slices.SortStableFunc(out, func(x, y ProviderPayment) int { return x.Created.Compare(y.Created) })
	return out, nil
}

// payment is the captured transaction as the reconciliation compares it with the ledger.
func (tx *btTransaction) payment() (ProviderPayment, error) {
	if tx.Amount == nil || tx.Amount.CurrencyCode == "" {
		return ProviderPayment{}, fmt.Errorf("braintree transaction %s has no amount", tx.LegacyID)
	}
	currency := strings.ToLower(tx.Amount.CurrencyCode)
	amount, err := tx.Amount.minor(currency)
	if err != nil {
		return ProviderPayment{}, err
	}
	var refunded int64
	for i := range tx.Refunds {
		r := &tx.Refunds[i]
		if !r.returns() {
			continue
		}
		n, err := r.Amount.minor(currency)
		if err != nil {
			return ProviderPayment{}, err
		}
		refunded += n
	}
	return ProviderPayment{Ref: tx.LegacyID, OrderID: braintreeOrderPart(tx.OrderID), Amount: amount,
		Refunded: refunded, Currency: currency, Created: tx.CreatedAt}, nil
}

// transactionByLegacyID fetches a transaction by the legacy id that Charge returned; nil when
// Braintree knows no such transaction. GraphQL addresses objects by global id, so the legacy id
// is converted first (idsFromLegacyIds, which returns a global id unchanged).
func (b *Braintree) transactionByLegacyID(ctx context.Context, legacyID string) (*btTransaction, error) {
	var ids struct {
		IDs []*string `json:"idsFromLegacyIds"`
	}
	errs, err := b.do(ctx, btIDsQuery, map[string]any{"input": map[string]any{
		"ids": []map[string]any{{"legacyId": legacyID, "type": "TRANSACTION"}},
	}}, &ids)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, braintreeError(errs)
	}
	if len(ids.IDs) != 1 || ids.IDs[0] == nil || *ids.IDs[0] == "" {
		return nil, nil
	}
	var node struct {
		Node *btTransaction `json:"node"`
	}
	errs, err = b.do(ctx, btNodeQuery, map[string]any{"id": *ids.IDs[0]}, &node)
	if err != nil {
		return nil, err
	}
	if node.Node != nil && node.Node.ID != "" {
		return node.Node, nil
	}
	for _, e := range errs {
		if e.Extensions.ErrorClass == "NOT_FOUND" {
			return nil, nil
		}
	}
	if len(errs) > 0 {
		return nil, braintreeError(errs)
	}
	return nil, nil
}

// The GraphQL documents. Each operation is named, which Braintree's request logs show.
const btTransactionFields = `
fragment BraintreeTransactionFields on Transaction {
  id
  legacyId
  orderId
  status
  createdAt
  amount { value currencyCode }
  statusHistory {
    status
    ... on ProcessorDeclinedEvent { declineType processorResponse { legacyCode message } }
    ... on FailedEvent { processorResponse { legacyCode message } }
    ... on GatewayRejectedEvent { gatewayRejectionReason duplicateOf { id legacyId orderId status } }
  }
  refunds { id legacyId orderId status amount { value currencyCode } }
}`

const btAuthorizeMutation = `mutation BraintreeAuthorize($input: AuthorizePaymentMethodInput!) {
  authorizePaymentMethod(input: $input) { transaction { ...BraintreeTransactionFields } }
}` + btTransactionFields

const btCaptureMutation = `mutation BraintreeCapture($input: CaptureTransactionInput!) {
  captureTransaction(input: $input) { transaction { ...BraintreeTransactionFields } }
}` + btTransactionFields

// btFindChargeQuery uses the top-level transactions query: search { transactions } is
// deprecated since 2026-07-01 (developer.paypal.com/braintree/graphql/reference/types/search).
const btFindChargeQuery = `query BraintreeFindCharge($input: TransactionSearchInput!) {
  transactions(input: $input, first: 50) { edges { node { ...BraintreeTransactionFields } } }
}` + btTransactionFields

// btSucceededPaymentsQuery pages through a search by creation time and status.
const btSucceededPaymentsQuery = `query BraintreeSucceededPayments($input: TransactionSearchInput!, $after: String) {
  transactions(input: $input, first: 50, after: $after) {
    edges { node { ...BraintreeTransactionFields } }
    pageInfo { hasNextPage endCursor }
  }
}` + btTransactionFields

const btIDsQuery = `query BraintreeTransactionID($input: IdsFromLegacyIdsInput!) {
  idsFromLegacyIds(input: $input)
}`

const btNodeQuery = `query BraintreeTransaction($id: ID!) {
  node(id: $id) { ... on Transaction { ...BraintreeTransactionFields } }
}` + btTransactionFields

const btRefundMutation = `mutation BraintreeRefund($input: RefundTransactionInput!) {
  refundTransaction(input: $input) { refund { id legacyId orderId status amount { value currencyCode } } }
}`

const btReverseMutation = `mutation BraintreeReverse($input: ReverseTransactionInput!) {
  reverseTransaction(input: $input) {
    reversal {
      __typename
      ... on Transaction { id legacyId status amount { value currencyCode } }
      ... on Refund { id legacyId status amount { value currencyCode } }
    }
  }
}`

// btTransaction is the part of a Braintree Transaction the gateway reads.
type btTransaction struct {
	ID            string          `json:"id"`
	LegacyID      string          `json:"legacyId"`
	OrderID       string          `json:"orderId"`
	Status        string          `json:"status"`
	CreatedAt     time.Time       `json:"createdAt"`
	Amount        *btMoneyValue   `json:"amount"`
	StatusHistory []btStatusEvent `json:"statusHistory"`
	Refunds       []btRefund      `json:"refunds"`
}

// btStatusEvent is one PaymentStatusEvent, with the fields of the event types the gateway reads.
type btStatusEvent struct {
	Status            string `json:"status"`
	DeclineType       string `json:"declineType"`
	ProcessorResponse *struct {
		LegacyCode string `json:"legacyCode"`
		Message    string `json:"message"`
	} `json:"processorResponse"`
	GatewayRejectionReason string         `json:"gatewayRejectionReason"`
	DuplicateOf            *btTransaction `json:"duplicateOf"`
}

type btRefund struct {
	ID       string        `json:"id"`
	LegacyID string        `json:"legacyId"`
	OrderID  string        `json:"orderId"`
	Status   string        `json:"status"`
	Amount   *btMoneyValue `json:"amount"`
}

// returns reports whether the refund sends, or sent, money back: every status but the failures.
func (r *btRefund) returns() bool {
	switch r.Status {
	case btFailed, btVoided, btProcessorDeclined, btGatewayRejected, btSettlementDeclined:
		return false
	}
	return true
}

type btMoneyValue struct {
	Value        string `json:"value"`
	CurrencyCode string `json:"currencyCode"`
}

// minor is the amount in minor units of currency; an absent amount is an error, as no
// Braintree payment lacks one.
func (m *btMoneyValue) minor(currency string) (int64, error) {
	if m == nil {
		return 0, errors.New("braintree returned a payment without an amount")
	}
	return braintreeParseAmount(m.Value, currency)
}

// took reports whether the transaction holds or moved the customer's money.
func (tx *btTransaction) took() bool {
	return tx.Status == btAuthorized || tx.captured()
}

// btCapturedStatuses are the statuses of a transaction that was captured and so took money,
// whether it settled yet or not.
var btCapturedStatuses = []string{btSubmittedForSettlement, btSettling, btSettled, btSettlementPending, btSettlementConfirmed}

// captured reports whether the transaction was captured: money moved, not only held.
func (tx *btTransaction) captured() bool {
	return slices.Contains(btCapturedStatuses, tx.Status)
}

// event is the newest status event with the given status; statusHistory lists newest first.
func (tx *btTransaction) event(status string) *btStatusEvent {
	for i := range tx.StatusHistory {
		if tx.StatusHistory[i].Status == status {
			return &tx.StatusHistory[i]
		}
	}
	return nil
}

// mismatch names how the transaction differs from the amount and currency that were asked
// for, or is empty when it does not (or Braintree did not say).
func (tx *btTransaction) mismatch(amount int64, currency string) string {
	if tx.Amount == nil || tx.Amount.CurrencyCode == "" || currency == "" {
		return ""
	}
	if !strings.EqualFold(tx.Amount.CurrencyCode, currency) {
		return "currency_mismatch"
	}
	if got, err := braintreeParseAmount(tx.Amount.Value, currency); err != nil || got != amount {
		return "amount_mismatch"
	}
	return ""
}

// btGraphQLError is one entry of a GraphQL response's errors array.
type btGraphQLError struct {
	Message    string `json:"message"`
	Extensions struct {
		ErrorClass string `json:"errorClass"`
		LegacyCode string `json:"legacyCode"`
	} `json:"extensions"`
}

func btHasCode(errs []btGraphQLError, codes ...string) bool {
	for _, e := range errs {
		for _, c := range codes {
			if e.Extensions.LegacyCode == c {
				return true
			}
		}
	}
	return false
}

// braintreeError maps a GraphQL response's errors onto the gateway's error classes, by their
// errorClass (developer.paypal.com/braintree/graphql/guides/making_api_calls#errors). Braintree
// answers HTTP 200 even for errors, so this, not the status code, is what classifies them.
func braintreeError(errs []btGraphQLError) error {
	e := errs[0]
	class := e.Extensions.ErrorClass
	switch class {
	case "VALIDATION":
		code := e.Extensions.LegacyCode
		if code == "" {
			code = "validation"
		}
		return &RejectedError{Code: code, Message: customerMessage(e.Message)}
	case "NOT_FOUND":
		return &RejectedError{Code: "not_found", Message: customerMessage(e.Message)}
	case "AUTHENTICATION", "AUTHORIZATION":
		// Wrong, revoked or under-privileged keys: retrying lets ops fix the configuration
		// without losing the checkout.
		return fmt.Errorf("braintree refused the API keys (%s)", class)
	case "INTERNAL", "SERVICE_AVAILABILITY", "RESOURCE_LIMIT":
		return fmt.Errorf("braintree temporarily failed (%s): %s", class, e.Message)
	case "":
		// No class: the GraphQL document or its variables did not validate, which is a bug on
		// this side that no retry fixes.
		return &RejectedError{Code: "graphql_error", Message: customerMessage(e.Message)}
	}
	// NOT_IMPLEMENTED, UNSUPPORTED_CLIENT and classes added later: the request as sent is refused.
	return &RejectedError{Code: strings.ToLower(class), Message: customerMessage(e.Message)}
}

// btMaxResponse bounds how much of a response is read; Braintree's answers here are a few KiB.
const btMaxResponse = 4 << 20

// do sends one GraphQL operation and decodes its data into out. It returns a non-nil error for
// a failure of the transport or of Braintree as a whole, already classified, and otherwise the
// response's GraphQL errors, which the caller weighs against whatever data came with them.
func (b *Braintree) do(ctx context.Context, query string, variables map[string]any, out any) ([]btGraphQLError, error) {
	body, err := json.Marshal(struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}{query, variables})
	if err != nil {
		return nil, &RejectedError{Code: "invalid_request", Message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("braintree request: %w", err)
	}
	req.Header.Set("Authorization", b.authorization)
	req.Header.Set("Braintree-Version", b.version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		// A timeout, a dropped connection or the activity's context ending: the request may or
		// may not have reached Braintree. The error names the URL only, never the keys, which
		// travel in a header.
		return nil, fmt.Errorf("braintree unreachable, outcome unknown: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, btMaxResponse))
	if err != nil {
		return nil, fmt.Errorf("braintree response lost, outcome unknown: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("braintree temporarily failed (status %d)", resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("braintree refused the API keys (status %d)", resp.StatusCode)
	}
	var envelope struct {
		Data   json.RawMessage  `json:"data"`
		Errors []btGraphQLError `json:"errors"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		if resp.StatusCode >= 400 {
			return nil, &RejectedError{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: "the payment provider refused the request"}
		}
		// Something answered that is not Braintree's GraphQL, such as a proxy's error page.
		return nil, fmt.Errorf("braintree answered status %d with an unreadable body, outcome unknown", resp.StatusCode)
	}
	if resp.StatusCode >= 400 && len(envelope.Errors) == 0 {
		return nil, &RejectedError{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: "the payment provider refused the request"}
	}
	if out != nil && len(envelope.Data) > 0 && !bytes.Equal(envelope.Data, []byte("null")) {
		if err := json.Unmarshal(envelope.Data, out); err != nil {
			return nil, fmt.Errorf("braintree answered data this gateway cannot read, outcome unknown: %w", err)
		}
	}
	return envelope.Errors, nil
}

// braintreeAmount formats minor units as Braintree's decimal Amount ("a whole number or a
// number with exactly two or three decimal places"): 2500 usd is "25.00", 2500 jpy is "2500".
func braintreeAmount(minor int64, currency string) (string, error) {
	if minor <= 0 {
		return "", fmt.Errorf("the amount must be positive, not %d", minor)
	}
	if currency == "" {
		return "", errors.New("the currency is missing")
	}
	return money.Decimal(minor, currency)
}

// braintreeParseAmount reads a decimal amount as minor units of currency, exactly.
func braintreeParseAmount(value, currency string) (int64, error) {
	n, err := money.Parse(value, currency)
	if err != nil {
		return 0, fmt.Errorf("braintree amount: %w", err)
	}
	return n, nil
}
