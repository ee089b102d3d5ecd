package mailer

import (
	"strconv"
	"strings"
)

// decimals is the number of minor-unit digits of the ISO 4217 currencies that do not have two.
// Stripe's zero-decimal list is the authority for which currencies are charged in whole units.
var decimals = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "isk": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
	"pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "iqd": 3, "jod": 3, "kwd": 3, "lyd": 3, "omr": 3, "tnd": 3,
}

// MinorUnits returns how many decimal digits currency's minor unit has: 0 for jpy, 3 for kwd,
// 2 for usd and for any currency not known to differ.
func MinorUnits(currency string) int {
	if d, ok := decimals[strings.ToLower(currency)]; ok {
		return d
	}
	return 2
}

// FormatMoney formats an amount of minor units for people: "9.00 USD", "1,250.50 EUR",
// "1,500 JPY", "-3.25 USD". It works on integers only, so no amount is ever rounded.
func FormatMoney(amount int64, currency string) string {
	neg := amount < 0
	// The magnitude as uint64 so that math.MinInt64 negates without overflow.
	mag := uint64(amount)
	if neg {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	d := MinorUnits(currency)
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], digits[len(digits)-d:]

	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if d > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if currency != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ToUpper(currency))
	}
	return b.String()
}
