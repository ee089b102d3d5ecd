package braintree

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// The double signs notifications with code of its own, written from Braintree's documentation
// and server SDKs (braintree_ruby's WebhookTestingGateway and Digest) rather than borrowed from
// the verifier in internal/billing: a double that signed with the verifier's code would agree
// with any bug in it.
//
// bt_payload is the base64 of the notification's XML as Ruby's Base64.encode64 writes it (RFC
// 2045: a line feed after every 60 characters and at the end), and bt_signature is
// "<public key>|<hex HMAC-SHA1 of bt_payload>", keyed with the SHA-1 digest of the private key.

// payloadLine is how many base64 characters Braintree puts on a line of bt_payload.
const payloadLine = 60

// Sign returns bt_signature and bt_payload for a notification's XML, as Braintree sends them.
func Sign(publicKey, privateKey string, notification []byte) (signature, payload string) {
	payload = encodePayload(notification)
	return signPayload(publicKey, privateKey, payload), payload
}

// encodePayload is the base64 of notification in lines of payloadLine characters, each ending
// in a line feed.
func encodePayload(notification []byte) string {
	encoded := base64.StdEncoding.EncodeToString(notification)
	var b strings.Builder
	for len(encoded) > 0 {
		n := min(payloadLine, len(encoded))
		b.WriteString(encoded[:n])
		b.WriteByte('\n')
		encoded = encoded[n:]
	}
	return b.String()
}

// signPayload is the bt_signature of an encoded bt_payload.
func signPayload(publicKey, privateKey, payload string) string {
	key := sha1.Sum([]byte(privateKey))
	mac := hmac.New(sha1.New, key[:])
	mac.Write([]byte(payload))
	return publicKey + "|" + hex.EncodeToString(mac.Sum(nil))
}
