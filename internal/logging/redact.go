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
//
// Each pattern runs only on text that holds something none of its matches can do without (an
// underscore, an @, a run of 13 digits…). Most values logged hold none (a route, a status, a
// request id), and running every regular expression over each of them was a tenth of the BFF's
// CPU on the checkout status read.
func Redact(s string) string {
	if maySecret(s) {
		s = secretPattern.ReplaceAllString(s, "[secret]")
	}
	if strings.IndexByte(s, '_') >= 0 || strings.Contains(s, "-nonce") {
		s = tokenPattern.ReplaceAllString(s, "[token]")
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = emailPattern.ReplaceAllString(s, "[email]")
	}
	if !mayCard(s) {
		return s
	}
	return cardPattern.ReplaceAllStringFunc(s, func(m string) string {
		if luhn(m) {
			return "[card]"
		}
		return m
	})
}

// maySecret reports whether s holds what every match of secretPattern holds: _live_ or _test_
// (Stripe keys), whsec_, or the word bearer or basic in any case.
func maySecret(s string) bool {
	return strings.Contains(s, "_live_") || strings.Contains(s, "_test_") || strings.Contains(s, "whsec_") ||
		containsFold(s, "bearer") || containsFold(s, "basic")
}

// containsFold reports whether s holds word (lower-case ASCII letters) in any case, as the
// pattern's (?i) matches it: ASCII letters fold to their other case, and s also to ſ (U+017F),
// the only other letter that folds to one of bearer's or basic's.
func containsFold(s, word string) bool {
	for start := 0; start < len(s); start++ {
		i, j := start, 0
		for ; j < len(word) && i < len(s); j++ {
			switch {
			case s[i]|0x20 == word[j]:
				i++
			case word[j] == 's' && strings.HasPrefix(s[i:], "ſ"):
				i += len("ſ")
			default:
				j = len(word) + 1 // no match at start
			}
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// mayCard reports whether s holds a run of at least 13 digits with spaces or dashes between
// them, as every match of cardPattern does.
func mayCard(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if run++; run >= 13 {
				return true
			}
		case (c == ' ' || c == '-') && run > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// a separator between two digits keeps the run going
		default:
			run = 0
		}
	}
	return false
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
