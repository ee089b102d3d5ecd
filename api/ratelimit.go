package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/ratelimit"
	"github.com/cartflow/cartflow/internal/store"
)

// rateStore is what the rate limits and the card-testing defence keep in PostgreSQL.
type rateStore interface {
	ratelimit.Counter
	RecordPaymentSource(ctx context.Context, workflowID string, src store.PaymentSource) error
	CountDeclines(ctx context.Context, src store.PaymentSource, fingerprint string, since time.Time) (store.DeclineCounts, error)
}

// The rate-limit buckets. The sensitive ones count in PostgreSQL, shared by every replica.
const (
	bucketSignInIP      = "sign_in_ip"
	bucketSignInEmail   = "sign_in_email"
	bucketCheckoutIP    = "checkout_ip"
	bucketCheckoutEmail = "checkout_email"
	bucketPayPalOrderIP = "paypal_order_ip"
	bucketCardChangeIP  = "card_change_ip"
	bucketCardChangeSub = "card_change_subscription"
	bucketStaffKey      = "staff_key"
)

// The kinds of key, hashed apart so that an IP and an email never share a hash.
const (
	hashKindIP           = "ip"
	hashKindEmail        = "email"
	hashKindSubscription = "subscription"
	hashKindStaffKey     = "staff_key"
)

// rateLimitDecisionKey holds, on the gin context, the tightest limit the request met so far,
// whose numbers the RateLimit-* headers report.
const rateLimitDecisionKey = "rate_limit_decision"

var (
	errRateLimited = &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many requests; retry after the time in Retry-After"}
	errTooManyDeclines = &apiError{Status: http.StatusTooManyRequests, Code: "too_many_declines",
		Message: "too many payments were declined recently; retry later or contact support"}
)

// rateLimits holds the BFF's limiters, built once from the configuration.
type rateLimits struct {
	shared *ratelimit.Shared
	// reads limits the cheap reads per client IP in this replica's memory: they must not cost a
	// PostgreSQL round trip (see README, "Rate limits").
	reads *ratelimit.Local
	hash  ratelimit.Hasher
	// rules by bucket, with the kind of key each is counted by.
	rules map[string]ratelimit.Rule
	kinds map[string]string
}

func newRateLimits(s *server) *rateLimits {
	rl := s.cfg.RateLimits
	w := rl.Window
	rule := func(bucket string, limit int) ratelimit.Rule {
		return ratelimit.Rule{Bucket: bucket, Limit: limit, Window: w}
	}
	l := &rateLimits{
		shared: ratelimit.NewShared(s.store, nil),
		hash:   ratelimit.NewHasher(rl.HashKey),
		rules: map[string]ratelimit.Rule{
			bucketSignInIP:      rule(bucketSignInIP, rl.SignInPerIP),
			bucketSignInEmail:   rule(bucketSignInEmail, rl.SignInPerEmail),
			bucketCheckoutIP:    rule(bucketCheckoutIP, rl.CheckoutPerIP),
			bucketCheckoutEmail: rule(bucketCheckoutEmail, rl.CheckoutPerEmail),
			bucketPayPalOrderIP: rule(bucketPayPalOrderIP, rl.PayPalOrderPerIP),
			bucketCardChangeIP:  rule(bucketCardChangeIP, rl.CardChangePerIP),
			bucketCardChangeSub: rule(bucketCardChangeSub, rl.CardChangePerSub),
			bucketStaffKey:      rule(bucketStaffKey, rl.StaffPerKey),
		},
		kinds: map[string]string{
			bucketSignInIP: hashKindIP, bucketCheckoutIP: hashKindIP, bucketPayPalOrderIP: hashKindIP, bucketCardChangeIP: hashKindIP,
			bucketSignInEmail: hashKindEmail, bucketCheckoutEmail: hashKindEmail,
			bucketCardChangeSub: hashKindSubscription, bucketStaffKey: hashKindStaffKey,
		},
	}
	// ReadsBurst tokens, refilled at ReadsPerSecond: a window of burst/rate seconds.
	if rl.ReadsPerSecond > 0 {
		burst := max(rl.ReadsBurst, 1)
		l.reads = ratelimit.NewLocal(ratelimit.Rule{Bucket: "reads", Limit: burst,
			Window: time.Duration(burst) * time.Second / time.Duration(rl.ReadsPerSecond)}, nil)
	}
	return l
}

// limit counts one request of key (an IP, email, subscription id or staff key id, in clear; it
// is hashed here) in bucket, shared by every replica. It reports whether the request may go on;
// if not, it has answered: 429 rate_limited with Retry-After, or 503 when PostgreSQL cannot
// count. The sensitive buckets fail closed: an outage must not open sign-in links, checkouts or
// card changes to unlimited guessing, and a 503 with Retry-After is what the client retries anyway.
// The handler for POST /api/v1/auth/sign-in-links calls limitSignIn, staff middleware limitStaff.
func (s *server) limit(c *gin.Context, bucket, key string) bool {
	rule := s.limits.rules[bucket]
	if rule.Limit <= 0 || key == "" {
		return true
	}
	d, err := s.limits.shared.Allow(c.Request.Context(), rule, s.limits.hash.Hash(s.limits.kinds[bucket], key))
	if err != nil {
		s.limiterDown(c, err)
		return false
	}
	return s.admit(c, d)
}

// limiterDown answers a request whose limit could not be checked: 503 with Retry-After, whatever
// the error, because the request was neither refused for itself nor did anything fail inside it.
func (s *server) limiterDown(c *gin.Context, err error) {
	s.log.WarnContext(c.Request.Context(), "rate limit not checked", "error", err, "route", c.FullPath())
	writeError(c, errUnavailable)
}

// admit writes the RateLimit-* headers of the tightest limit the request met so far and, when d
// refuses it, answers 429 rate_limited.
func (s *server) admit(c *gin.Context, d ratelimit.Decision) bool {
	if prev, ok := c.Get(rateLimitDecisionKey); !ok || d.Remaining <= prev.(ratelimit.Decision).Remaining || !d.Allowed {
		c.Set(rateLimitDecisionKey, d)
		h := c.Writer.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(d.Rule.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(ratelimit.Seconds(d.Reset)))
		h.Set("RateLimit-Policy", d.Rule.Policy())
	}
	if d.Allowed {
		return true
	}
	writeTooMany(c, errRateLimited, d.RetryAfter)
	return false
}

// writeTooMany answers 429 with err and Retry-After in whole seconds.
func writeTooMany(c *gin.Context, err *apiError, retryAfter time.Duration) {
	c.Header("Retry-After", strconv.Itoa(ratelimit.Seconds(retryAfter)))
	writeError(c, err)
}

// limitIP is the middleware form of limit, by client IP. c.ClientIP() is trustworthy because
// Gin trusts only TRUSTED_PROXIES' X-Forwarded-For.
func (s *server) limitIP(bucket string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.limit(c, bucket, c.ClientIP()) {
			c.Next()
		}
	}
}

// limitReads limits the cheap reads per client IP in memory, per replica: no PostgreSQL round
// trip, and no outage to fail on.
func (s *server) limitReads(c *gin.Context) {
	if s.limits.reads == nil {
		c.Next()
		return
	}
	if s.admit(c, s.limits.reads.Allow(c.ClientIP())) {
		c.Next()
	}
}

// limitSignIn limits sign-in link requests per client IP and per email; the handler of
// POST /api/v1/auth/sign-in-links calls it with the email from the body, after validating it,
// and returns when it reports false (it has answered).
func (s *server) limitSignIn(c *gin.Context, email string) bool {
	return s.limit(c, bucketSignInIP, c.ClientIP()) && s.limit(c, bucketSignInEmail, email)
}

// limitStaff limits a staff key's calls; the staff authentication calls it with the key's id
// (never the key itself) once the key is verified, and returns when it reports false.
func (s *server) limitStaff(c *gin.Context, keyID string) bool {
	return s.limit(c, bucketStaffKey, keyID)
}

// paymentSource is the hashed source of a payment request: the client IP and the email.
func (s *server) paymentSource(c *gin.Context, email string) store.PaymentSource {
	src := store.PaymentSource{IPHash: s.limits.hash.Hash(hashKindIP, c.ClientIP())}
	if email != "" {
		src.EmailHash = s.limits.hash.Hash(hashKindEmail, email)
	}
	return src
}

// refuseDeclinedSource is the card-testing defence's BFF half: a source (IP or email) with too
// many declined payments within DECLINE_WINDOW is refused with 429 too_many_declines before
// any workflow starts or provider is asked. It then records the source for workflowID, so that
// a decline in that workflow counts against it (the worker joins on the workflow id, and the
// IP never travels through a workflow history). It reports whether the request may go on; if
// not, it has answered. PostgreSQL down is a 503: letting a card tester through is worse than
// asking a customer to retry.
func (s *server) refuseDeclinedSource(c *gin.Context, workflowID, email string) bool {
	ctx := c.Request.Context()
	src := s.paymentSource(c, email)
	dl := s.cfg.Declines
	if dl.Window > 0 && (dl.PerIP > 0 || dl.PerEmail > 0) {
		n, err := s.store.CountDeclines(ctx, src, "", time.Now().Add(-dl.Window))
		if err != nil {
			s.limiterDown(c, err)
			return false
		}
		if (dl.PerIP > 0 && n.IP >= dl.PerIP) || (dl.PerEmail > 0 && src.EmailHash != "" && n.Email >= dl.PerEmail) {
			s.log.WarnContext(ctx, "payment refused: too many declines", "by_ip", n.IP, "by_email", n.Email, "route", c.FullPath())
			writeTooMany(c, errTooManyDeclines, dl.Window)
			return false
		}
	}
	if err := s.store.RecordPaymentSource(ctx, workflowID, src); err != nil {
		s.limiterDown(c, err)
		return false
	}
	return true
}

// guardCardChange is a card change's protection (PUT /api/v1/me/subscriptions/:id/payment-method,
// from changeSubscription): the per-IP and per-subscription limits, then the decline velocity check and the
// source record for the change's workflow. email is the subscription's customer's. It reports
// whether the change may go on; if not, it has answered.
func (s *server) guardCardChange(c *gin.Context, subscriptionID, email, workflowID string) bool {
	return s.limit(c, bucketCardChangeIP, c.ClientIP()) &&
		s.limit(c, bucketCardChangeSub, subscriptionID) &&
		s.refuseDeclinedSource(c, workflowID, email)
}
