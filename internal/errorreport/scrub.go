package errorreport

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/getsentry/sentry-go"
)

// Redacted replaces every value the scrubber removes.
const Redacted = "[redacted]"

// sensitivePatterns find secrets and personal data in free text: error messages quote requests
// and provider answers, and tags and contexts are built from inputs. Card-like digit runs are
// redacted whether or not they pass the Luhn check: an over-redacted id costs little in Sentry,
// a leaked card number costs a great deal.
var sensitivePatterns = []*regexp.Regexp{
	// Bearer and basic credentials, as in an Authorization header quoted by an error. First, so
	// that a bearer token shaped like another secret goes whole. A basic credential must hold a
	// digit or a base64 sign, so that the words "basic authentication" survive.
	regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=_-]+|\bBasic\s+[A-Za-z0-9+/]*[0-9+/=][A-Za-z0-9+/=]*`),
	// Stripe secret, restricted, live publishable and webhook-signing keys.
	regexp.MustCompile(`\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\bpk_live_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+`),
	// PaymentIntent and SetupIntent client secrets, which let their holder confirm the payment.
	regexp.MustCompile(`\b[a-z]+_[A-Za-z0-9]+_secret_[A-Za-z0-9]+`),
	// Storefront payment tokens (Stripe, Braintree), which let their holder charge the card.
	regexp.MustCompile(`\b(?:pm|tok|src|seti)_[A-Za-z0-9_]+|\btokencc_[A-Za-z0-9_]+|\bfake-[a-z0-9-]+-nonce\b`),
	// Email addresses.
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	// 13 to 19 digits, spaces or dashes allowed between them: a card number.
	regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`),
}

// sensitiveKeys are map keys (in extra data, contexts, breadcrumbs) whose values are dropped
// whatever they look like.
var sensitiveKeys = []string{"password", "secret", "token", "authorization", "api_key", "apikey", "email",
	"card", "cvc", "dsn", "cookie", "signature"}

// sensitiveHeaderPrefixes are request headers that carry credentials, idempotency keys,
// webhook signatures or the client's address. PayPal's webhook headers all start with PAYPAL-.
var sensitiveHeaderPrefixes = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
	"idempotency-key", "stripe-signature", "paypal-", "x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip",
	"cf-connecting-ip"}

// scrubString replaces every secret-looking or personal substring of s with Redacted.
func scrubString(s string) string {
	for _, p := range sensitivePatterns {
		s = p.ReplaceAllString(s, Redacted)
	}
	return s
}

// isSensitiveKey reports whether a map key names a value that is never sent.
func isSensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range sensitiveKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// isSensitiveHeader reports whether a request header is dropped from events.
func isSensitiveHeader(name string) bool {
	name = strings.ToLower(name)
	for _, p := range sensitiveHeaderPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.Contains(name, "token") || strings.Contains(name, "secret") || strings.Contains(name, "signature")
}

// scrubValue scrubs strings inside arbitrary extra data, contexts and breadcrumb data.
func scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		return scrubString(x)
	case map[string]any:
		return scrubMap(x)
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, s := range x {
			if isSensitiveKey(k) {
				out[k] = Redacted
			} else {
				out[k] = scrubString(s)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubValue(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scrubString(e)
		}
		return out
	case error:
		return scrubString(x.Error())
	}
	return v
}

// scrubMap returns m with sensitive keys' values dropped and every string scrubbed.
func scrubMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if isSensitiveKey(k) {
			out[k] = Redacted
			continue
		}
		out[k] = scrubValue(v)
	}
	return out
}

// scrubRequest keeps the method, the path and the harmless headers of a request.
func scrubRequest(r *sentry.Request) {
	r.Data = ""        // bodies hold emails, names and payment tokens
	r.Cookies = ""     // sessions
	r.QueryString = "" // may hold anything a client put there
	r.Env = nil        // REMOTE_ADDR, the client's IP address
	if i := strings.IndexByte(r.URL, '?'); i >= 0 {
		r.URL = r.URL[:i]
	}
	r.URL = scrubString(r.URL)
	headers := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if !isSensitiveHeader(k) {
			headers[k] = scrubString(v)
		}
	}
	r.Headers = headers
}

// replacePath returns rawURL (scheme://host/path) with its path replaced by path.
func replacePath(rawURL, path string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return path
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + path
}

// scrubFrames scrubs the source lines Sentry attaches around each stack frame.
func scrubFrames(st *sentry.Stacktrace) {
	if st == nil {
		return
	}
	for i := range st.Frames {
		f := &st.Frames[i]
		f.Vars = nil
		f.ContextLine = scrubString(f.ContextLine)
		for j := range f.PreContext {
			f.PreContext[j] = scrubString(f.PreContext[j])
		}
		for j := range f.PostContext {
			f.PostContext[j] = scrubString(f.PostContext[j])
		}
	}
}

// scrubEvent is the client's BeforeSend: every event passes through it, whoever built it. It
// drops http.ErrAbortHandler panics, which are a deliberate way to abort a response, not a fault.
func scrubEvent(e *sentry.Event, hint *sentry.EventHint) *sentry.Event {
	if hint != nil && hint.RecoveredException == http.ErrAbortHandler {
		return nil
	}
	e.Message = scrubString(e.Message)
	e.Transaction = scrubString(e.Transaction)
	// The customer id is the one personal datum events carry; the SDK may have added more.
	e.User = sentry.User{ID: e.User.ID}
	if e.Request != nil {
		scrubRequest(e.Request)
		// Paths hold checkout and subscription ids, and holding one is what authorizes reading
		// or changing them: send the route pattern instead when the middleware knows it.
		if route := e.Tags[TagRoute]; route != "" {
			e.Request.URL = replacePath(e.Request.URL, route)
		}
	}
	for i := range e.Exception {
		e.Exception[i].Value = scrubString(e.Exception[i].Value)
		scrubFrames(e.Exception[i].Stacktrace)
	}
	for i := range e.Threads {
		scrubFrames(e.Threads[i].Stacktrace)
	}
	for k, v := range e.Tags {
		e.Tags[k] = scrubString(v)
	}
	for i := range e.Fingerprint {
		e.Fingerprint[i] = scrubString(e.Fingerprint[i])
	}
	e.Extra = scrubMap(e.Extra)
	for k, c := range e.Contexts {
		e.Contexts[k] = scrubMap(c)
	}
	for _, b := range e.Breadcrumbs {
		if b == nil {
			continue
		}
		b.Message = scrubString(b.Message)
		b.Data = scrubMap(b.Data)
	}
	return e
}
