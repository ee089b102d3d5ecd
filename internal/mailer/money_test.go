package mailer_test

import (
	"math"
	"testing"

	"github.com/cartflow/cartflow/internal/mailer"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{900, "usd", "9.00 USD"},
		{0, "usd", "0.00 USD"},
		{5, "usd", "0.05 USD"},
		{99, "eur", "0.99 EUR"},
		{6200, "usd", "62.00 USD"},
		{123456789, "gbp", "1,234,567.89 GBP"},
		{100000, "usd", "1,000.00 USD"},
		{-300, "usd", "-3.00 USD"},
		{-5, "usd", "-0.05 USD"},
		{1500, "jpy", "1,500 JPY"},
		{0, "jpy", "0 JPY"},
		{999, "krw", "999 KRW"},
		{1000, "JPY", "1,000 JPY"},
		{1234, "kwd", "1.234 KWD"},
		{5, "bhd", "0.005 BHD"},
		{math.MaxInt64, "usd", "92,233,720,368,547,758.07 USD"},
		{math.MinInt64, "usd", "-92,233,720,368,547,758.08 USD"},
		{math.MinInt64, "jpy", "-9,223,372,036,854,775,808 JPY"},
	}
	for _, tc := range tests {
		if got := mailer.FormatMoney(tc.amount, tc.currency); got != tc.want {
			t.Errorf("FormatMoney(%d, %q) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for cur, want := range map[string]int{"usd": 2, "eur": 2, "jpy": 0, "KRW": 0, "clp": 0, "kwd": 3, "xyz": 2} {
		if got := mailer.MinorUnits(cur); got != want {
			t.Errorf("MinorUnits(%q) = %d, want %d", cur, got, want)
		}
	}
}
