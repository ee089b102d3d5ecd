package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/directory"
	"github.com/cartflow/cartflow/internal/jsontext"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// checkoutRequest is the body of POST /api/v1/checkouts. The client never sends prices.
type checkoutRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Items []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
	Payment struct {
		Provider string `json:"provider"`
		Token    string `json:"token"`
	} `json:"payment"`
}

var (
	// skuPattern is a catalog SKU: lower-case letters, digits and dashes, as the storefront's
	// URLs and the seed catalog spell them. A SKU of any other shape cannot exist, so it is
	// refused before it reaches the catalog query.
	skuPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	// idempotencyKeyPattern keeps keys safe inside workflow IDs, provider idempotency keys and search queries.
	idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,100}$`)
	// stripeTokenPattern accepts PaymentMethod ids and legacy card tokens; anything else, card
	// numbers included, is refused without being echoed.
	stripeTokenPattern = regexp.MustCompile(`^(pm|tok)_[A-Za-z0-9_]{1,200}$`)
	// paypalTokenPattern is an approved PayPal order id: 17 upper-case letters and digits.
	paypalTokenPattern = regexp.MustCompile(`^[A-Z0-9]{17}$`)
	// braintreeTokenPattern is a payment-method nonce: tokencc_… from the client SDKs, or
	// Braintree's documented sandbox nonces (fake-valid-nonce, fake-processor-declined-visa-nonce, …).
	braintreeTokenPattern = regexp.MustCompile(`^(tokencc_[A-Za-z0-9_]{1,200}|fake-[a-z0-9-]{1,80}-nonce)$`)
)

// tokenPatterns lists the providers a checkout accepts, with the shape of their tokens. The
// shapes do not overlap, so the token alone tells which provider it belongs to.
var tokenPatterns = map[string]*regexp.Regexp{
	billing.ProviderStripe:    stripeTokenPattern,
	billing.ProviderPayPal:    paypalTokenPattern,
	billing.ProviderBraintree: braintreeTokenPattern,
}

// providerOfToken is the provider whose token shape matches, or "" for none.
func providerOfToken(token string) string {
	for provider, pattern := range tokenPatterns {
		if pattern.MatchString(token) {
			return provider
		}
	}
	return ""
}

func validIdempotencyKey(key string) *apiError {
	switch {
	case key == "":
		return badRequest("missing_idempotency_key", "Idempotency-Key", "the Idempotency-Key header is required; send a new random value (a UUID) per checkout")
	case !idempotencyKeyPattern.MatchString(key):
		return badRequest("invalid_idempotency_key", "Idempotency-Key", "the Idempotency-Key must be 8 to 100 characters of letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

// decodeCheckout reads the body of POST /api/v1/checkouts strictly.
func decodeCheckout(body io.Reader) (checkoutRequest, error) {
	var req checkoutRequest
	return req, decodeStrict(body, &req)
}

// decodeStrict reads a JSON body into v strictly: unknown fields, wrong types and trailing data
// are refused, each with the field at fault, so that a client's mistake is never half-understood.
func decodeStrict(body io.Reader, v any) error {
	raw, err := readBody(body)
	if err != nil {
		return err
	}
	return decodeJSON(raw, v)
}

// readBody reads the whole body, telling a body over the size limit from one that broke off.
func readBody(body io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		if isBodyTooLarge(err) {
			return nil, errBodyTooLarge
		}
		return nil, badRequest("unreadable_body", "", "the request body could not be read")
	}
	return raw, nil
}

// decodeJSON is decodeStrict's decoding, over a body already read. Every decoder of a request
// body comes here, so that no string that is not text reaches PostgreSQL or Temporal: the raw
// body is checked first, because encoding/json would quietly replace invalid UTF-8 with U+FFFD
// and decode \u0000 into a NUL that a text column refuses.
func decodeJSON(raw []byte, v any) error {
	var textErr *jsontext.Error
	if errors.As(jsontext.Check(raw), &textErr) {
		field := cmp.Or(textErr.Path, "body")
		if textErr.TooDeep {
			return badRequest("malformed_json", field, fmt.Sprintf("the request nests deeper than %d levels", jsontext.MaxDepth))
		}
		return unprocessable("invalid_text", field, field+" must be UTF-8 text without NUL characters")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			field := typeErr.Field
			if field == "" {
				field = "body"
			}
			return badRequest("invalid_type", field, fmt.Sprintf("%s must be %s", field, jsonKind(typeErr.Type)))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// encoding/json quotes the key with %q; an empty key still needs a field to name.
			field, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			if uerr != nil || field == "" {
				field = "body"
			}
			return badRequest("unknown_field", field, "the request has a field this API does not know")
		default:
			return badRequest("malformed_json", "", "the request body is not valid JSON")
		}
	}
	// Token, unlike More, also sees a stray closing bracket after the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed_json", "", "the request body has data after the JSON object")
	}
	return nil
}

// jsonKind names the JSON type a Go type decodes from, so that messages never show Go internals.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "true or false"
	default:
		return "an object"
	}
}

// validate checks everything that can be checked without the database and returns the
// standardized customer.
func (r *checkoutRequest) validate() (directory.Customer, *apiError) {
	email, err := directory.StandardizeEmail(r.Email)
	if err != nil {
		return directory.Customer{}, unprocessable("invalid_email", "email", "the email address is not valid")
	}
	name, err := directory.StandardizeName(r.Name)
	if err != nil {
		return directory.Customer{}, unprocessable("invalid_name", "name", fmt.Sprintf("the name must be 1 to %d characters", directory.MaxNameLength))
	}
	if aerr := r.validateItems(); aerr != nil {
		return directory.Customer{}, aerr
	}
	provider, aerr := validPayment("payment.", r.Payment.Provider, r.Payment.Token)
	if aerr != nil {
		return directory.Customer{}, aerr
	}
	r.Payment.Provider = provider
	return directory.Customer{Email: email, Name: name}, nil
}

// validateItems checks the cart's lines as far as the catalog is not needed; POST
// /api/v1/paypal/orders checks its cart with it too.
func (r *checkoutRequest) validateItems() *apiError {
	if len(r.Items) == 0 {
		return unprocessable(store.CodeEmptyCart, "items", "the cart has no items")
	}
	if len(r.Items) > store.MaxCartLines {
		return unprocessable(store.CodeTooManyLines, "items", fmt.Sprintf("a cart holds at most %d lines", store.MaxCartLines))
	}
	for i, it := range r.Items {
		if it.SKU == "" {
			return unprocessable("missing_sku", fmt.Sprintf("items[%d].sku", i), "every item needs a sku")
		}
		if !skuPattern.MatchString(it.SKU) {
			return unprocessable("invalid_sku", fmt.Sprintf("items[%d].sku", i),
				"a sku is 1 to 64 lower-case letters, digits and '-', starting with a letter or digit")
		}
		if it.Quantity < 1 || it.Quantity > store.MaxLineQuantity {
			return unprocessable(store.CodeInvalidQuantity, fmt.Sprintf("items[%d].quantity", i),
				fmt.Sprintf("quantity must be between 1 and %d", store.MaxLineQuantity))
		}
	}
	return nil
}

// validPayment checks a payment method as the storefront sends it: a known provider and a token
// of that provider's shape, so that card data is refused without being echoed. prefix is where
// the fields sit in the request ("payment." in a checkout, "" at the top of a body).
//
// The provider is the one the token belongs to; provider may be left out, and when given it
// must agree. The provider returned is the one to charge through.
func validPayment(prefix, provider, token string) (string, *apiError) {
	if _, ok := tokenPatterns[provider]; provider != "" && !ok {
		return "", unprocessable("unknown_provider", prefix+"provider", prefix+"provider must be one of: stripe, paypal, braintree")
	}
	of := providerOfToken(token)
	switch {
	case of == "":
		return "", unprocessable("invalid_token", prefix+"token", prefix+"token must be a provider token from the storefront, never card data")
	case provider != "" && of != provider:
		return "", unprocessable("token_provider_mismatch", prefix+"token", prefix+"token is not a "+provider+" token")
	}
	return of, nil
}

func (r *checkoutRequest) lines() []store.LineRequest {
	out := make([]store.LineRequest, len(r.Items))
	for i, it := range r.Items {
		out[i] = store.LineRequest{SKU: it.SKU, Quantity: it.Quantity}
	}
	return out
}

// pricingError maps a cart the catalog refuses to the item at fault.
func pricingError(perr *store.PricingError) *apiError {
	field := "items"
	if perr.Line >= 0 {
		field = fmt.Sprintf("items[%d].sku", perr.Line)
		if perr.Code == store.CodeInvalidQuantity {
			field = fmt.Sprintf("items[%d].quantity", perr.Line)
		}
	}
	return unprocessable(perr.Code, field, perr.Message)
}

// hash fingerprints the request after standardization, so that the same checkout sent again
// (even with different white space or letter case in the email) matches, and a different one does not.
func (r *checkoutRequest) hash(c directory.Customer) string {
	canonical, _ := json.Marshal(struct {
		Customer directory.Customer  `json:"customer"`
		Lines    []store.LineRequest `json:"lines"`
		Provider string              `json:"provider"`
		Token    string              `json:"token"`
	}{c, r.lines(), r.Payment.Provider, r.Payment.Token})
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// purchaseInput is the Checkout workflow's input for a validated request.
func (r *checkoutRequest) purchaseInput(checkoutID, key, hash string) workflows.CheckoutInput {
	items := make([]workflows.Item, len(r.Items))
	for i, it := range r.Items {
		items[i] = workflows.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	return workflows.CheckoutInput{
		CheckoutID: checkoutID, IdempotencyKey: key, RequestHash: hash,
		Email: r.Email, Name: r.Name, Items: items,
		Payment: workflows.Payment{Provider: r.Payment.Provider, Token: r.Payment.Token},
	}
}
