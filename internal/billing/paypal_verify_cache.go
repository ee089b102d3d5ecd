package billing

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cartflow/cartflow/internal/domain"
)

// Every delivery to POST /webhooks/paypal would otherwise cost a call to PayPal's
// verify-webhook-signature API, whose quota is the shop's: anyone could spend it with forged
// deliveries. So the verifier refuses locally what PayPal never sends, remembers the answers it
// got, and calls PayPal at a bounded rate.

// ErrVerifyLimited means the verifier made as many calls to PayPal as it may for now; the
// delivery was not checked, so the BFF answers 503 and PayPal delivers again later.
var ErrVerifyLimited = errors.New("paypal webhook verification is rate limited; deliver again later")

const (
	// paypalVerifyRate and paypalVerifyBurst bound the calls to verify-webhook-signature: far
	// above a shop's genuine deliveries, which PayPal retries after a refusal, far below what a
	// forger's loop would spend.
	paypalVerifyRate  = 5 // per second
	paypalVerifyBurst = 25
	// paypalVerifyCacheSize bounds the remembered answers; the oldest go first.
	paypalVerifyCacheSize = 4096
	// paypalVerifyCacheTTL outlives the transmission-time window on either side of now: a
	// delivery older than that is refused for its time before the cache is asked.
	paypalVerifyCacheTTL = 2 * paypalWebhookMaxSkew
	// paypalMaxTransmissionID is generous for PayPal's UUIDs; longer is not PayPal's.
	paypalMaxTransmissionID = 128
)

// paypalAuthAlgo is the shape of PayPal's PAYPAL-AUTH-ALGO, such as SHA256withRSA.
var paypalAuthAlgo = regexp.MustCompile(`^SHA[0-9]{1,3}withRSA$`)

// paypalPrecheck refuses, without asking PayPal, headers that no PayPal delivery has: the
// certificate must be PayPal's, over https, under /v1/notifications/certs/ (PayPal's
// verification would fetch it), the algorithm one of PayPal's, the transmission id short.
func paypalPrecheck(header http.Header) error {
	if id := header.Get("PAYPAL-TRANSMISSION-ID"); len(id) > paypalMaxTransmissionID {
		return errors.New("the transmission id is too long")
	}
	if !paypalAuthAlgo.MatchString(header.Get("PAYPAL-AUTH-ALGO")) {
		return errors.New("the auth algorithm is not one of PayPal's")
	}
	u, err := url.Parse(header.Get("PAYPAL-CERT-URL"))
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || !paypalHost(u.Hostname()) ||
		!strings.HasPrefix(u.Path, "/v1/notifications/certs/") {
		return errors.New("the certificate URL is not on PayPal's domain")
	}
	return nil
}

// paypalHost reports whether host is paypal.com or one of its subdomains (api.paypal.com,
// api.sandbox.paypal.com).
func paypalHost(host string) bool {
	host = strings.ToLower(host)
	return host == "paypal.com" || strings.HasSuffix(host, ".paypal.com")
}

// paypalVerifyKey identifies what PayPal would be asked: everything its answer depends on. The
// body is in it, so a remembered SUCCESS can never vouch for another body.
func paypalVerifyKey(header http.Header, webhookID string, body []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range []string{
		header.Get("PAYPAL-TRANSMISSION-ID"), header.Get("PAYPAL-TRANSMISSION-TIME"), header.Get("PAYPAL-TRANSMISSION-SIG"),
		header.Get("PAYPAL-CERT-URL"), header.Get("PAYPAL-AUTH-ALGO"), webhookID,
	} {
		// Length-prefixed, so that no two different header sets run together into the same bytes.
		h.Write([]byte{byte(len(part) >> 8), byte(len(part))})
		h.Write([]byte(part))
	}
	bodySum := sha256.Sum256(body)
	h.Write(bodySum[:])
	var key [sha256.Size]byte
	copy(key[:], h.Sum(nil))
	return key
}

// verifyOutcome is PayPal's answer about one delivery: nil (SUCCESS) or an ErrBadSignature.
type verifyOutcome struct {
	event domain.WebhookEvent
	err   error
}

// verifyEntry is one remembered or pending answer. done is closed once outcome is set; until
// then later deliveries of the same key wait for it rather than ask PayPal themselves.
type verifyEntry struct {
	key     [sha256.Size]byte
	at      time.Time
	done    chan struct{}
	outcome verifyOutcome
	// keep is false when the call failed technically: nothing is remembered.
	keep bool
}

// verifyCache remembers PayPal's answers by verifyKey for a while, bounded in size, and lets
// concurrent deliveries of one transmission share a single call.
type verifyCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[[sha256.Size]byte]*list.Element
	order   *list.List // of *verifyEntry, oldest first
	limit   *rate.Limiter
}

func newVerifyCache(size int, ttl time.Duration, perSecond float64, burst int) *verifyCache {
	return &verifyCache{ttl: ttl, max: size, entries: map[[sha256.Size]byte]*list.Element{}, order: list.New(),
		limit: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// do answers key from the cache, or runs ask once for everyone who wants key now. ask's
// outcome is remembered when keep is true. A call over the rate limit gives ErrVerifyLimited.
func (c *verifyCache) do(now time.Time, key [sha256.Size]byte, ask func() (o verifyOutcome, keep bool)) verifyOutcome {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*verifyEntry)
		if now.Sub(e.at) < c.ttl {
			c.mu.Unlock()
			// A pending call is waited for; if it fails technically, this delivery gets the
			// same answer (PayPal delivers again) rather than a second call now.
			<-e.done
			return e.outcome
		}
		c.remove(el)
	}
	if !c.limit.AllowN(now, 1) {
		c.mu.Unlock()
		return verifyOutcome{err: ErrVerifyLimited}
	}
	e := &verifyEntry{key: key, at: now, done: make(chan struct{})}
	c.entries[key] = c.order.PushBack(e)
	c.prune(now)
	c.mu.Unlock()

	e.outcome, e.keep = ask()
	close(e.done)
	if !e.keep {
		c.mu.Lock()
		if el, ok := c.entries[key]; ok && el.Value.(*verifyEntry) == e {
			c.remove(el)
		}
		c.mu.Unlock()
	}
	return e.outcome
}

// prune drops expired entries and, beyond the bound, the oldest; the caller holds c.mu.
func (c *verifyCache) prune(now time.Time) {
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		e := el.Value.(*verifyEntry)
		if c.order.Len() <= c.max && now.Sub(e.at) < c.ttl {
			return
		}
		c.remove(el)
	}
}

func (c *verifyCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*verifyEntry).key)
	c.order.Remove(el)
}
