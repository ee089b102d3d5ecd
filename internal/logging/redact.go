package logging

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redaction keeps secrets, provider tokens, card numbers and email addresses out of every log
// line, whatever code wrote it (cartflow's, the Temporal SDK's, a provider library's error text).
// It runs on every attribute and on the message, so it also covers errors that quote a request.

var (
	// secretPattern: Stripe secret, restricted and webhook keys, and bearer credentials.
	secretPattern = regexp.MustCompile(`\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)
	// tokenPattern: storefront payment tokens, which let their holder charge the card.
	tokenPattern = regexp.MustCompile(`\b(?:pm|tok|src|seti)_[A-Za-z0-9_]{6,}|\btokencc_[A-Za-z0-9_]+|\bfake-[a-z0-9-]+-nonce\b`)
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	// cardPattern finds digit runs of card length, spaces or dashes allowed between digits;
	// only those that pass the Luhn check are redacted, so ids and timestamps survive.
	cardPattern = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
)

// sensitiveKeys are attribute names whose values are never logged, whatever they look like.
var sensitiveKeys = []string{"password", "secret", "token", "authorization", "api_key", "apikey", "email", "card", "cvc", "dsn"}

// Redact returns s with secrets, tokens, card numbers and email addresses replaced by markers.
func Redact(s string) string {
	s = secretPattern.ReplaceAllString(s, "[secret]")
	s = tokenPattern.ReplaceAllString(s, "[token]")
	s = emailPattern.ReplaceAllString(s, "[email]")
	return cardPattern.ReplaceAllStringFunc(s, func(m string) string {
		if luhn(m) {
			return "[card]"
		}
		return m
	})
}

// redactAttr redacts string values (and errors and other values that print as text) and drops
// the values of sensitive keys.
func redactAttr(a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	for _, k := range sensitiveKeys {
		if strings.Contains(key, k) && a.Value.Kind() != slog.KindGroup {
			return slog.String(a.Key, "[redacted]")
		}
	}
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Redact(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, Redact(x.String()))
		case []byte:
			return slog.String(a.Key, Redact(string(x)))
		}
	}
	return a
}

// luhn reports whether the digits in s pass the Luhn checksum that card numbers carry.
func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
