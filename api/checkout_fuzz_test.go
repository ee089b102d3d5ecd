package main

import (
	"bytes"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cartflow/cartflow/internal/store"
)

// stableCode is the shape of every error code clients switch on.
var stableCode = regexp.MustCompile(`^[a-z][a-z_]*[a-z]$`)

// fieldlessCodes are the errors about the body as a whole, which name no field when the body's
// syntax breaks before one is known.
var fieldlessCodes = map[string]bool{"malformed_json": true, "unreadable_body": true, "body_too_large": true}

// FuzzCheckoutRequest feeds arbitrary bodies and Idempotency-Keys through everything a checkout
// request passes before the database prices it: decoding, validation, the cart lines, the
// fingerprint, pricing against the test catalog. Nothing may panic; every refusal is an apiError
// with a 4xx status, a stable code and the field; and what passes is text that PostgreSQL and
// Temporal can hold, with SKUs of the catalog's shape.
func FuzzCheckoutRequest(f *testing.F) {
	f.Add([]byte(checkoutJSON(nil)), testKey)
	f.Add([]byte(rawCheckout("name", `Ada\u0000`)), "short")
	f.Add([]byte(rawCheckout("token", "pm_\xff")), "key-\x00-zzzzzz")
	catalog := map[string]store.Product{}
	for _, p := range testCatalog {
		catalog[p.SKU] = p
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		if aerr := validIdempotencyKey(key); aerr != nil {
			wantClientError(t, aerr)
		} else if !isText(key) || !idempotencyKeyPattern.MatchString(key) {
			t.Fatalf("Idempotency-Key %q accepted", key)
		}

		req, err := decodeCheckout(bytes.NewReader(body))
		if err != nil {
			wantClientError(t, err)
			return
		}
		customer, aerr := req.validate()
		if aerr != nil {
			wantClientError(t, aerr)
			return
		}
		for _, s := range []string{customer.Email, customer.Name, req.Email, req.Name, req.Payment.Provider, req.Payment.Token} {
			if !isText(s) {
				t.Fatalf("validated request holds %q, which is not text", s)
			}
		}
		lines := req.lines()
		if len(lines) == 0 || len(lines) > store.MaxCartLines {
			t.Fatalf("validated request has %d lines", len(lines))
		}
		for i, l := range lines {
			if !skuPattern.MatchString(l.SKU) || l.Quantity < 1 || l.Quantity > store.MaxLineQuantity {
				t.Fatalf("validated line %d is %+v", i, l)
			}
		}
		if _, ok := tokenPatterns[req.Payment.Provider]; !ok {
			t.Fatalf("validated provider %q", req.Payment.Provider)
		}
		hash := req.hash(customer)
		if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
			t.Fatalf("hash %q is not a hex SHA-256", hash)
		}
		// The same body fingerprints the same, however often it is read.
		again, err := decodeCheckout(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("second decoding failed: %v", err)
		}
		againCustomer, _ := again.validate()
		if again.hash(againCustomer) != hash {
			t.Fatal("the same body fingerprints differently")
		}
		if _, _, _, perr := store.PriceCart(lines, catalog); perr != nil {
			wantClientError(t, pricingError(perr))
		}
	})
}

// wantClientError fails unless err is an apiError the client can act on: a 4xx status, a
// stable code, a message, and a field that is text (present unless the body as a whole is at fault).
func wantClientError(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an apiError", err, err)
	}
	if ae.Status < http.StatusBadRequest || ae.Status >= http.StatusInternalServerError {
		t.Fatalf("error %+v has status %d, want 4xx", ae, ae.Status)
	}
	if !stableCode.MatchString(ae.Code) || ae.Message == "" || !isText(ae.Message) {
		t.Fatalf("error %+v lacks a stable code or a message", ae)
	}
	if !isText(ae.Field) || (ae.Field == "" && !fieldlessCodes[ae.Code]) {
		t.Fatalf("error %+v names no usable field", ae)
	}
}

// isText reports whether s is UTF-8 without NUL characters, which a PostgreSQL text column holds.
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
