package stack

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	braintreefake "github.com/cartflow/cartflow/internal/dev/fake/braintree"
)

// The Braintree API key pair the local stack hands the worker and the BFF. The local Braintree
// double accepts only this pair and signs its webhooks with it; like LocalStripeKey, it opens
// nothing anywhere else.
const (
	// LocalBraintreePublicKey is the local stack's Braintree public key.
	LocalBraintreePublicKey = "cartflow_local_public"
	// LocalBraintreePrivateKey is the local stack's Braintree private key, not a secret.
	LocalBraintreePrivateKey = "cartflow_local_private"
)

// startBraintree serves the Braintree double in this process, like the Stripe test-mode layer,
// so that tests can read what it recorded and drive it (settle, faults, webhooks) directly.
func (s *Stack) startBraintree() error {
	port, err := portOrFree(s.opts.BraintreePort)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr(port))
	if err != nil {
		return fmt.Errorf("stack: braintree double: %w", err)
	}
	s.Braintree = braintreefake.New(braintreefake.Config{
		PublicKey: LocalBraintreePublicKey, PrivateKey: LocalBraintreePrivateKey, Currency: "USD",
		Logger: slog.New(slog.NewJSONHandler(s.log("braintree"), nil)),
	})
	srv := &http.Server{Handler: s.Braintree, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.BraintreeURL = "http://" + ln.Addr().String()
	s.braintreeStop = func() { _ = srv.Close() }
	return nil
}

// braintreeWebhooksToAPI sends the double's webhooks to the BFF's Braintree endpoint, signed
// with the key pair the BFF verifies them with; called once the BFF's URL is known.
func (s *Stack) braintreeWebhooksToAPI() {
	s.Braintree.SetWebhook(s.APIURL+"/webhooks/braintree", LocalBraintreePublicKey, LocalBraintreePrivateKey)
}

// braintreeEnv is what the worker and the BFF need to use the double: the worker registers the
// Braintree gateway and the BFF the Braintree webhook endpoint when a public key is set.
func (s *Stack) braintreeEnv() []string {
	if s.Braintree == nil {
		return nil
	}
	return []string{
		"BRAINTREE_API_URL=" + s.BraintreeURL + "/graphql",
		"BRAINTREE_PUBLIC_KEY=" + LocalBraintreePublicKey,
		"BRAINTREE_PRIVATE_KEY=" + LocalBraintreePrivateKey,
	}
}
