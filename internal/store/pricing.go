package store

import "fmt"

// Cart limits. They bound what one checkout can ask for, so that absurd quantities are refused
// up front instead of reaching the payment provider.
const (
	MaxCartLines    = 50
	MaxLineQuantity = 99
)

// LineRequest is one line of a cart as the customer asked for it: no price, which comes from the catalog.
type LineRequest struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// PricedLine is a cart line priced from the catalog.
type PricedLine struct {
	LineNo     int    `json:"line_no"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	UnitAmount int64  `json:"unit_amount"`
	LineAmount int64  `json:"line_amount"`
}

// PricingError says why a cart cannot be priced, and which line is at fault (-1 for the cart as a whole).
type PricingError struct {
	Code    string
	Message string
	Line    int
}

// Error is the message alone; the BFF answers with Code and Line beside it.
func (e *PricingError) Error() string { return e.Message }

// Pricing error codes, stable for API clients.
const (
	CodeEmptyCart          = "empty_cart"
	CodeTooManyLines       = "too_many_items"
	CodeInvalidQuantity    = "invalid_quantity"
	CodeUnknownSKU         = "unknown_sku"
	CodeProductUnavailable = "product_unavailable"
	CodeDuplicateSKU       = "duplicate_sku"
	CodeMixedCurrency      = "mixed_currency"
	// CodeSubscriptionCart: a plan is bought on its own, one at a time.
	CodeSubscriptionCart = "subscription_cart_invalid"
)

// PriceCart prices lines against catalog, the products keyed by SKU. Both the BFF (to refuse bad
// carts before anything starts) and the order activity (authoritatively, inside its transaction)
// call it, so the two can never disagree about what a valid cart is.
//
// A subscription plan is bought alone and once, and the total is what is due today: the plan's
// price for the first period, or nothing for a plan that starts with a trial.
func PriceCart(lines []LineRequest, catalog map[string]Product) ([]PricedLine, int64, string, *PricingError) {
	if len(lines) == 0 {
		return nil, 0, "", &PricingError{Code: CodeEmptyCart, Message: "the cart has no items", Line: -1}
	}
	if len(lines) > MaxCartLines {
		return nil, 0, "", &PricingError{Code: CodeTooManyLines, Message: fmt.Sprintf("a cart holds at most %d lines", MaxCartLines), Line: -1}
	}
	priced := make([]PricedLine, 0, len(lines))
	seen := make(map[string]bool, len(lines))
	var total int64
	var currency string
	for i, l := range lines {
		if l.Quantity < 1 || l.Quantity > MaxLineQuantity {
			return nil, 0, "", &PricingError{Code: CodeInvalidQuantity, Message: fmt.Sprintf("quantity must be between 1 and %d", MaxLineQuantity), Line: i}
		}
		p, ok := catalog[l.SKU]
		switch {
		case !ok:
			return nil, 0, "", &PricingError{Code: CodeUnknownSKU, Message: fmt.Sprintf("no product has sku %q", l.SKU), Line: i}
		case !p.Active:
			return nil, 0, "", &PricingError{Code: CodeProductUnavailable, Message: fmt.Sprintf("product %q is no longer sold", l.SKU), Line: i}
		case p.Kind == KindSubscription && (len(lines) > 1 || l.Quantity != 1):
			return nil, 0, "", &PricingError{Code: CodeSubscriptionCart, Message: fmt.Sprintf("plan %q must be bought on its own, with quantity 1", l.SKU), Line: i}
		case seen[l.SKU]:
			return nil, 0, "", &PricingError{Code: CodeDuplicateSKU, Message: fmt.Sprintf("sku %q appears twice; use one line with a larger quantity", l.SKU), Line: i}
		case currency != "" && p.Currency != currency:
			return nil, 0, "", &PricingError{Code: CodeMixedCurrency, Message: "all items of a cart must be priced in one currency", Line: i}
		}
		seen[l.SKU] = true
		currency = p.Currency
		amount := p.PriceAmount * int64(l.Quantity)
		if p.Kind != KindSubscription || p.TrialDays == 0 {
			total += amount
		}
		priced = append(priced, PricedLine{LineNo: i + 1, SKU: p.SKU, Name: p.Name, Quantity: l.Quantity, UnitAmount: p.PriceAmount, LineAmount: amount})
	}
	return priced, total, currency, nil
}
