package store_test

import (
	"slices"
	"testing"

	"github.com/cartflow/cartflow/internal/store"
)

// pricingCatalog mirrors the dev catalog, plus a product priced in euros.
var pricingCatalog = map[string]store.Product{
	"tshirt-classic": {SKU: "tshirt-classic", Name: "Classic T-shirt", Kind: store.KindOneOff, PriceAmount: 2500, Currency: "usd", Active: true},
	"mug-enamel":     {SKU: "mug-enamel", Name: "Enamel mug", Kind: store.KindOneOff, PriceAmount: 1200, Currency: "usd", Active: true},
	"sticker-pack":   {SKU: "sticker-pack", Name: "Sticker pack", Kind: store.KindOneOff, PriceAmount: 500, Currency: "usd", Active: true},
	"poster-retired": {SKU: "poster-retired", Name: "Retired poster", Kind: store.KindOneOff, PriceAmount: 1500, Currency: "usd", Active: false},
	"plan-monthly": {SKU: "plan-monthly", Name: "cartflow Plus, monthly", Kind: store.KindSubscription, PriceAmount: 900, Currency: "usd",
		BillingInterval: "month", TrialDays: 14, Active: true},
	"tote-eu": {SKU: "tote-eu", Name: "Tote bag (EU)", Kind: store.KindOneOff, PriceAmount: 1800, Currency: "eur", Active: true},
	"plan-yearly": {SKU: "plan-yearly", Name: "cartflow Plus, yearly", Kind: store.KindSubscription, PriceAmount: 9000, Currency: "usd",
		BillingInterval: "year", Active: true},
}

func TestPriceCart(t *testing.T) {
	t.Parallel()
	type L = store.LineRequest
	repeat := func(n int, l L) []L {
		out := make([]L, n)
		for i := range out {
			out[i] = l
		}
		return out
	}
	tests := []struct {
		name      string
		lines     []L
		wantLines []store.PricedLine
		wantTotal int64
		wantCur   string
		wantCode  string
		wantLine  int
	}{
		{
			name:  "two lines",
			lines: []L{{"tshirt-classic", 2}, {"mug-enamel", 1}},
			wantLines: []store.PricedLine{
				{LineNo: 1, SKU: "tshirt-classic", Name: "Classic T-shirt", Quantity: 2, UnitAmount: 2500, LineAmount: 5000},
				{LineNo: 2, SKU: "mug-enamel", Name: "Enamel mug", Quantity: 1, UnitAmount: 1200, LineAmount: 1200},
			},
			wantTotal: 6200, wantCur: "usd",
		},
		{
			name:      "maximum quantity",
			lines:     []L{{"sticker-pack", store.MaxLineQuantity}},
			wantLines: []store.PricedLine{{LineNo: 1, SKU: "sticker-pack", Name: "Sticker pack", Quantity: 99, UnitAmount: 500, LineAmount: 49500}},
			wantTotal: 49500, wantCur: "usd",
		},
		{
			name:      "euro cart",
			lines:     []L{{"tote-eu", 3}},
			wantLines: []store.PricedLine{{LineNo: 1, SKU: "tote-eu", Name: "Tote bag (EU)", Quantity: 3, UnitAmount: 1800, LineAmount: 5400}},
			wantTotal: 5400, wantCur: "eur",
		},
		{
			// A trial is due nothing today; the line still shows the plan's price.
			name:      "plan with a trial",
			lines:     []L{{"plan-monthly", 1}},
			wantLines: []store.PricedLine{{LineNo: 1, SKU: "plan-monthly", Name: "cartflow Plus, monthly", Quantity: 1, UnitAmount: 900, LineAmount: 900}},
			wantTotal: 0, wantCur: "usd",
		},
		{
			name:      "plan without a trial",
			lines:     []L{{"plan-yearly", 1}},
			wantLines: []store.PricedLine{{LineNo: 1, SKU: "plan-yearly", Name: "cartflow Plus, yearly", Quantity: 1, UnitAmount: 9000, LineAmount: 9000}},
			wantTotal: 9000, wantCur: "usd",
		},
		{name: "no lines", lines: nil, wantCode: store.CodeEmptyCart, wantLine: -1},
		{name: "empty slice", lines: []L{}, wantCode: store.CodeEmptyCart, wantLine: -1},
		// The line count is checked before anything else, so 51 copies of one SKU are too many, not duplicates.
		{name: "too many lines", lines: repeat(store.MaxCartLines+1, L{"sticker-pack", 1}), wantCode: store.CodeTooManyLines, wantLine: -1},
		{name: "zero quantity", lines: []L{{"mug-enamel", 1}, {"tshirt-classic", 0}}, wantCode: store.CodeInvalidQuantity, wantLine: 1},
		{name: "negative quantity", lines: []L{{"tshirt-classic", -1}}, wantCode: store.CodeInvalidQuantity, wantLine: 0},
		{name: "quantity over limit", lines: []L{{"mug-enamel", 1}, {"sticker-pack", 2}, {"tshirt-classic", 100}}, wantCode: store.CodeInvalidQuantity, wantLine: 2},
		{name: "unknown sku", lines: []L{{"mug-enamel", 1}, {"no-such-sku", 1}}, wantCode: store.CodeUnknownSKU, wantLine: 1},
		{name: "inactive product", lines: []L{{"poster-retired", 1}, {"mug-enamel", 1}}, wantCode: store.CodeProductUnavailable, wantLine: 0},
		{name: "plan beside a product", lines: []L{{"mug-enamel", 1}, {"plan-monthly", 1}}, wantCode: store.CodeSubscriptionCart, wantLine: 1},
		{name: "plan twice", lines: []L{{"plan-monthly", 2}}, wantCode: store.CodeSubscriptionCart, wantLine: 0},
		{name: "duplicate sku", lines: []L{{"tshirt-classic", 1}, {"mug-enamel", 1}, {"tshirt-classic", 2}}, wantCode: store.CodeDuplicateSKU, wantLine: 2},
		{name: "mixed currency", lines: []L{{"tshirt-classic", 1}, {"tote-eu", 1}}, wantCode: store.CodeMixedCurrency, wantLine: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lines, total, cur, perr := store.PriceCart(tc.lines, pricingCatalog)
			if tc.wantCode != "" {
				if perr == nil {
					t.Fatalf("want %s, got lines %+v total %d %s", tc.wantCode, lines, total, cur)
				}
				if perr.Code != tc.wantCode || perr.Line != tc.wantLine || perr.Message == "" || perr.Error() != perr.Message {
					t.Fatalf("got %+v, want code %s line %d with a message", perr, tc.wantCode, tc.wantLine)
				}
				if lines != nil || total != 0 || cur != "" {
					t.Fatalf("a refused cart must price nothing: %+v %d %q", lines, total, cur)
				}
				return
			}
			if perr != nil {
				t.Fatalf("unexpected pricing error %+v", perr)
			}
			if !slices.Equal(lines, tc.wantLines) || total != tc.wantTotal || cur != tc.wantCur {
				t.Fatalf("got %+v total %d %q\nwant %+v total %d %q", lines, total, cur, tc.wantLines, tc.wantTotal, tc.wantCur)
			}
		})
	}
}
