package braintree

import (
	"strings"
)

// The outcome of a charge is chosen by its payment-method nonce, as in Braintree's sandbox
// (developer.paypal.com/braintree/docs/reference/general/testing, "Nonces", and the Nonces
// constants of Braintree's server SDKs). Braintree's sandbox also declines by amount
// (2000.00–2999.99); the double does not, so that a cart of any total can be tested with
// fake-valid-nonce, and so that amounts in zero-decimal currencies (2500 JPY) charge normally.
//
// Documented sandbox nonces, reusable any number of times:
//
//	fake-valid-nonce, fake-valid-<brand>-nonce, and the wallet nonces     succeed
//	fake-processor-declined-{visa,mastercard,amex,discover}-nonce         PROCESSOR_DECLINED, 2000 Do Not Honor
//	fake-processor-failure-jcb-nonce                                      FAILED, 3000 Processor Network Unavailable
//	fake-gateway-rejected-fraud-nonce                                     GATEWAY_REJECTED, FRAUD
//	fake-gateway-rejected-risk-thresholds-nonce                           GATEWAY_REJECTED, RISK_THRESHOLD
//	fake-luhn-invalid-nonce                                               validation error 81715, no transaction
//	fake-consumed-nonce                                                   validation error 91564, no transaction
//
// The double's own nonces, for outcomes the documented ones cannot produce (the "-nonce" suffix
// is optional; with it they pass the BFF's token check):
//
//	fake-processor-declined-NNNN[-nonce]    PROCESSOR_DECLINED with processor response code NNNN
//	fake-gateway-rejected-REASON[-nonce]    GATEWAY_REJECTED with GatewayRejectionReason REASON (cvv, avs-and-cvv, …)
//	fake-failed[-nonce]                     FAILED, 3000
//	fake-invalid-nonce                      validation error 91565, unknown or expired nonce
//
// Any other fake-… nonce is unknown (91565). Every nonce that does not start with fake- is taken
// for a nonce from Braintree's client SDKs (tokencc_…): it succeeds once, and a second charge
// with it is refused with 91564, as Braintree refuses a consumed single-use nonce.

// outcome is what charging a nonce does.
type outcome struct {
	// refusal refuses the charge before a transaction exists.
	refusal *gqlError
	// status is the transaction's final status; empty for a successful charge.
	status                  string
	code, text, declineType string
	rejection               string
	// reusable is true for the sandbox's static nonces, which are never consumed.
	reusable bool
}

// processorTexts are the processor response texts of Braintree's authorization responses.
var processorTexts = map[string]string{
	"2000": "Do Not Honor",
	"2001": "Insufficient Funds",
	"2002": "Limit Exceeded",
	"2003": "Cardholder's Activity Limit Exceeded",
	"2004": "Expired Card",
	"2005": "Invalid Credit Card Number",
	"2006": "Invalid Expiration Date",
	"2007": "No Account",
	"2008": "Card Account Length Error",
	"2010": "Card Issuer Declined CVV",
	"2012": "Processor Declined - Possible Lost Card",
	"2013": "Processor Declined - Possible Stolen Card",
	"2014": "Processor Declined - Fraud Suspected",
	"2015": "Transaction Not Allowed",
	"2038": "Processor Declined",
	"2044": "Declined - Call Issuer",
	"2046": "Declined",
	"2047": "Call Issuer. Pick Up Card",
	"2053": "Card reported as lost or stolen",
	"2057": "Issuer or Cardholder has put a restriction on the card",
	"2099": "Cardholder Authentication Required",
	"3000": "Processor Network Unavailable - Try Again",
}

// hardDeclines are the codes whose DeclineType is HARD: retrying the same card cannot succeed.
var hardDeclines = map[string]bool{
	"2004": true, "2005": true, "2007": true, "2008": true, "2012": true, "2013": true, "2014": true,
	"2015": true, "2047": true, "2053": true, "2057": true,
}

func declined(code string) outcome {
	text := processorTexts[code]
	if text == "" {
		text = "Processor Declined"
	}
	declineType := "SOFT"
	if hardDeclines[code] {
		declineType = "HARD"
	}
	return outcome{status: statusProcessorDeclined, code: code, text: text, declineType: declineType, reusable: true}
}

func failed() outcome {
	return outcome{status: statusFailed, code: "3000", text: processorTexts["3000"], reusable: true}
}

func rejected(reason string) outcome {
	return outcome{status: statusGatewayRejected, rejection: reason, reusable: true}
}

func refused(code, message string) outcome {
	return outcome{refusal: &gqlError{Class: "VALIDATION", Code: code, Message: message}, reusable: true}
}

// transactable are the prefixes and names of the sandbox nonces that succeed.
var (
	transactablePrefixes = []string{"fake-valid-", "fake-apple-pay-", "fake-android-pay-", "fake-visa-checkout-", "fake-meta-checkout-"}
	transactableNames    = map[string]bool{
		"fake-abstract-transactable-nonce": true, "fake-paypal-one-time-nonce": true, "fake-paypal-billing-agreement-nonce": true,
		"fake-venmo-account-nonce": true, "fake-local-payment-method-nonce": true,
	}
)

// nonceOutcome is what charging nonce does.
func nonceOutcome(nonce string) outcome {
	if !strings.HasPrefix(nonce, "fake-") {
		return outcome{}
	}
	name := strings.TrimSuffix(nonce, "-nonce")
	switch name {
	case "fake-processor-declined-visa", "fake-processor-declined-mastercard", "fake-processor-declined-amex", "fake-processor-declined-discover":
		return declined("2000")
	case "fake-processor-failure-jcb", "fake-failed":
		return failed()
	case "fake-gateway-rejected-fraud":
		return rejected("FRAUD")
	case "fake-gateway-rejected-risk-thresholds":
		return rejected("RISK_THRESHOLD")
	case "fake-luhn-invalid":
		return refused("81715", "Credit card number is invalid.")
	case "fake-consumed":
		return refused("91564", "Cannot use a payment_method_nonce more than once.")
	}
	if code, ok := strings.CutPrefix(name, "fake-processor-declined-"); ok && len(code) == 4 && strings.Trim(code, "0123456789") == "" {
		return declined(code)
	}
	if reason, ok := strings.CutPrefix(name, "fake-gateway-rejected-"); ok && reason != "" {
		return rejected(strings.ToUpper(strings.ReplaceAll(reason, "-", "_")))
	}
	if transactableNames[nonce] {
		return outcome{reusable: true}
	}
	for _, p := range transactablePrefixes {
		if strings.HasPrefix(nonce, p) {
			return outcome{reusable: true}
		}
	}
	return refused("91565", "Unknown or expired payment_method_nonce.")
}
