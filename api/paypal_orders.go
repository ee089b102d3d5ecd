package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/store"
)

// paypalOrders creates the PayPal orders that buyers approve, and records each one's binding to
// its cart; the server has none when PayPal is not configured.
type paypalOrders struct {
	gateway interface {
		CreateOrder(ctx context.Context, req billing.PayPalOrderRequest) (billing.PayPalOrder, error)
	}
	store interface {
		BindProviderOrder(ctx context.Context, o store.ProviderOrder) (store.ProviderOrder, error)
	}
}

// paypalOrderRequest is the body of POST /api/v1/paypal/orders: the cart, as a checkout sends
// it, and optionally the currency the storefront shows, which must be the cart's.
type paypalOrderRequest struct {
	Items []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
	Currency string `json:"currency"`
}

// paypalOrderResponse is the order the storefront hands PayPal's button, and then the checkout.
type paypalOrderResponse struct {
	PayPalOrderID string `json:"paypal_order_id"`
	CartRef       string `json:"cart_ref"`
	ApproveURL    string `json:"approve_url"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
}

var currencyPattern = regexp.MustCompile(`^[A-Za-z]{3}$`)

var errPayPalNotEnabled = unprocessable("unknown_provider", "", "PayPal is not available in this shop")

// createPayPalOrder prices the cart from the database and has PayPal create an order for that
// amount, with intent CAPTURE and a new cart reference as its custom_id; the binding is stored,
// and the checkout's capture checks it. The Idempotency-Key is the order's PayPal-Request-Id, so
// a repeated request gets the order PayPal created for it, and the binding is stored once.
func (s *server) createPayPalOrder(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if err := validIdempotencyKey(key); err != nil {
		writeError(c, err)
		return
	}
	if s.paypal == nil {
		writeError(c, errPayPalNotEnabled)
		return
	}
	var req paypalOrderRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	cart := checkoutRequest{Items: req.Items}
	if aerr := cart.validateItems(); aerr != nil {
		writeError(c, aerr)
		return
	}
	if req.Currency != "" && !currencyPattern.MatchString(req.Currency) {
		writeError(c, unprocessable("invalid_currency", "currency", "currency must be a three-letter ISO 4217 code"))
		return
	}
	ctx := c.Request.Context()
	amount, currency, err := s.pricePayPalCart(ctx, cart.lines())
	var aerr *apiError
	if errors.As(err, &aerr) {
		writeError(c, aerr)
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "read the catalog", "error", err)
		writeError(c, errUnavailable)
		return
	}
	if req.Currency != "" && !strings.EqualFold(req.Currency, currency) {
		writeError(c, unprocessable("currency_mismatch", "currency", "the cart is priced in "+strings.ToUpper(currency)))
		return
	}

	order, err := s.paypal.gateway.CreateOrder(ctx, billing.PayPalOrderRequest{
		IdempotencyKey: "paypal-order/" + key, Amount: amount, Currency: currency, CartRef: newRandomID("cart_"),
	})
	if billing.IsFinal(err) {
		s.log.WarnContext(ctx, "paypal refused the order", "error", err)
		writeError(c, unprocessable("paypal_order_refused", "", "PayPal did not accept the order; please try another payment method"))
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "create paypal order", "error", err)
		writeError(c, errUnavailable)
		return
	}
	if order.Amount != amount || order.Currency != currency {
		// PayPal answered with the order it created for this key earlier, for another cart.
		writeError(c, errIdempotencyReused)
		return
	}
	bound, err := s.paypal.store.BindProviderOrder(ctx, store.ProviderOrder{
		Provider: billing.ProviderPayPal, ProviderOrderID: order.ID, CartRef: order.CartRef, Amount: order.Amount, Currency: order.Currency,
	})
	if err != nil {
		// The order exists at PayPal; the retry with the same key gets it again and binds it.
		s.log.ErrorContext(ctx, "bind paypal order", "paypal_order", order.ID, "error", err)
		writeError(c, errUnavailable)
		return
	}
	c.JSON(http.StatusCreated, paypalOrderResponse{PayPalOrderID: bound.ProviderOrderID, CartRef: bound.CartRef,
		ApproveURL: order.ApproveURL, Amount: bound.Amount, Currency: bound.Currency})
}

// pricePayPalCart prices the cart from the catalog, as a checkout does: the total and its
// currency, lower-case. A plan is refused, since a PayPal order is one payment, never charged
// again. A cart the catalog refuses is an *apiError; any other error is the database's.
func (s *server) pricePayPalCart(ctx context.Context, lines []store.LineRequest) (int64, string, error) {
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	catalog, err := s.store.ProductsBySKU(ctx, skus)
	if err != nil {
		return 0, "", err
	}
	_, total, currency, perr := store.PriceCart(lines, catalog)
	if perr != nil {
		return 0, "", pricingError(perr)
	}
	for i, l := range lines {
		if catalog[l.SKU].Kind == store.KindSubscription {
			return 0, "", unprocessable("recurring_not_supported", fmt.Sprintf("items[%d].sku", i), "a plan cannot be paid with PayPal")
		}
	}
	if total <= 0 {
		return 0, "", unprocessable("nothing_to_pay", "items", "the cart has nothing to pay")
	}
	return total, strings.ToLower(currency), nil
}
