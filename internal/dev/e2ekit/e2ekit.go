// Package e2ekit is what the suites that drive the whole running stack share (the end-to-end
// tests in internal/e2e and the fault suite in internal/chaos): the BFF's checkout request and
// answer as the storefront sends and reads them, a Temporal client that reads payloads as the
// worker writes them, the Prometheus pages of the worker and the BFF, and due subscriptions
// seeded straight into PostgreSQL.
package e2ekit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
)

// Item is one line of a checkout request.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// CheckoutRequest is the body of POST /api/v1/checkouts; tests change what they need.
type CheckoutRequest struct {
	Email   string `json:"email"`
	Name    string `json:"name"`
	Items   []Item `json:"items"`
	Payment struct {
		Provider string `json:"provider"`
		Token    string `json:"token"`
	} `json:"payment"`
}

// CheckoutTotal is what the cart of Checkout costs, in cents: two T-shirts at 2500 and a mug at
// 1200, priced from the development catalog.
const CheckoutTotal = 2*2500 + 1200

// Checkout is a valid request for two T-shirts and a mug, paid through Stripe with token (one of
// Stripe's test PaymentMethods, such as pm_card_visa).
func Checkout(email, token string) CheckoutRequest {
	b := CheckoutRequest{Email: email, Name: "Ada Lovelace",
		Items: []Item{{SKU: "tshirt-classic", Quantity: 2}, {SKU: "mug-enamel", Quantity: 1}}}
	b.Payment.Provider, b.Payment.Token = "stripe", token
	return b
}

// CheckoutAnswer is the BFF's checkout JSON, or its error JSON.
type CheckoutAnswer struct {
	CheckoutID  string `json:"checkout_id"`
	Status      string `json:"status"`
	OrderID     string `json:"order_id"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	RedirectURL string `json:"redirect_url"`
	StatusURL   string `json:"status_url"`
	// Action is set while the checkout waits for 3-D Secure.
	Action *struct {
		ClientSecret string `json:"client_secret"`
		Type         string `json:"type"`
	} `json:"action"`
	Failure *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"failure"`
	Items []struct {
		SKU        string `json:"sku"`
		Quantity   int    `json:"quantity"`
		UnitAmount int64  `json:"unit_amount"`
	} `json:"items"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// NewCheckoutRequest is a checkout POST to the BFF at apiURL with raw as the body and key as the
// Idempotency-Key (none when empty).
func NewCheckoutRequest(ctx context.Context, apiURL, key string, raw []byte) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/v1/checkouts", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req
}

// CallStripe sends a request to the Stripe API at baseURL (locally, the test-mode layer) as
// Stripe's clients do, form-encoded and authorized with secretKey, and returns the answer's
// status and body: for a test that plays a part cartflow does not, such as a payment made
// behind its back, or reads an object as Stripe serves it.
func CallStripe(ctx context.Context, baseURL, secretKey, method, path string, form url.Values) (int, []byte, error) {
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		path += "?" + form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secretKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// StrayPayment makes a PaymentIntent of amount usd cents that succeeds at once with Stripe's
// Visa test card, straight at the Stripe API at baseURL and so behind cartflow's back (a second
// attempt by someone else, a provider that settled late), and returns its id and its JSON as
// Stripe serves it.
func StrayPayment(ctx context.Context, baseURL, secretKey string, amount int64, metadata map[string]string) (string, json.RawMessage, error) {
	form := url.Values{"amount": {strconv.FormatInt(amount, 10)}, "currency": {"usd"}, "payment_method": {"pm_card_visa"},
		"confirm": {"true"}, "payment_method_types[]": {"card"}}
	for k, v := range metadata {
		form.Set("metadata["+k+"]", v)
	}
	status, body, err := CallStripe(ctx, baseURL, secretKey, http.MethodPost, "/v1/payment_intents", form)
	if err != nil {
		return "", nil, err
	}
	var pi struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &pi) != nil || pi.Status != "succeeded" {
		return "", nil, fmt.Errorf("create PaymentIntent: %d %s", status, body)
	}
	return pi.ID, body, nil
}

// DevDataConverter is the data converter of the stack's worker and BFF: the payload codec under
// the development keyring, so that a test reads results and queries as the BFF does.
func DevDataConverter() (converter.DataConverter, error) {
	devCodec, err := codec.FromSettings(config.DevCodecKeys, config.DevCodecKeyID)
	if err != nil {
		return nil, err
	}
	return codec.DataConverter(devCodec), nil
}

// DialTemporal connects to the stack's Temporal server with dc (DevDataConverter's) for payloads
// and failures, logging only the SDK's warnings, to stderr.
func DialTemporal(hostPort string, dc converter.DataConverter) (client.Client, error) {
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return client.Dial(client.Options{HostPort: hostPort, Logger: quiet,
		DataConverter: dc, FailureConverter: codec.FailureConverter(dc)})
}

// Scrape returns a Prometheus /metrics page.
func Scrape(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return string(body), nil
}

// MetricValue is the value of one series in a scrape, such as
// `cartflow_checkouts_total{outcome="completed"}`, or -1 when it is absent.
func MetricValue(page, series string) float64 {
	for line := range strings.SplitSeq(page, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// AnswersWithStatus is how many requests the BFF has answered with a status that match
// accepts, summed over its routes, from a scrape of its /metrics.
func AnswersWithStatus(page string, match func(status int) bool) float64 {
	var n float64
	for line := range strings.SplitSeq(page, "\n") {
		if !strings.HasPrefix(line, "cartflow_http_requests_total{") {
			continue
		}
		_, rest, ok := strings.Cut(line, `status="`)
		if !ok {
			continue
		}
		code, _, _ := strings.Cut(rest, `"`)
		status, err := strconv.Atoi(code)
		if err != nil || !match(status) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			n += v
		}
	}
	return n
}

// SeedDueSubscriptions inserts n active monthly plan-monthly subscriptions (900 usd cents) of
// the user, whose periods ended a minute ago and one second apart, billed to a card saved at
// the provider (customerRef, paymentMethodRef), so that the next renewal sweep renews them all.
// It returns them, oldest period first.
func SeedDueSubscriptions(ctx context.Context, db *pgxpool.Pool, userID, customerRef, paymentMethodRef string, n int) ([]DueSubscription, error) {
	rows, err := db.Query(ctx, `INSERT INTO subscriptions (user_id, sku, status, provider, provider_customer_ref,
			provider_payment_method_ref, current_period_start, current_period_end, price_amount, currency, billing_interval)
		SELECT $1, 'plan-monthly', 'active', 'stripe', $2, $3, now() - interval '1 month',
			date_trunc('second', now()) - interval '1 minute' - g * interval '1 second', 900, 'usd', 'month'
		FROM generate_series(1, $4) g
		RETURNING id::text, current_period_end`, userID, customerRef, paymentMethodRef, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DueSubscription
	for rows.Next() {
		var d DueSubscription
		if err := rows.Scan(&d.ID, &d.PeriodEnd); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DueSubscription) int { return a.PeriodEnd.Compare(b.PeriodEnd) })
	return out, rows.Err()
}

// DueSubscription is a seeded subscription and the end of its period, which is due.
type DueSubscription struct {
	ID        string
	PeriodEnd time.Time
}
