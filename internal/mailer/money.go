package mailer

import (
	"strings"

	"github.com/cartflow/cartflow/internal/money"
)

// MinorUnits returns how many decimal digits currency's minor unit has: 0 for jpy, 3 for kwd,
// 2 for usd and for any currency not known to differ.
func MinorUnits(currency string) int { return money.Exponent(currency) }

// FormatMoney formats an amount of minor units for people: "9.00 USD", "1,250.50 EUR",
// "1,500 JPY", "-3.25 USD". It works on integers only, so no amount is ever rounded.
func FormatMoney(amount int64, currency string) string {
	neg := amount < 0
	// The magnitude as uint64 so that math.MinInt64 negates without overflow.
	mag := uint64(amount)
	if neg {
		mag = -mag
	}
	whole, frac := money.Split(mag, currency)

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
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if currency != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ToUpper(currency))
	}
	return b.String()
}
