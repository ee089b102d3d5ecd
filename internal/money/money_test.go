package money

import (
	"math"
	"testing"
)

func TestDecimalAndParseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		minor    int64
		currency string
		decimal  string
	}{
		{2500, "usd", "25.00"}, {5, "usd", "0.05"}, {0, "eur", "0.00"}, {2500, "jpy", "2500"}, {2500, "JPY", "2500"},
		{1234, "kwd", "1.234"}, {7, "kwd", "0.007"}, {math.MaxInt64, "usd", "92233720368547758.07"},
	} {
		got, err := Decimal(tc.minor, tc.currency)
		if err != nil || got != tc.decimal {
			t.Errorf("Decimal(%d, %s) = %q, %v; want %q", tc.minor, tc.currency, got, err, tc.decimal)
		}
		back, err := Parse(tc.decimal, tc.currency)
		if err != nil || back != tc.minor {
			t.Errorf("Parse(%q, %s) = %d, %v; want %d", tc.decimal, tc.currency, back, err, tc.minor)
		}
	}
	if _, err := Decimal(-1, "usd"); err == nil {
		t.Error("a negative amount was formatted")
	}
}

func TestParseIsExact(t *testing.T) {
	for _, tc := range []struct {
		value, currency string
		want            int64
		ok              bool
	}{
		{"25", "usd", 2500, true}, {"25.5", "usd", 2550, true}, {"25.500", "usd", 2550, true},
		{"25.501", "usd", 0, false}, {"1.5", "jpy", 0, false}, {"1.0", "jpy", 1, true},
		{"-1.00", "usd", 0, false}, {"1e3", "usd", 0, false}, {"", "usd", 0, false}, {".5", "usd", 0, false},
		{"99999999999999999999", "usd", 0, false},
	} {
		got, err := Parse(tc.value, tc.currency)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q, %s) = %d, %v; want %d ok=%v", tc.value, tc.currency, got, err, tc.want, tc.ok)
		}
	}
}
