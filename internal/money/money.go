// Package money converts between cartflow's amounts (integer minor units of a lowercase ISO 4217
// currency) and the decimal strings that providers and people use, with integers only, so that
// no amount is ever rounded.
package money

import (
	"fmt"
	"strconv"
	"strings"
)

// exponents is the number of minor-unit digits of the currencies that do not have two.
// Stripe's zero-decimal list is the authority for which currencies are charged in whole units.
var exponents = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "isk": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
	"pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "iqd": 3, "jod": 3, "kwd": 3, "lyd": 3, "omr": 3, "tnd": 3,
}

// Exponent returns how many decimal digits currency's minor unit has: 0 for jpy, 3 for kwd, 2
// for usd and for any currency not known to differ.
func Exponent(currency string) int {
	if d, ok := exponents[strings.ToLower(currency)]; ok {
		return d
	}
	return 2
}

// Split returns the whole and fractional digits of a non-negative amount of minor units:
// 2500 usd is "25", "00"; 2500 jpy is "2500", ""; 1234 kwd is "1", "234".
func Split(minor uint64, currency string) (whole, frac string) {
	exp := Exponent(currency)
	digits := strconv.FormatUint(minor, 10)
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	return digits[:len(digits)-exp], digits[len(digits)-exp:]
}

// Decimal formats a non-negative amount of minor units as a plain decimal: "25.00", "2500", "1.234".
func Decimal(minor int64, currency string) (string, error) {
	if minor < 0 {
		return "", fmt.Errorf("money: negative amount %d", minor)
	}
	whole, frac := Split(uint64(minor), currency)
	if frac == "" {
		return whole, nil
	}
	return whole + "." + frac, nil
}

// Parse reads a plain decimal ("25.00", "250.0", "100") as minor units of currency, exactly.
// More decimals than the currency has are an error unless they are zeros.
func Parse(value, currency string) (int64, error) {
	exp := Exponent(currency)
	whole, frac, _ := strings.Cut(strings.TrimSpace(value), ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("money: %q is not a decimal number", value)
	}
	if len(frac) > exp {
		if strings.Trim(frac[exp:], "0") != "" {
			return 0, fmt.Errorf("money: %q has more decimals than %s allows", value, currency)
		}
		frac = frac[:exp]
	}
	frac += strings.Repeat("0", exp-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("money: %q: %w", value, err)
	}
	return n, nil
}
