package logging

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// Stripe's documented test card numbers, built at run time so that no card number sits in the source.
var (
	visa   = strings.Repeat("4242", 4)
	spaced = strings.Join([]string{"4000", "0566", "5566", "5556"}, " ")
	dashed = strings.Repeat("5555-", 3) + "4444"
)

func TestRedactionKeepsSecretsOutOfLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "debug", "test")
	secrets := []string{
		"sk_test_4eC39HqLyjWDarjtT1zdp7dc", "whsec_abcdef123456", "pm_1NqAbcDEFghiJKLmno", "tok_visa_debit_x",
		visa, spaced, dashed, "ada.lovelace@example.com", "fake-valid-nonce",
		"Bearer abcdefghijkl0123",
	}
	log.Info("charging ada.lovelace@example.com with pm_1NqAbcDEFghiJKLmno",
		"error", errors.New("stripe said: card "+visa+" declined for key sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
		"header", "Authorization: Bearer abcdefghijkl0123",
		"card_like", spaced,
		"note", "nonce fake-valid-nonce, card "+dashed+", tok_visa_debit_x, whsec_abcdef123456",
		"customer_email", "anything",
		"api_key", "k-123",
	)
	line := buf.String()
	for _, s := range secrets {
		if strings.Contains(line, s) {
			t.Errorf("log line keeps %q:\n%s", s, line)
		}
	}
	for _, want := range []string{"[email]", "[token]", "[card]", "[secret]", `"customer_email":"[redacted]"`, `"api_key":"[redacted]"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s:\n%s", want, line)
		}
	}
}

func TestRedactionKeepsOrdinaryValues(t *testing.T) {
	for _, s := range []string{
		"checkout-e2e-abc/charge", "pi_3NqAbc", "order 9b2f6c9e-55a2-4c55-9d2c-2b4b4f3f6a10",
		"renewal-36a40ad1-90aa-4c05-bedd-396038cba041-20260501T090000Z", "amount 6200 usd", "1795614323000000000",
	} {
		if got := Redact(s); got != s {
			t.Errorf("Redact(%q) = %q", s, got)
		}
	}
}

// redactUnguarded is Redact without its cheap pre-checks: every pattern over the whole text.
func redactUnguarded(s string) string {
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

// The pre-checks only skip patterns that cannot match: on text built from the pieces the
// patterns look for (and the case folds of bearer and basic), Redact and the unguarded
// patterns agree.
func TestRedactionPreChecksChangeNothing(t *testing.T) {
	pieces := []string{"sk_", "rk_", "live_", "test_", "whsec_", "Bearer", "bEaReR", "BASIC", "baſic", "bas", " ", "\t", "-", "_",
		"pm_", "tok_", "src_", "seti_", "tokencc_", "fake-", "valid", "-nonce", "@", "example.com", ".", "ada", "4242", "4000",
		"0566", "5555-", "9", "1 ", "x", "Z", "abcdefgh", "/api/v1/checkouts/:id", "ſ", "é"}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []string{visa, spaced, dashed, "Authorization: Bearer abcdefghijkl0123", "key sk_test_4eC39HqLyjWDarjtT1zdp7dc",
		"Authorization: baſic abcdefgh123", "bEaReR\tabcdefgh12", "checkout-bench-x1 basically ok"}
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		if got, want := Redact(s), redactUnguarded(s); got != want {
			t.Fatalf("Redact(%q) = %q, the patterns alone make %q", s, got, want)
		}
	}
}

// BenchmarkRedactAccessLogValues redacts the values of a BFF access log line (and its request
// context), with the pre-checks and, as the baseline in the same run, with the patterns alone.
func BenchmarkRedactAccessLogValues(b *testing.B) {
	values := []string{"GET", "/api/v1/checkouts/:id", "api", "5f0c1e9a2b7d4c3e8f1a6b2c",
		"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "http request", "checkout-bench-x1y2z3-co-17"}
	for _, bc := range []struct {
		name   string
		redact func(string) string
	}{{"pre-checked", Redact}, {"patterns-only", redactUnguarded}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				for _, v := range values {
					_ = bc.redact(v)
				}
			}
		})
	}
}
