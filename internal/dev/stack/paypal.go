package stack

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
)

// The PayPal REST app credentials and webhook id the local stack hands the worker and the BFF.
// The local PayPal double accepts only these credentials, and its verify endpoint accepts
// deliveries signed for this webhook id; like LocalStripeKey, they open nothing anywhere else.
const (
	LocalPayPalClientID  = "cartflow-local-paypal-client"
	LocalPayPalSecret    = "cartflow-local-paypal-secret"
	LocalPayPalWebhookID = "0CARTFLOWLOCALWH1"
)

// startPayPal serves the PayPal double in this process, like the Braintree double, so that tests
// can read what it recorded and drive it (approved orders, faults, webhooks) directly.
func (s *Stack) startPayPal() error {
	port, err := portOrFree(s.opts.PayPalPort)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr(port))
	if err != nil {
		return fmt.Errorf("stack: paypal double: %w", err)
	}
	s.PayPal = paypalfake.New(paypalfake.Config{
		ClientID: LocalPayPalClientID, Secret: LocalPayPalSecret,
		Logger: slog.New(slog.NewJSONHandler(s.log("paypal"), nil)),
	})
	srv := &http.Server{Handler: s.PayPal, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.PayPalURL = "http://" + ln.Addr().String()
	s.paypalStop = func() { _ = srv.Close() }
	return nil
}

// paypalWebhooksToAPI sends the double's webhook events to the BFF's PayPal endpoint, signed
// for the webhook id the BFF verifies them with; called once the BFF's URL is known.
func (s *Stack) paypalWebhooksToAPI() {
	s.PayPal.SetWebhook(s.APIURL+"/webhooks/paypal", LocalPayPalWebhookID)
}

// paypalEnv is what the worker and the BFF need to use the double: the worker registers the
// PayPal gateway when a client id is set, and the BFF the PayPal webhook endpoint when the
// webhook id is set too.
func (s *Stack) paypalEnv() []string {
	if s.PayPal == nil {
		return nil
	}
	return []string{
		"PAYPAL_CLIENT_ID=" + LocalPayPalClientID,
		"PAYPAL_SECRET=" + LocalPayPalSecret,
		"PAYPAL_API_URL=" + s.PayPalURL,
		"PAYPAL_WEBHOOK_ID=" + LocalPayPalWebhookID,
	}
}
