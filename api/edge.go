package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/config"
)

// What the BFF tells browsers, and how it tells a storefront's calls from a forged page's.

// A change that carries the session cookie (sessionCookie, auth.go) is the browser's, and is
// checked against CSRF; one without it (the storefront's server, a webhook, a staff key)
// carries no ambient authority for a forged page to borrow.

// publicReads are the reads every visitor gets the same answer to, which a shared cache may
// keep. Every other answer is personal or changes something, and is Cache-Control: no-store:
// by default, so that a route added later is never cached by mistake.
var publicReads = []string{"/healthz", "/api/v1/products", "/api/v1/payment-config"}

// corsMethods and corsHeaders are what a storefront's browser code may send.
const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE"
	corsHeaders = "Content-Type, Idempotency-Key, X-Request-Id"
	// corsExposed are the answer's headers the storefront reads: when to retry, and which request to quote.
	corsExposed = "Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy"
	// corsMaxAge lets a browser keep a preflight's answer for ten minutes.
	corsMaxAge = "600"
)

var errOriginNotAllowed = &apiError{Status: http.StatusForbidden, Code: "origin_not_allowed", Field: "Origin",
	Message: "this change must come from the storefront's own pages"}

// securityHeaders sets what every answer carries, 404s, 405s, errors and panics included: set
// before the handlers run, they are in the header map whatever writes the body.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	// JSON is never sniffed into HTML or script.
	h.Set("X-Content-Type-Options", "nosniff")
	// Links in answers (confirmation URLs) must not leak a checkout's URL to another site.
	h.Set("Referrer-Policy", "no-referrer")
	// The API renders nothing: no framing, no scripts, no plugins.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if m := c.Request.Method; (m != http.MethodGet && m != http.MethodHead) || !slices.Contains(publicReads, c.Request.URL.Path) {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// origins is the set of browser origins allowed to call the BFF with credentials.
type origins map[string]bool

// allowedOrigins is CORS_ALLOWED_ORIGINS or, without it, STOREFRONT_URL's origin, with its
// 127.0.0.1 twin outside production (a developer opens either). An entry that is not an origin
// is dropped here; validateEdge refuses it at start.
func allowedOrigins(cfg config.API) origins {
	list := cfg.CORSAllowedOrigins
	if len(list) == 0 {
		list = []string{cfg.StorefrontURL}
		if cfg.Env != config.EnvProduction {
			if o, err := originOf(cfg.StorefrontURL); err == nil && strings.Contains(o, "://localhost") {
				list = append(list, strings.Replace(o, "://localhost", "://127.0.0.1", 1))
			}
		}
	}
	out := origins{}
	for _, raw := range list {
		if o, err := originOf(raw); err == nil {
			out[o] = true
		}
	}
	return out
}

// originOf is raw's origin, scheme://host[:port] in lower case, as a browser sends it in Origin.
func originOf(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an http(s) origin", raw)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// allowed reports whether an Origin header, or a Referer's origin, is one of the set.
func (o origins) allowed(header string) bool {
	origin, err := originOf(header)
	return err == nil && o[origin]
}

// cors answers preflights and labels answers for the allowed origins only: another origin gets
// no Access-Control-Allow-Origin, so its page cannot read what the BFF answers.
func (o origins) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
	if !o.allowed(origin) {
		if preflight {
			writeError(c, errOriginNotAllowed)
			return
		}
		c.Next()
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		c.Next()
		return
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	c.AbortWithStatus(http.StatusNoContent)
}

// csrf refuses a change made with the session cookie unless the browser says it comes from an
// allowed origin: Origin, or without it the Referer's origin, or without either a Sec-Fetch-Site
// of same-origin or same-site. SameSite=Lax already keeps the cookie off cross-site POSTs; this
// covers a sibling subdomain, which Lax counts as the same site, and older browsers. Requests
// without the cookie pass unless they name a foreign Origin; webhooks always pass.
func (o origins) csrf(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		c.Next()
		return
	}
	if strings.HasPrefix(c.Request.URL.Path, "/webhooks/") {
		c.Next()
		return
	}
	if _, err := c.Request.Cookie(sessionCookie); errors.Is(err, http.ErrNoCookie) {
		// Without the cookie there is no ambient authority to borrow, but a browser's page on
		// another site could still sign its victim in to the attacker's account (login CSRF, on
		// POST /auth/sessions): a browser always names the Origin of a cross-site change, so
		// a named Origin must be allowed. Server-to-server calls name none.
		if origin := c.GetHeader("Origin"); origin != "" && !o.allowed(origin) {
			writeError(c, errOriginNotAllowed)
			return
		}
		c.Next()
		return
	}
	var ok bool
	switch origin, referer := c.GetHeader("Origin"), c.GetHeader("Referer"); {
	case origin != "":
		ok = o.allowed(origin)
	case referer != "":
		ok = o.allowed(referer)
	default:
		site := c.GetHeader("Sec-Fetch-Site")
		ok = site == "same-origin" || site == "same-site"
	}
	if !ok {
		writeError(c, errOriginNotAllowed)
		return
	}
	c.Next()
}

// trustProxies makes c.ClientIP() believe X-Forwarded-For only from TRUSTED_PROXIES (Gin trusts
// every peer by default), and a platform's header only when TRUSTED_PLATFORM names one.
func trustProxies(r *gin.Engine, cfg config.API) error {
	var proxies []string
	if len(cfg.TrustedProxies) > 0 {
		proxies = cfg.TrustedProxies
	}
	// On error Gin keeps no trusted proxy at all; validateEdge has refused the setting already.
	if err := r.SetTrustedProxies(proxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	r.TrustedPlatform = cfg.TrustedPlatform
	return nil
}

// validateEdge refuses, at start, settings of the edge that would be dropped silently later.
func validateEdge(cfg config.API) error {
	if err := trustProxies(gin.New(), cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	for i, raw := range cfg.CORSAllowedOrigins {
		if _, err := originOf(raw); err != nil {
			return fmt.Errorf("configuration: CORS_ALLOWED_ORIGINS entry %s is not an origin (scheme://host[:port])", strconv.Itoa(i+1))
		}
	}
	if len(cfg.CORSAllowedOrigins) == 0 {
		if _, err := originOf(cfg.StorefrontURL); err != nil {
			return fmt.Errorf("configuration: STOREFRONT_URL is not an http(s) URL, and CORS_ALLOWED_ORIGINS is empty")
		}
	}
	return nil
}
